"""In-batch negatives across processes with plain ``torch.distributed``: W processes holding b_r pairs each train on
the global batch of N = Σ_r b_r pairs, not on W separate batches.

Semantics ("local queries against global candidates"). Rank r scores its own anchors against the positives of every
rank (all-gathered *with* gradients), the target of local row i being column ``offset_r + i`` (offset_r = number of
pairs on lower ranks); keys are gathered too, so a duplicate held by another rank is no negative either. The
symmetric direction likewise scores the local positives against every rank's anchors. Each rank returns

    R_r = (W b_r / N) · L_r,    L_r = mean over its b_r local rows of the InfoNCE terms ℓ_i,

so that mean_r R_r = (1/N) Σ_i ℓ_i = L, the loss of the global batch in one process (W b_r / N = 1 exactly when the
local batches are equal; with unequal ones this weight keeps every pair's weight at 1/N).

Gradients. Every rank holds the same parameters θ. The backward of :func:`gather_with_grad` sums, over ranks, the
gradients that every rank's loss sent to the gathered rows, and hands each rank the part of its own rows. So for a
local embedding x (an anchor or a positive of rank r), what reaches x is Σ_r' ∂R_r'/∂x: ranks r' ≠ r depend on x
only through the gather, rank r also directly. Rank r's parameter gradient is therefore

    g_r = Σ_{x on rank r} (∂ Σ_r' R_r' / ∂x) · ∂x/∂θ,    Σ_r g_r = ∂(Σ_r' R_r')/∂θ = W · ∂L/∂θ,

the chain rule over all N pairs' embeddings. :func:`average_gradients` (all-reduce SUM, divide by W) leaves ∂L/∂θ,
the single-process gradient of the global-batch loss, on every rank. GradCache
(:mod:`labor_encoders.training.gradcache`) gathers
its detached leaf embeddings the same way, so its cached gradients dL/de already include the other ranks' share and
the re-embedding pass stays local.

Every collective here is called by every rank in the same order; inconsistent inputs (an empty local batch, keys on
some ranks only) are detected from gathered metadata and raise the same error on every rank instead of hanging.
Without an initialised process group (or with one process) every function is the identity or a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F

_MAX_DIMS = 8  # tensors of up to this many dimensions can be gathered
_BUCKET_BYTES = 25 * 2**20  # average_gradients all-reduces gradients in flat buckets of about this size


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` when torch.distributed is not initialised.

    >>> world()
    (0, 1)
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _device(device: torch.device | str | None) -> torch.device:
    """Where a small bookkeeping tensor must live for the backend: CUDA for NCCL, else the CPU (or ``device``)."""
    if device is not None:
        return torch.device(device)
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather_ints(values: Sequence[int], device: torch.device | str | None = None) -> list[list[int]]:
    """Every rank's ``values`` (the same count on every rank), indexed by rank: one small collective.

    >>> all_gather_ints([4, 7])
    [[4, 7]]
    """
    local = torch.tensor(list(values), dtype=torch.int64, device=_device(device))
    _, size = world()
    if size == 1:
        return [local.tolist()]
    parts = [torch.empty_like(local) for _ in range(size)]
    dist.all_gather(parts, local)
    return [part.tolist() for part in parts]


def _gather_shapes(tensor: torch.Tensor) -> list[list[int]]:
    if tensor.dim() > _MAX_DIMS or tensor.dim() == 0:
        raise ValueError(f"can gather tensors of 1 to {_MAX_DIMS} dimensions, got shape {tuple(tensor.shape)}")
    padded = [tensor.dim(), *tensor.shape] + [0] * (_MAX_DIMS - tensor.dim())
    metadata = all_gather_ints(padded, tensor.device)
    dims = {row[0] for row in metadata}
    if len(dims) > 1:  # every rank sees the same metadata, so every rank raises
        raise ValueError(f"ranks gather tensors of different dimensions: {[row[0] for row in metadata]}")
    return [row[1 : 1 + row[0]] for row in metadata]


def _pad_to(tensor: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Zero-pad (False for bool) every dimension of ``tensor`` at its end up to ``shape``."""
    pads: list[int] = []
    for have, want in zip(reversed(tensor.shape), reversed(shape), strict=True):
        pads += [0, want - have]
    return F.pad(tensor, pads) if any(pads) else tensor


class _AllGather(torch.autograd.Function):
    """All-gather of equal-shaped tensors along dim 0, (B, ...) -> (W*B, ...). Backward: all-reduce SUM of the
    incoming gradient (every rank's ∂R_r/∂gathered), then this rank's rows: Σ_r ∂R_r/∂x for the local x.

    Plain ``dist.all_gather``/``dist.all_reduce`` work on every backend (gloo has no reduce-scatter), and unlike
    ``torch.distributed.nn.functional.all_gather`` nothing here is deprecated in torch 2.13. The all-reduce moves
    about twice the data of a reduce-scatter: embeddings are small next to the encoder's own traffic.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        rank, size = world()
        ctx.rank, ctx.rows = rank, tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.clone(memory_format=torch.contiguous_format)  # never all-reduce into a tensor autograd shares
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def _gather(tensor: torch.Tensor, with_grad: bool) -> torch.Tensor:
    _, size = world()
    if size == 1:
        return tensor
    shapes = _gather_shapes(tensor)
    target = [max(dims) for dims in zip(*shapes, strict=True)]
    padded = _pad_to(tensor, target)
    if padded.dtype == torch.bool:  # not every backend all-gathers bools
        with torch.no_grad():
            parts = [torch.empty_like(padded, dtype=torch.uint8) for _ in range(size)]
            dist.all_gather(parts, padded.to(torch.uint8).contiguous())
            full = torch.cat(parts).bool()
    elif with_grad:
        full = _AllGather.apply(padded)
    else:
        with torch.no_grad():
            parts = [torch.empty_like(padded) for _ in range(size)]
            dist.all_gather(parts, padded.contiguous())
            full = torch.cat(parts)
    if target[0] == 0:  # nothing on any rank
        return full
    pieces = full.split(target[0])
    return torch.cat([piece[: shape[0]] for piece, shape in zip(pieces, shapes, strict=True)])


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's ``tensor`` concatenated along dim 0 in rank order, differentiable (see :class:`_AllGather`).

    Ranks may hold different numbers of rows, and different sizes along the other dimensions (token vectors
    (B, L, H) of a different L): those are zero-padded at their end to the largest over ranks. Identity without a
    process group:

    >>> x = torch.ones(2, 3)
    >>> gather_with_grad(x) is x
    True
    """
    return _gather(tensor, with_grad=True)


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """Like :func:`gather_with_grad` without gradients; bool tensors (token masks) are padded with False."""
    return _gather(tensor, with_grad=False)


def gather_keys(keys: torch.Tensor) -> torch.Tensor:
    """Every rank's int64 keys (B,) concatenated in rank order, no gradient; hash strings first
    (:func:`labor_encoders.training.losses.hash_keys`).

    >>> k = torch.tensor([3, 5])
    >>> gather_keys(k) is k
    True
    """
    if keys.dtype != torch.int64 or keys.dim() != 1:
        raise TypeError(f"keys must be a one-dimensional int64 tensor, got {keys.dtype} of shape {tuple(keys.shape)}")
    return _gather(keys, with_grad=False)


def gather_embedded(
    vectors: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gather ``(vectors, mask)``: pooled vectors (B, H) with ``mask=None``, or token vectors (B, L, H) with their
    mask (B, L). Vectors keep gradients; tokens are padded to the longest L over ranks with zero vectors and mask
    False, which leaves every token-attention score unchanged."""
    gathered = gather_with_grad(vectors)
    return gathered, None if mask is None else gather(mask.bool())


def average_gradients(parameters: Iterable[torch.nn.Parameter], bucket_bytes: int = _BUCKET_BYTES) -> None:
    """Make every gradient the mean over ranks: all-reduce SUM, divide by W. A no-op without a process group.

    Call it after ``backward`` and before ``optimizer.step()`` (once per step with gradient accumulation), on a
    model that is *not* wrapped in ``DistributedDataParallel``. DDP syncs from hooks armed by one forward with grad
    per backward; the cached loss runs the model once per mini-batch without grad and then again, mini-batch by
    mini-batch, in nested backward calls inside a backward hook (:func:`labor_encoders.training.gradcache._replay`),
    which DDP's
    reducer does not expect (or must be silenced with ``no_sync``). After this call, with losses from
    :meth:`~labor_encoders.training.losses.InfoNCELoss.loss_from_embedded`, every rank holds ∂L/∂θ of the global batch
    (derivation
    in the module docstring). A parameter with a gradient on some ranks only gets zeros where it had none, so every
    rank runs the same all-reduces. Gradients are flattened into buckets of about ``bucket_bytes``.
    """
    _, size = world()
    if size == 1:
        return
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    device = params[0].device if params[0].device.type != "cpu" else _device(None)
    flags = torch.tensor([p.grad is not None for p in params], dtype=torch.int64, device=device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    grads = []
    for param, used in zip(params, flags.tolist(), strict=True):
        if used and param.grad is None:
            param.grad = torch.zeros_like(param)
        if used:
            if param.grad.is_sparse:
                raise TypeError("average_gradients does not handle sparse gradients")
            grads.append(param.grad)
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for grad in grads:  # insertion order = parameter order: the same on every rank
        groups.setdefault((grad.device, grad.dtype), []).append(grad)
    for group in groups.values():
        bucket: list[torch.Tensor] = []
        used_bytes = 0
        for grad in group:
            bucket.append(grad)
            used_bytes += grad.numel() * grad.element_size()
            if used_bytes >= bucket_bytes:
                _all_reduce_mean(bucket, size)
                bucket, used_bytes = [], 0
        if bucket:
            _all_reduce_mean(bucket, size)


def _all_reduce_mean(grads: list[torch.Tensor], size: int) -> None:
    flat = torch.cat([grad.reshape(-1) for grad in grads])
    dist.all_reduce(flat)
    flat.div_(size)
    for grad, piece in zip(grads, flat.split([grad.numel() for grad in grads]), strict=True):
        grad.copy_(piece.view_as(grad))


def broadcast_parameters(parameters: Iterable[torch.nn.Parameter], src: int = 0) -> None:
    """Copy rank ``src``'s parameter values to every rank (what DDP does when it wraps a model): the derivation
    above needs the same θ on every rank. A no-op without a process group."""
    if world()[1] == 1:
        return
    with torch.no_grad():
        for param in parameters:
            dist.broadcast(param.data, src)
