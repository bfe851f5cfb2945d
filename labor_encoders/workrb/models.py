"""ConTeXT-match and JobBERT behind WorkRB's ``ModelInterface`` (techwolf-ai/workrb, the field's benchmark harness).

WorkRB asks a model for the full (queries x targets) score matrix of a task, naming the input type of each side.

- ``ConTeXTMatchWorkRB`` scores every query against the *given* target texts with the model's token attention
  (``match(x, s)``, the same numbers as ``model.rank`` over an index of those texts); the targets are encoded as the
  model encodes its skill index (mean-pooled labels), cached on disk by weights and label list. The model's own
  skill index is never touched.
- ``JobBERTWorkRB`` routes each side through the head its input type calls for: job titles through the title head,
  skill names, skill sentences and skill lists through the skills head; scores are cosines.

Both take a model folder, a Hugging Face Hub id, an already loaded model, or nothing (the embedded default).
``workrb`` is an optional extra (``pip install 'labor-encoders[workrb]'``); only this module and
``labor_encoders.workrb.tasks`` import it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from workrb.models.base import ModelInterface
from workrb.types import ModelInputType

from labor_encoders.modeling.encoder_utils import mean_pool
from labor_encoders.modeling.modeling_contextmatch import ConTeXTMatchModel, contextmatch_scores
from labor_encoders.modeling.modeling_jobbert import JobBERTModel

# JobBERT's heads per WorkRB input type; other types (project briefs, candidate profiles) have no head here.
JOBBERT_SIDES = {
    ModelInputType.JOB_TITLE: "title",
    ModelInputType.SEARCH_QUERY_STRING: "title",
    ModelInputType.SKILL_NAME: "skills",
    ModelInputType.SKILL_SENTENCE: "skills",
}

CONTEXTMATCH_CITATION = """@article{decorte2025efficient,
  title={Efficient Text Encoders for Labor Market Analysis},
  author={Decorte, Jens-Joris and Van Hautte, Jeroen and Develder, Chris and Demeester, Thomas},
  journal={IEEE Access}, volume={13}, pages={133596--133608}, year={2025}, doi={10.1109/ACCESS.2025.3589147}
}"""


def load_contextmatch_model(model: ConTeXTMatchModel | str | Path | None) -> ConTeXTMatchModel:
    """A loaded model as it is; a folder or Hub id loaded (offline, an uncached id fails with a clear message);
    ``None``: the embedded default."""
    if isinstance(model, ConTeXTMatchModel):
        return model
    from ..build import load_contextmatch, resolve_model_dir

    return load_contextmatch(resolve_model_dir(model) if model is None else model)


def load_jobbert_model(model: JobBERTModel | str | Path | None) -> JobBERTModel:
    """As ``load_contextmatch_model``, for JobBERT."""
    if isinstance(model, JobBERTModel):
        return model
    from ..jobbert import load_jobbert, resolve_jobbert_dir

    return load_jobbert(resolve_jobbert_dir(model) if model is None else model)


def _model_name(model: nn.Module, prefix: str) -> str:
    source = str(getattr(model, "name_or_path", "") or getattr(model.config, "_name_or_path", "") or "model")
    return f"{prefix}-{Path(source).name or source}"


class _RankingOnly(ModelInterface):
    """Classification in WorkRB is ranking the class labels (as WorkRB's own bi-encoders do)."""

    def _compute_classification(
        self,
        texts: list[str],
        targets: list[str],
        input_type: ModelInputType,
        target_input_type: ModelInputType | None = None,
    ) -> torch.Tensor:
        return self._compute_rankings(texts, targets, input_type, target_input_type or input_type)

    @property
    def classification_label_space(self) -> list[str] | None:
        return None


class ConTeXTMatchWorkRB(_RankingOnly):
    """A ConTeXT-match model as a WorkRB model.

    Args:
        model: model folder, Hub id, loaded ``ConTeXTMatchModel`` or ``None`` (the embedded default).
        name: the name WorkRB records (default: ``labor-encoders-contextmatch-<folder name>``).
        scoring: ``"contextmatch"`` (token attention) or ``"mean-pool"`` (cosine of mean-pooled vectors).
        special_tokens: whether ``<s>``/``</s>`` take part in the token attention; ``None`` keeps the model's
            ``score_special_tokens`` (``True`` for the defaults, as WorkRB's own ConTeXT-match wrapper does).
        cache_labels: keep encoded targets in the label cache (``LABOR_ENCODERS_CACHE``), keyed by weights + labels.
    """

    def __init__(
        self,
        model: ConTeXTMatchModel | str | Path | None = None,
        name: str | None = None,
        scoring: str = "contextmatch",
        special_tokens: bool | None = None,
        batch_size: int = 32,
        cache_labels: bool = True,
    ) -> None:
        if scoring not in ("contextmatch", "mean-pool"):
            raise ValueError(f"unknown scoring {scoring!r}: use 'contextmatch' or 'mean-pool'")
        self.model = load_contextmatch_model(model)
        self.scoring, self.special_tokens, self.batch_size = scoring, special_tokens, batch_size
        self.cache_labels = cache_labels
        self._name = name or _model_name(self.model, "labor-encoders-contextmatch")

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        return (
            f"ConTeXT-match ({self.scoring} scoring) from labor-encoders: token attention of the query's token "
            "vectors over mean-pooled target vectors"
        )

    @property
    def citation(self) -> str | None:
        return CONTEXTMATCH_CITATION

    def encode_targets(self, targets: Sequence[str]) -> torch.Tensor:
        """Mean-pooled target vectors (T, H), as the model encodes its skill index."""
        if not self.cache_labels:
            return self.model.encode_labels(list(targets))
        from ..index_cache import cached_label_embeddings

        return cached_label_embeddings(self.model, list(targets))[0]

    @torch.inference_mode()
    def score(self, queries: Sequence[str], target_vectors: torch.Tensor) -> torch.Tensor:
        """Scores (Q, T) of every query against every target vector; a query longer than the model's window keeps
        each target's best window (as ``model.rank``)."""
        model = self._scoring_model()
        scores = torch.full((len(queries), target_vectors.shape[0]), float("-inf"))
        targets = target_vectors.to(device=model.device, dtype=torch.float32)
        unit_targets = nn.functional.normalize(targets, dim=-1)
        for rows, _, encoded, _ in model.encode_segments([str(q) for q in queries], self.batch_size):
            tokens = encoded["token_embeddings"]
            if self.scoring == "contextmatch":
                block = contextmatch_scores(tokens, encoded["score_mask"], targets)
            else:
                pooled = nn.functional.normalize(mean_pool(tokens, encoded["attention_mask"]), dim=-1)
                block = pooled @ unit_targets.T
            for row, query in enumerate(rows):
                scores[query] = torch.maximum(scores[query], block[row].cpu())
        return scores

    def _scoring_model(self) -> ConTeXTMatchModel:
        """The model, or a shallow view of it with its own config when ``special_tokens`` overrides the model's
        setting (weights and index shared, nothing of the model changed)."""
        wanted = self.special_tokens
        if wanted is None or wanted == self.model.config.score_special_tokens:
            return self.model
        view = copy.copy(self.model)
        view.config = copy.deepcopy(self.model.config)
        view.config.score_special_tokens = wanted
        return view

    def _compute_rankings(
        self,
        queries: list[str],
        targets: list[str],
        query_input_type: ModelInputType,
        target_input_type: ModelInputType,
    ) -> torch.Tensor:
        if not targets:
            return torch.zeros(len(queries), 0)
        return self.score(queries, self.encode_targets(targets))


class JobBERTWorkRB(_RankingOnly):
    """A JobBERT V2 model as a WorkRB model: each side through the head of its input type, cosine scores.

    Args:
        model: model folder, Hub id, loaded ``JobBERTModel`` or ``None`` (the embedded default).
        name: the name WorkRB records (default: ``labor-encoders-jobbert-<folder name>``).
    """

    def __init__(
        self, model: JobBERTModel | str | Path | None = None, name: str | None = None, batch_size: int = 64
    ) -> None:
        self.model = load_jobbert_model(model)
        self.batch_size = batch_size
        self._name = name or _model_name(self.model, "labor-encoders-jobbert")

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        return "JobBERT V2 from labor-encoders: job titles through the title head, skills through the skills head"

    @property
    def citation(self) -> str | None:
        return CONTEXTMATCH_CITATION

    @staticmethod
    def side(input_type: ModelInputType) -> str:
        """``"title"`` or ``"skills"``: the head a WorkRB input type goes through."""
        try:
            return JOBBERT_SIDES[ModelInputType(input_type)]
        except (KeyError, ValueError):
            known = ", ".join(t.value for t in JOBBERT_SIDES)
            raise ValueError(f"JobBERT has no head for input type {input_type!r} (it takes {known})") from None

    def encode(self, texts: Sequence[str], input_type: ModelInputType) -> torch.Tensor:
        """L2-normalised vectors of ``texts`` through the head of ``input_type``."""
        if self.side(input_type) == "title":
            return self.model.encode_titles(list(texts), batch_size=self.batch_size)
        return self.model.encode_skills(list(texts), batch_size=self.batch_size)

    def _compute_rankings(
        self,
        queries: list[str],
        targets: list[str],
        query_input_type: ModelInputType,
        target_input_type: ModelInputType,
    ) -> torch.Tensor:
        return self.encode(queries, query_input_type) @ self.encode(targets, target_input_type).T
