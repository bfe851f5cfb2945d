"""InfoNCE with in-batch negatives for ConTeXT-match and JobBERT V2, where duplicates are never negatives.

Row ``i`` of a batch is a pair (anchor_i, positive_i): a sentence and one of its skills, or a job title and the skill
list of its ad. Every other positive in the batch is a negative of anchor_i, except those with the same key as
positive_i (the same skill, the same skill list): treating a true match as a negative would teach the model to push
it away. With scores ``s_ij`` (anchor i against positive j), scale ``t`` and ``D_i`` the columns duplicating i,

    loss = mean_i [ -t * s_ii + logsumexp_{j not in D_i} t * s_ij ]

``symmetric=True`` averages this with the same formula on the transposed scores (positive -> anchor).
The cached (GradCache) versions of both losses are in :mod:`labor_encoders.training.gradcache`.

Under ``torch.distributed`` with W > 1 processes the negatives are those of the global batch: each rank scores its
local anchors against every rank's positives (and, symmetric, its local positives against every rank's anchors), and
with :func:`labor_encoders.training.distributed.average_gradients` the gradients equal those of the global batch in
one process
(derivation in :mod:`labor_encoders.training.distributed`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from labor_encoders.modeling.modeling_contextmatch import contextmatch_scores

from .distributed import all_gather_ints, gather_embedded, gather_keys, world

Keys = Sequence[str] | torch.Tensor
Embedded = tuple[torch.Tensor, torch.Tensor | None]  # (vectors, token mask) or (one vector per text, None)
Features = dict[str, Any]

CITATION = """
@misc{decorte2025efficient,
    title={Efficient Text Encoders for Labor Market Analysis},
    author={Jens-Joris Decorte and Jeroen Van Hautte and Chris Develder and Thomas Demeester},
    year={2025},
    eprint={2505.24640},
    archivePrefix={arXiv},
    primaryClass={cs.CL}
}
"""


def hash_keys(strings: Sequence[str]) -> torch.Tensor:
    """Stable int64 hashes (blake2b, 8 bytes) of strings, equal in every process, unlike Python's ``hash()``.

    Integer keys can be all-gathered across processes, where strings cannot.

    >>> hash_keys(["python", "python", "sql"]).tolist()[0] == hash_keys(["python"]).item()
    True
    """
    values = [
        int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "little", signed=True)
        for s in strings
    ]
    return torch.tensor(values, dtype=torch.int64)


def duplicate_mask(keys: Keys) -> torch.Tensor:
    """(B, B) bool: True where ``i != j`` and ``keys[i] == keys[j]``, the pairs that must not be negatives.

    ``keys`` are strings or an int64 tensor (for example from :func:`hash_keys`); the mask is on the keys' device.

    >>> duplicate_mask(["python", "sql", "python"]).int()
    tensor([[0, 0, 1],
            [0, 0, 0],
            [1, 0, 0]], dtype=torch.int32)
    """
    if not isinstance(keys, torch.Tensor):
        ids: dict[str, int] = {}
        keys = torch.tensor([ids.setdefault(str(k), len(ids)) for k in keys], dtype=torch.int64)
    if keys.dim() != 1:
        raise ValueError(f"keys must be one-dimensional, got shape {tuple(keys.shape)}")
    same = keys[:, None] == keys[None, :]
    return same.fill_diagonal_(False)


def info_nce(
    scores: torch.Tensor,
    scale: float = 1.0,
    duplicates: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of ``scale * scores`` (B, N) with the positive of row i in column ``targets[i]`` (default i).

    Columns where ``duplicates`` (B, N) is true are left out of row i's softmax (the target column never is).

    Two anchors, two positives: each row has one negative scoring 1 below its positive, so the loss is
    ``log(1 + e^-1)``; masking that negative as a duplicate leaves nothing to contrast with, and the loss is 0:

    >>> scores = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> info_nce(scores)
    tensor(0.3133)
    >>> info_nce(scores, duplicates=torch.tensor([[False, True], [True, False]])).abs()
    tensor(0.)
    """
    logits = scale * scores
    rows = torch.arange(scores.shape[0], device=scores.device)
    targets = rows if targets is None else targets.to(scores.device)
    if duplicates is not None:
        ignore = duplicates.to(device=scores.device, dtype=torch.bool).clone()
        ignore[rows, targets] = False
        logits = logits.masked_fill(ignore, float("-inf"))
    return F.cross_entropy(logits, targets)


def _batch_size(features: Features) -> int:
    value = features.get("input_ids")
    if not isinstance(value, torch.Tensor):
        value = next((v for v in features.values() if isinstance(v, torch.Tensor) and v.dim() >= 1), None)
    return -1 if value is None else int(value.shape[0])


def check_local_batches(anchor_features: Features, positive_features: Features) -> None:
    """Under torch.distributed, check every rank's batch before any rank embeds it: an empty or unpaired local batch
    raises the same ValueError on every rank (a rank failing alone would leave the others waiting in a collective).
    Nothing to do in one process."""
    if world()[1] == 1:
        return
    local = [_batch_size(anchor_features), _batch_size(positive_features)]
    device = next((v.device for v in anchor_features.values() if isinstance(v, torch.Tensor)), None)
    _check_metadata([[*row, -1, 0, 0, 0, 0] for row in all_gather_ints(local, device)])


def _check_metadata(metadata: list[list[int]]) -> None:
    """Raise on every rank (all see the same rows) if any rank's local inputs are inconsistent; rows are
    [anchors, positives, keys or -1, anchor mask, positive mask, symmetric, bad keys] per rank."""
    problems = []
    for rank, (anchors, positives, keys, *_, bad_keys) in enumerate(metadata):
        if bad_keys:
            problems.append(f"rank {rank} passed keys that are not strings or a one-dimensional integer tensor")
        if anchors != positives:
            problems.append(f"rank {rank} has {anchors} anchors but {positives} positives")
        elif anchors <= 0:
            problems.append(
                f"rank {rank} has an empty batch: every rank must bring at least one pair to every step, since the "
                "in-batch negatives are gathered from all ranks"
            )
        if keys not in (-1, anchors):
            problems.append(f"rank {rank} got {keys} keys for a batch of {anchors} pairs")
    for column, what in ((2, "keys"), (3, "anchor token masks"), (4, "positive token masks"), (5, "symmetric")):
        values = [row[column] >= 0 if column == 2 else row[column] for row in metadata]
        if len(set(values)) > 1:
            problems.append(f"ranks disagree on {what}: {values} by rank")
    if problems:
        raise ValueError("inconsistent distributed batch (every rank raises this): " + "; ".join(problems))


class InfoNCELoss(nn.Module):
    """Shared mechanics of the two losses: embed both sides, score every anchor against every positive, InfoNCE.

    Subclasses define how each side is embedded (:meth:`embed_anchors`, :meth:`embed_positives`, each returning
    ``(vectors, token_mask_or_None)``) and :meth:`similarity`; the cached losses reuse exactly these pieces.
    """

    citation = CITATION

    def __init__(self, model: nn.Module, scale: float = 20.0, symmetric: bool = False) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.model = model
        self.scale = float(scale)
        self.symmetric = bool(symmetric)

    def embed_anchors(self, features: Features) -> Embedded:
        raise NotImplementedError

    def embed_positives(self, features: Features) -> Embedded:
        raise NotImplementedError

    def similarity(self, anchors: Embedded, positives: Embedded) -> torch.Tensor:
        """Unscaled scores (B, N) of every anchor against every positive."""
        raise NotImplementedError

    def loss_from_embedded(self, anchors: Embedded, positives: Embedded, keys: Keys | None) -> torch.Tensor:
        """InfoNCE (averaged over both directions when symmetric) with duplicate keys masked.

        With W > 1 processes this is rank r's share ``(W b_r / N) · L_r`` of the global-batch loss (see
        :meth:`distributed_loss`): the mean over ranks of the returned values is the global loss.
        """
        if world()[1] > 1:
            return self.distributed_loss(anchors, positives, keys)
        scores = self.similarity(anchors, positives)
        if keys is not None and len(keys) != scores.shape[0]:
            raise ValueError(f"got {len(keys)} keys for a batch of {scores.shape[0]} pairs")
        duplicates = None if keys is None else duplicate_mask(keys).to(scores.device)
        loss = info_nce(scores, self.scale, duplicates)
        if self.symmetric:
            reverse = info_nce(scores.T, self.scale, None if duplicates is None else duplicates.T)
            loss = (loss + reverse) / 2
        return loss

    def distributed_loss(self, anchors: Embedded, positives: Embedded, keys: Keys | None) -> torch.Tensor:
        """Rank r's share of the global-batch loss: its b_r local anchors against all N = Σ b_r' positives.

        Local row i's target is column ``offset_r + i`` (offset_r = pairs on lower ranks); column j is masked when
        ``keys[j] == keys[i]`` over the *global* keys (strings are hashed with :func:`hash_keys` to be gathered).
        Symmetric: the same with the local positives against all anchors. Returns ``(W b_r / N) · L_r`` with
        ``L_r`` the mean over local rows: mean_r of it is the global loss L = (1/N) Σ_i ℓ_i, and after
        :func:`~labor_encoders.training.distributed.average_gradients` every rank holds ∂L/∂θ
        (:mod:`labor_encoders.training.distributed`).
        With equal local batches the factor is exactly 1. Every rank must call this at the same step with the same
        loss configuration; inconsistent local inputs raise the same ValueError on every rank.
        """
        rank, size = world()
        device = anchors[0].device
        local_keys, bad_keys = None, 0
        if isinstance(keys, torch.Tensor):
            if keys.dim() == 1 and not keys.is_floating_point() and not keys.is_complex():
                local_keys = keys.to(device=device, dtype=torch.int64)
            else:
                bad_keys = 1
        elif keys is not None:
            local_keys = hash_keys([str(k) for k in keys]).to(device)
        local = [
            anchors[0].shape[0],
            positives[0].shape[0],
            -1 if keys is None else len(keys),
            int(anchors[1] is not None),
            int(positives[1] is not None),
            int(self.symmetric),
            bad_keys,
        ]
        metadata = all_gather_ints(local, device)  # the first collective: every rank checks every rank's inputs
        _check_metadata(metadata)
        sizes = [row[0] for row in metadata]
        total, offset, batch = sum(sizes), sum(sizes[:rank]), sizes[rank]
        targets = torch.arange(offset, offset + batch, device=device)

        scores = self.similarity(anchors, gather_embedded(*positives))  # (b_r, N)
        duplicates = None
        if local_keys is not None:
            duplicates = local_keys[:, None] == gather_keys(local_keys)[None, :]  # (b_r, N); info_nce keeps targets
        loss = info_nce(scores, self.scale, duplicates, targets)
        if self.symmetric:
            reverse_scores = self.similarity(gather_embedded(*anchors), positives).T  # (b_r, N)
            loss = (loss + info_nce(reverse_scores, self.scale, duplicates, targets)) / 2
        weight = size * batch / total
        return loss if weight == 1 else loss * weight

    def forward(self, anchor_features: Features, positive_features: Features, keys: Keys | None) -> torch.Tensor:
        check_local_batches(anchor_features, positive_features)
        return self.loss_from_embedded(
            self.embed_anchors(anchor_features), self.embed_positives(positive_features), keys
        )

    def get_config_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "symmetric": self.symmetric}


class ContextMatchInfoNCE(InfoNCELoss):
    """ConTeXT-match InfoNCE: sentence token vectors against mean-pooled skill vectors, scored by token attention.

    ``scores[i, j] = match(sentence_i, skill_j)`` (``contextmatch_scores``, a softmax-weighted average of token
    cosines), scaled by ``scale``; skill j is a negative of sentence i unless ``skill_keys[j] == skill_keys[i]``.
    Pass the skill labels (or URIs, or :func:`hash_keys` of them) as ``skill_keys``.
    """

    def embed_anchors(self, features: Features) -> Embedded:
        out = self.model(**features)
        return out.token_embeddings, out.attention_mask.bool()

    def embed_positives(self, features: Features) -> Embedded:
        return self.model(**features).pooled_embeddings, None

    def similarity(self, anchors: Embedded, positives: Embedded) -> torch.Tensor:
        return contextmatch_scores(anchors[0], anchors[1], positives[0])

    def loss_from_embeddings(
        self,
        token_embeddings: torch.Tensor,
        token_mask: torch.Tensor,
        skill_embeddings: torch.Tensor,
        skill_keys: Keys | None,
    ) -> torch.Tensor:
        """The loss from sentence token vectors (B, L, H), their mask (B, L) and skill vectors (B, H)."""
        return self.loss_from_embedded((token_embeddings, token_mask.bool()), (skill_embeddings, None), skill_keys)

    def forward(self, sentence_features: Features, skill_features: Features, skill_keys: Keys | None) -> torch.Tensor:
        """``sentence_features``/``skill_features``: tokenizer outputs (input_ids, attention_mask), one row per pair."""
        return super().forward(sentence_features, skill_features, skill_keys)


class JobBERTInfoNCE(InfoNCELoss):
    """JobBERT V2 InfoNCE: cosine of a title (through the title head) and a skill list (through the skills head).

    ``scores[i, j] = cos(title_i, skills_j)``, scaled by ``scale``; skill list j is a negative of title i unless
    ``keys[j] == keys[i]`` (pass the skill-list strings, so that identical lists are not negatives).
    """

    def embed_anchors(self, features: Features) -> Embedded:
        return self.model(**features, side="title").embeddings, None

    def embed_positives(self, features: Features) -> Embedded:
        return self.model(**features, side="skills").embeddings, None

    def similarity(self, anchors: Embedded, positives: Embedded) -> torch.Tensor:
        return F.normalize(anchors[0], dim=-1) @ F.normalize(positives[0], dim=-1).T

    def loss_from_embeddings(
        self, title_embeddings: torch.Tensor, skills_embeddings: torch.Tensor, keys: Keys | None
    ) -> torch.Tensor:
        """The loss from title vectors (B, D) and skill-list vectors (B, D), not necessarily normalised."""
        return self.loss_from_embedded((title_embeddings, None), (skills_embeddings, None), keys)

    def forward(self, title_features: Features, skills_features: Features, keys: Keys | None) -> torch.Tensor:
        """``title_features``/``skills_features``: tokenizer outputs (input_ids, attention_mask), one row per pair."""
        return super().forward(title_features, skills_features, keys)
