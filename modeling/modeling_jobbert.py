"""JobBERT V2: job titles embedded through the skills their ads ask for.

Decorte et al. 2025, "Efficient Text Encoders for Labor Market Analysis" (arXiv 2505.24640). An encoder and mean
pooling are followed by one of two linear heads: the **title** head (JobBERT V2's "anchor" branch) for job titles and
the **skills** head (its "positive" branch) for comma-separated skill lists. Training pulls a title towards the skills
of its ad; titles are then compared with titles, through the title head.

Every public call names its side (``encode_titles``, ``encode_skills``, ``forward(..., side=...)``), so no call
returns the unprojected pooled vectors by accident. ``normalize`` maps free-text titles onto a title index stored
in the model folder (ESCO occupations by default): each label is one vector, an occupation scores as its best label.

This file is copied verbatim into every JobBERT model repository on the Hugging Face Hub: it imports only ``torch``,
``transformers``, the standard library and its sibling files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_jobbert import SIDES, JobBERTConfig
from .encoder_utils import (
    LabelIndexMixin,
    build_encoder,
    length_buckets,
    mean_pool,
    require_fast_tokenizer,
)

TITLE_INDEX_FILE = "title_index.json"
_ACTIVATIONS = {"identity": nn.Identity, "tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}


TIE_MARGIN = 1e-4  # an exact match of a concept's name outranks other concepts scoring within this of it


def _plain(text: str) -> str:
    """A label as exact matching compares it: case-folded, whitespace runs as one space.

    >>> _plain("  Data   SCIENTIST ")
    'data scientist'
    """
    return " ".join(str(text).casefold().split())


@dataclass
class JobBERTOutput(ModelOutput):
    """Projected vectors of one side (B, projection_dim), not normalised, and the pooled encoder vectors (B, H)."""

    embeddings: torch.Tensor | None = None
    pooled_embeddings: torch.Tensor | None = None


def identity_init_(linear: nn.Linear) -> nn.Linear:
    """Set a head to copy its input into the first output dimensions (zeros elsewhere, zero bias).

    With such heads the cosine between two projected vectors equals the cosine between the pooled vectors, so an
    untrained model ranks exactly like its backbone and training starts from the backbone's geometry.

    >>> head = identity_init_(nn.Linear(2, 3))
    >>> head(torch.tensor([[0.5, -2.0]]))
    tensor([[ 0.5000, -2.0000,  0.0000]], grad_fn=<AddmmBackward0>)
    """
    with torch.no_grad():
        linear.weight.zero_()
        size = min(linear.in_features, linear.out_features)
        linear.weight[:size, :size] = torch.eye(size, dtype=linear.weight.dtype)
        if linear.bias is not None:
            linear.bias.zero_()
    return linear


def join_skills(skills: str | Sequence[str]) -> str:
    """One skill list as JobBERT reads it: a comma-separated string (a string is taken as already joined).

    >>> join_skills(["Python", " SQL ", ""])
    'Python, SQL'
    >>> join_skills("Python, SQL")
    'Python, SQL'
    """
    if isinstance(skills, str):
        return skills
    return ", ".join(str(skill).strip() for skill in skills if str(skill).strip())


class JobBERTModel(LabelIndexMixin, PreTrainedModel):
    """Encoder + mean pooling + a title head and a skills head; a title index for ``normalize``.

    Load with ``AutoModel.from_pretrained(folder_or_repo, trust_remote_code=True)``; then ``encode_titles(titles)``,
    ``encode_skills(skill_lists)`` (L2-normalised, ``projection_dim`` wide) and ``normalize(titles, top_k)``.
    """

    config_class = JobBERTConfig
    base_model_prefix = "jobbert"
    index_file, index_rows, model_name = TITLE_INDEX_FILE, "num_titles", "JobBERT"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: JobBERTConfig) -> None:
        super().__init__(config)
        self.encoder = build_encoder(config.encoder_config)
        self.title_head = nn.Linear(config.hidden_size, config.projection_dim, bias=config.title_head_bias)
        self.skills_head = nn.Linear(config.hidden_size, config.projection_dim, bias=config.skills_head_bias)
        self.title_activation = _ACTIVATIONS[config.title_head_activation]()
        self.skills_activation = _ACTIVATIONS[config.skills_head_activation]()
        self.register_buffer("title_embeddings", torch.zeros(config.num_titles, config.projection_dim))
        self.title_labels: list[str] = [f"title {i}" for i in range(config.num_titles)]
        self.title_ids: list[str] = list(self.title_labels)
        self.title_names: dict[str, str] = {}
        self.tokenizer = None
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if module is self._modules.get("title_head") or module is self._modules.get("skills_head"):
            identity_init_(module)
        elif module is not self and "encoder" in self._modules:
            self.encoder._init_weights(module)

    # ----------------------------------------------------------------------------------------------- encoding
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        side: str | None = None,
        **encoder_kwargs: Any,
    ) -> JobBERTOutput:
        """Encode token ids through the encoder, mean pooling and the head of ``side`` (``"title"`` or ``"skills"``).

        ``side`` is required: the heads are what makes JobBERT V2, and titles and skill lists use different ones.
        """
        head, activation = self._head(side)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **encoder_kwargs)[0]
        pooled = mean_pool(hidden, attention_mask)
        return JobBERTOutput(embeddings=activation(head(pooled)), pooled_embeddings=pooled)

    def _head(self, side: str | None) -> tuple[nn.Linear, nn.Module]:
        if side == "title":
            return self.title_head, self.title_activation
        if side == "skills":
            return self.skills_head, self.skills_activation
        raise ValueError(
            f"side must be one of {SIDES}, got {side!r}: job titles go through side='title', comma-separated skill "
            "lists through side='skills' (or call encode_titles / encode_skills)"
        )

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], side: str, batch_size: int = 64, normalize: bool = True) -> torch.Tensor:
        """Vectors (N, projection_dim) of ``texts`` through the head of ``side``, L2-normalised unless told not to.

        Returned as float32 on the CPU, in the order of ``texts``.
        """
        self._head(side)
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not one string (wrap it: [text])")
        texts = [str(text).encode("utf-8", "replace").decode("utf-8") for text in texts]  # lone surrogates -> "?"
        tokenizer = require_fast_tokenizer(self.tokenizer, "to encode text")
        out = torch.zeros(len(texts), self.config.projection_dim)
        if not texts:
            return out
        encoded = tokenizer(texts, truncation=True, max_length=self.config.max_seq_length)["input_ids"]
        pad_id = tokenizer.pad_token_id or 0
        for rows in length_buckets([len(ids) for ids in encoded], batch_size):
            length = len(encoded[rows[-1]])
            ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
            mask = torch.zeros(len(rows), length, dtype=torch.long)
            for r, i in enumerate(rows):
                ids[r, : len(encoded[i])] = torch.tensor(encoded[i])
                mask[r, : len(encoded[i])] = 1
            vectors = self(ids.to(self.device), mask.to(self.device), side=side).embeddings.float()
            out[rows] = (nn.functional.normalize(vectors, dim=-1) if normalize else vectors).cpu()
        return out

    def encode_titles(self, titles: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """L2-normalised title vectors (N, projection_dim), through the title head."""
        return self.encode(titles, "title", batch_size)

    def encode_skills(self, skill_lists: Sequence[str | Sequence[str]], batch_size: int = 64) -> torch.Tensor:
        """L2-normalised vectors (N, projection_dim) of skill lists (lists of skills, or comma-joined strings),
        through the skills head."""
        if isinstance(skill_lists, str):
            raise TypeError("pass a list of skill lists, not one string (wrap it: [skills])")
        return self.encode([join_skills(skills) for skills in skill_lists], "skills", batch_size)

    # -------------------------------------------------------------------------------------------- title index
    def set_title_index(
        self,
        labels: Sequence[str],
        ids: Sequence[str] | None = None,
        names: dict[str, str] | None = None,
        embeddings: torch.Tensor | None = None,
        taxonomy: str | None = None,
        batch_size: int = 64,
    ) -> None:
        """Replace the title index: every label (preferred or alternative) is one row, ``ids`` say which concept
        (occupation URI) it belongs to, ``names`` give each concept's display name (default: its first label).

        Labels are encoded through the title head unless ``embeddings`` (N, projection_dim) are given.
        """
        labels = [str(label).strip() for label in labels]
        ids = [str(i) for i in ids] if ids is not None else list(labels)
        if not labels or any(not label for label in labels):
            raise ValueError("the title index needs at least one label, and no empty labels")
        if len(ids) != len(labels):
            raise ValueError(f"got {len(labels)} labels but {len(ids)} ids")
        if len(set(zip(labels, ids, strict=True))) != len(labels):
            raise ValueError("a (label, id) pair appears twice; deduplicate the titles first")
        shown = {}
        for label, concept in zip(labels, ids, strict=True):
            shown.setdefault(concept, label)
        shown.update({str(k): str(v) for k, v in (names or {}).items() if str(k) in shown})
        if embeddings is None:
            embeddings = self.encode_titles(labels, batch_size=batch_size)
        if tuple(embeddings.shape) != (len(labels), self.config.projection_dim):
            raise ValueError(f"embeddings of shape {tuple(embeddings.shape)} do not fit {len(labels)} labels")
        with torch.inference_mode(False):  # a normal tensor, also when encoded under inference mode
            unit = nn.functional.normalize(embeddings.to(device=self.device, dtype=torch.float32), dim=-1)
            self.title_embeddings = unit.clone().contiguous()
        self.title_labels, self.title_ids, self.title_names = labels, ids, shown
        self.config.num_titles = len(labels)
        if taxonomy is not None:
            self.config.taxonomy = taxonomy

    @torch.inference_mode()
    def normalize(self, titles: str | Sequence[str], top_k: int = 5, batch_size: int = 64) -> list[dict[str, Any]]:
        """The closest concepts of the title index for each title, by cosine through the title head.

        A concept scores as its best label. A title that is (case- and whitespace-insensitively) a concept's name
        ranks that concept first among those within ``TIE_MARGIN`` of it ("data scientist" is the occupation data
        scientist, although another occupation lists it as an alternative label and scores the same).

        Returns one dict per title: ``{"title", "matches": [{"label", "id", "score", "matched_label"}]}``, best
        first, where ``label`` is the concept's name and ``matched_label`` the label that scored best. A title that
        is empty after stripping gets no matches.
        """
        titles = [titles] if isinstance(titles, str) else [str(t) for t in titles]
        if self.config.num_titles == 0:
            raise RuntimeError("the title index is empty: call model.set_title_index(labels, ids) first")
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        keep = [i for i, title in enumerate(titles) if title.strip()]
        results: list[dict[str, Any]] = [{"title": title, "matches": []} for title in titles]
        if not keep:
            return results
        concepts, concept_of_row, rows_of = self._concepts()
        queries = self.encode_titles([titles[i].strip() for i in keep], batch_size=batch_size)
        index = self.title_embeddings.float().cpu()
        named = self._concept_of_name()
        for start in range(0, len(keep), 256):
            scores = queries[start : start + 256] @ index.T  # (b, rows)
            per_concept = torch.full((scores.shape[0], len(concepts)), float("-inf"))
            per_concept.scatter_reduce_(1, concept_of_row.expand_as(scores), scores, "amax")
            ranking = per_concept.clone()
            for row, i in enumerate(keep[start : start + 256]):
                exact = named.get(_plain(titles[i]))
                if exact is not None:  # the title is this concept's name: it wins a tie with another's label
                    ranking[row, exact] += TIE_MARGIN
            top = ranking.topk(min(top_k, len(concepts)), dim=1)
            for row, columns in enumerate(top.indices):
                matches = []
                for column in columns.tolist():
                    value = float(per_concept[row, column])
                    members = rows_of[column]
                    best = int(members[scores[row, members].argmax()])
                    concept = concepts[column]
                    matches.append(
                        {
                            "label": self.title_names.get(concept, self.title_labels[best]),
                            "id": concept,
                            "score": round(value, 4),
                            "matched_label": self.title_labels[best],
                        }
                    )
                results[keep[start + row]]["matches"] = matches
        return results

    def _concepts(self) -> tuple[list[str], torch.Tensor, list[torch.Tensor]]:
        """The distinct concept ids of the index (first-seen order), the concept column of every row, and the rows
        of every concept (cached until the index changes)."""
        key = (id(self.title_ids), len(self.title_ids))
        cached = self.__dict__.get("_concept_cache")
        if cached is None or cached[0] != key:
            position: dict[str, int] = {}
            rows: list[list[int]] = []
            for row, concept in enumerate(self.title_ids):
                if position.setdefault(concept, len(position)) == len(rows):
                    rows.append([])
                rows[position[concept]].append(row)
            columns = torch.empty(len(self.title_ids), dtype=torch.long)
            for column, members in enumerate(rows):
                columns[members] = column
            cached = (key, list(position), columns, [torch.tensor(members) for members in rows])
            self.__dict__["_concept_cache"] = cached
        return cached[1], cached[2], cached[3]

    def _concept_of_name(self) -> dict[str, int]:
        """Column of each concept by its name (preferred label), case- and whitespace-normalised."""
        key = (id(self.title_ids), len(self.title_ids), id(self.title_names))
        cached = self.__dict__.get("_name_cache")
        if cached is None or cached[0] != key:
            concepts = self._concepts()[0]
            names = {}
            for column, concept in enumerate(concepts):
                name = self.title_names.get(concept)
                if name:
                    names.setdefault(_plain(name), column)
            cached = (key, names)
            self.__dict__["_name_cache"] = cached
        return cached[1]

    def _index_state(self) -> dict[str, Any]:
        return {
            "taxonomy": self.config.taxonomy,
            "labels": self.title_labels,
            "ids": self.title_ids,
            "names": self.title_names,
        }

    def _load_index_state(self, index: dict[str, Any]) -> None:
        self.title_labels, self.title_ids = list(index["labels"]), list(index["ids"])
        self.title_names = dict(index.get("names") or {})


__all__ = ["JobBERTModel", "JobBERTOutput", "identity_init_", "join_skills"]
