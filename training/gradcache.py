"""Gradient caching (GradCache, Gao et al. 2021) for the InfoNCE losses: batches of thousands on one device.

InfoNCE with in-batch negatives needs every embedding of the batch at once, but the gradient of the loss with
respect to the *parameters* only flows through the embeddings: dL/dθ = Σ_i (dL/de_i) · (de_i/dθ). So:

1. embed the batch mini-batch by mini-batch without building a graph, saving the RNG state before each one;
2. compute the loss on the concatenated embeddings (detached leaves) and backpropagate it to them only:
   the cached gradients g_i = dL/de_i;
3. when the returned loss is backpropagated, re-embed each mini-batch with grad under its saved RNG state (the same
   dropout masks, hence the same e_i) and backpropagate the surrogate Σ_i e_i · g_i, times the incoming gradient.

Only one mini-batch of activations is alive at a time. ConTeXT-match caches the gradients of *token* vectors
(B, L, H), since its score is not a function of one pooled vector; mini-batches are trimmed to their own longest
text, so their token vectors are padded (zeros, mask False) to a common length before concatenating. The reference
design is sentence-transformers' ``CachedMultipleNegativesRankingLoss``.

Across processes (torch.distributed, W > 1) step 2 is where the ranks meet: ``base.loss_from_embedded`` all-gathers
the detached leaf embeddings with gradients, so g_i = Σ_r ∂R_r/∂e_i already holds every rank's share (the gather's
backward sums them) and steps 1 and 3 stay local; then :func:`labor_encoders.training.distributed.average_gradients`.
See
:mod:`labor_encoders.training.distributed` for why this equals the global batch's gradient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .losses import ContextMatchInfoNCE, Embedded, Features, InfoNCELoss, JobBERTInfoNCE, Keys, check_local_batches

GRADCACHE_CITATION = """
@misc{gao2021scaling,
    title={Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup},
    author={Luyu Gao and Yunyi Zhang and Jiawei Han and Jamie Callan},
    year={2021},
    eprint={2101.06983},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}
"""


class RandomState:
    """The CPU RNG state, and the CUDA RNG states of the devices of ``tensors``, taken when created.

    ``with state:`` replays them (dropout draws the same masks as when the state was taken) inside
    ``torch.random.fork_rng``, so the random streams outside the block continue as if it had not run.
    """

    def __init__(self, *tensors: Any) -> None:
        self.cpu_state = torch.get_rng_state()
        self.devices = sorted({t.device.index or 0 for t in tensors if isinstance(t, torch.Tensor) and t.is_cuda})
        self.cuda_states = [torch.cuda.get_rng_state(device) for device in self.devices]
        self._fork: Any = None

    def __enter__(self) -> None:
        self._fork = torch.random.fork_rng(devices=self.devices)
        self._fork.__enter__()
        torch.set_rng_state(self.cpu_state)
        for device, state in zip(self.devices, self.cuda_states, strict=True):
            torch.cuda.set_rng_state(state, device)

    def __exit__(self, *exc_info: Any) -> None:
        self._fork.__exit__(*exc_info)
        self._fork = None


def split_features(features: Features, mini_batch_size: int) -> list[Features]:
    """Row slices of tokenizer outputs, each without the trailing columns that are padding in all its rows.

    A mini-batch of short texts is then embedded at its own length, not the batch's longest. Only trailing columns
    are dropped (left padding is kept): the real tokens keep their positions, so their vectors do not change.
    """
    if mini_batch_size < 1:
        raise ValueError(f"mini_batch_size must be at least 1, got {mini_batch_size}")
    input_ids = features["input_ids"]
    mask = features.get("attention_mask")
    batch, width = input_ids.shape
    chunks = []
    for begin in range(0, batch, mini_batch_size):
        end = min(begin + mini_batch_size, batch)
        length = width
        if mask is not None and mask[begin:end].any():
            length = int(mask[begin:end].bool().any(0).nonzero().max()) + 1
        chunk = {}
        for key, value in features.items():
            if isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[:2] == (batch, width):
                chunk[key] = value[begin:end, :length]
            elif isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == batch:
                chunk[key] = value[begin:end]
            else:
                chunk[key] = value
        chunks.append(chunk)
    return chunks


def concat_padded(parts: list[Embedded]) -> Embedded:
    """Concatenate mini-batch embeddings along the batch; token vectors are right-padded to the longest part first.

    Padding is zeros with mask False, so every score (which ignores masked tokens) is unchanged.
    """
    if parts[0][1] is None:
        return torch.cat([vectors for vectors, _ in parts]), None
    length = max(vectors.shape[1] for vectors, _ in parts)
    vectors = [F.pad(v, (0, 0, 0, length - v.shape[1])) for v, _ in parts]
    masks = [F.pad(m.bool(), (0, length - m.shape[1]), value=False) for _, m in parts]
    return torch.cat(vectors), torch.cat(masks)


class CachedInfoNCE(nn.Module):
    """The loss of ``base`` (an :class:`~labor_encoders.training.losses.InfoNCELoss`) at any batch size, with the
    memory of
    ``mini_batch_size`` texts: the same value and, up to float rounding, the same gradients.

    ``forward`` returns a detached loss with a backward hook; ``loss.backward()`` (or ``accelerator.backward``, or
    a gradient scaler's scaled loss) runs the re-embedding pass, scaled by the incoming gradient.
    """

    uses_gradient_cache = True
    base_class: type[InfoNCELoss] = InfoNCELoss

    def __init__(self, base: InfoNCELoss, mini_batch_size: int = 32) -> None:
        super().__init__()
        if not isinstance(base, self.base_class):
            raise TypeError(f"{type(self).__name__} caches a {self.base_class.__name__}, got {type(base).__name__}")
        if mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be at least 1, got {mini_batch_size}")
        self.base = base
        self.mini_batch_size = mini_batch_size

    @property
    def model(self) -> nn.Module:
        return self.base.model

    @property
    def citation(self) -> str:
        return self.base.citation + GRADCACHE_CITATION

    def get_config_dict(self) -> dict[str, Any]:
        return {**self.base.get_config_dict(), "mini_batch_size": self.mini_batch_size}

    def forward(self, anchor_features: Features, positive_features: Features, keys: Keys | None) -> torch.Tensor:
        check_local_batches(anchor_features, positive_features)  # distributed: every rank raises, none hangs
        record = torch.is_grad_enabled()
        sides = [(self.base.embed_anchors, anchor_features), (self.base.embed_positives, positive_features)]
        chunks = [split_features(features, self.mini_batch_size) for _, features in sides]
        states: list[list[RandomState]] = [[], []]
        embedded: list[Embedded] = []
        with torch.no_grad():  # step 1: every mini-batch, no graph
            for (embed, _), side_chunks, side_states in zip(sides, chunks, states, strict=True):
                parts = []
                for chunk in side_chunks:
                    if record:
                        side_states.append(RandomState(*chunk.values()))
                    parts.append(embed(chunk))
                embedded.append(concat_padded(parts))
        if not record:  # evaluation: nothing to backpropagate
            return self.base.loss_from_embedded(embedded[0], embedded[1], keys)

        leaves = [(vectors.detach().requires_grad_(), mask) for vectors, mask in embedded]
        # step 2: gradients of the embeddings (distributed: gathered from every rank, the backward sums their shares)
        loss = self.base.loss_from_embedded(leaves[0], leaves[1], keys)
        loss.backward()
        grads = [vectors.grad for vectors, _ in leaves]

        loss = loss.detach().requires_grad_()  # step 3 runs when this is backpropagated
        embeds = [embed for embed, _ in sides]
        autocast = autocast_state()  # the replay runs in the backward pass, outside the caller's autocast block
        loss.register_hook(
            partial(_replay, embeds=embeds, chunks=chunks, states=states, grads=grads, autocast=autocast)
        )
        return loss


def autocast_state() -> list[tuple[str, torch.dtype]]:
    """The device types where autocast is on now, with their dtypes."""
    return [
        (device_type, torch.get_autocast_dtype(device_type))
        for device_type in ("cpu", "cuda")
        if torch.is_autocast_enabled(device_type)
    ]


def _replay(
    grad_output: torch.Tensor,
    embeds: list[Callable[[Features], Embedded]],
    chunks: list[list[Features]],
    states: list[list[RandomState]],
    grads: list[torch.Tensor],
    autocast: list[tuple[str, torch.dtype]],
) -> None:
    """Backward hook of the cached loss: re-embed each mini-batch with grad, backpropagate ``e · g * grad_output``.

    Mixed precision: the re-embedding runs under the autocast settings of the first pass, so it computes the same
    embeddings."""
    with torch.enable_grad(), contextlib.ExitStack() as stack:
        for device_type, dtype in autocast:
            stack.enter_context(torch.autocast(device_type, dtype=dtype))
        for embed, side_chunks, side_states, grad in zip(embeds, chunks, states, grads, strict=True):
            row = 0
            for chunk, state in zip(side_chunks, side_states, strict=True):
                with state:
                    vectors, _ = embed(chunk)
                cached = grad[row : row + vectors.shape[0]]
                if vectors.dim() == 3:  # token vectors: this mini-batch's own length, the rest is padding
                    cached = cached[:, : vectors.shape[1]]
                row += vectors.shape[0]
                dtype = torch.promote_types(torch.promote_types(vectors.dtype, cached.dtype), torch.float32)
                surrogate = (vectors.to(dtype) * cached.to(dtype)).sum() * grad_output.to(dtype)
                surrogate.backward()


class CachedContextMatchInfoNCE(CachedInfoNCE):
    """:class:`~labor_encoders.training.losses.ContextMatchInfoNCE` with gradient caching of sentence token vectors
    and skill
    vectors: ``CachedContextMatchInfoNCE(ContextMatchInfoNCE(model), mini_batch_size=32)``."""

    base_class = ContextMatchInfoNCE

    def forward(self, sentence_features: Features, skill_features: Features, skill_keys: Keys | None) -> torch.Tensor:
        return super().forward(sentence_features, skill_features, skill_keys)


class CachedJobBERTInfoNCE(CachedInfoNCE):
    """:class:`~labor_encoders.training.losses.JobBERTInfoNCE` with gradient caching of title and skill-list vectors:
    ``CachedJobBERTInfoNCE(JobBERTInfoNCE(model), mini_batch_size=32)``."""

    base_class = JobBERTInfoNCE

    def forward(self, title_features: Features, skills_features: Features, keys: Keys | None) -> torch.Tensor:
        return super().forward(title_features, skills_features, keys)
