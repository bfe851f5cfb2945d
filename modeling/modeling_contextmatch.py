"""ConTeXT-match: skill extraction by token-level attention over a skill index.

Decorte et al. 2025, "Efficient Text Encoders for Labor Market Analysis" (arXiv 2505.24640). A sentence is encoded
into token vectors ``z_xj``, every skill label into one mean-pooled vector ``z_s``, and

    match(x, s) = sum_j alpha_j * cos(z_xj, z_s),   alpha_j = softmax_j(z_xj . z_s)   (real tokens only)

Skills scoring at least the threshold tau are kept, then the redundancy filter keeps those that win the highest dot
product ``z_xj . z_s`` for at least one token; the tokens a skill wins are its evidence.

This file is copied verbatim into every ConTeXT-match model repository on the Hugging Face Hub: it imports only
``torch``, ``transformers``, the standard library and its sibling configuration file.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_contextmatch import ConTeXTMatchConfig
from .encoder_utils import (
    LabelIndexMixin,
    build_encoder,
    length_buckets,
    mean_pool,
    require_fast_tokenizer,
)

SKILL_INDEX_FILE = "skill_index.json"
_SCORE_BUDGET = 1 << 23  # floats per (sentence, token, skill) block: about 32 MB per temporary
_EPS = 1e-8


_LN2 = math.log(2.0)  # attention half of the peak: exp(dot - peak) >= 1/2


def contextmatch_scores(
    token_embeddings: torch.Tensor,
    token_mask: torch.Tensor,
    skill_embeddings: torch.Tensor,
    max_block: int = _SCORE_BUDGET,
) -> torch.Tensor:
    """ConTeXT-match scores of every sentence against every skill: (B, L, H), (B, L), (N, H) -> (B, N).

    ``match(x, s) = sum_j softmax_j(z_xj . z_s) * cos(z_xj, z_s)`` with the softmax over the tokens where
    ``token_mask`` is true. ``skill_embeddings`` may also be (B, N, H): a separate skill set per sentence (the
    candidates of a pre-ranking). Skills are processed in chunks so that no temporary exceeds ``max_block``
    floats. A sentence without any unmasked token scores 0.

    One sentence of two tokens, two skills. Skill 0 points along token 0, so token 0 gets nearly all the attention
    and the score is close to cos(token 0, skill 0) = 1; the padded third token never counts:

    >>> tokens = torch.tensor([[[4.0, 0.0], [0.0, 1.0], [-9.0, 9.0]]])
    >>> mask = torch.tensor([[True, True, False]])
    >>> skills = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    >>> contextmatch_scores(tokens, mask, skills)
    tensor([[0.9997, 0.7071]])
    >>> contextmatch_scores(tokens, mask, skills[None, [1]])  # per-sentence skill sets: the same numbers
    tensor([[0.7071]])
    """
    mask = token_mask.bool()
    per_sentence = skill_embeddings.dim() == 3
    token_norms = token_embeddings.norm(dim=-1, keepdim=True).clamp_min(_EPS)  # (B, L, 1)
    skill_norms = skill_embeddings.norm(dim=-1).clamp_min(_EPS)  # (N,) or (B, N)
    pad_bias = torch.zeros(mask.shape, dtype=token_embeddings.dtype, device=token_embeddings.device)
    pad_bias = pad_bias.masked_fill(~mask, float("-inf")).unsqueeze(-1)  # (B, L, 1)
    batch, length = mask.shape
    track_grad = torch.is_grad_enabled() and (token_embeddings.requires_grad or skill_embeddings.requires_grad)
    chunk = max(1, max_block // max(1, batch * length))
    scores = []
    for start in range(0, skill_embeddings.shape[-2], chunk):
        skills = skill_embeddings[..., start : start + chunk, :]
        norms = skill_norms[..., start : start + chunk]
        norms = token_norms * (norms.unsqueeze(1) if per_sentence else norms)  # (B, L, n)
        dots = token_embeddings @ skills.transpose(-1, -2)  # (B, L, n)
        alpha = torch.softmax(dots + pad_bias, dim=1)
        if track_grad:
            scores.append((alpha * dots / norms).sum(1))
        else:  # inference: reuse the buffers
            scores.append(alpha.mul_(dots.div_(norms)).sum(1))
    if not scores:
        return token_embeddings.new_zeros(batch, 0)
    return torch.nan_to_num(torch.cat(scores, dim=1), nan=0.0)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of a job ad: lines, then sentence ends followed by a capital or a digit.

    Leading bullets and surrounding whitespace are left out of the spans; empty pieces (also those of only
    whitespace such as U+2003 or U+3000) are dropped.

    >>> ad = "We offer:\\n- a bike. Python skills; SQL is a plus. Great team!"
    >>> [ad[s:e] for s, e in split_sentences(ad)]
    ['We offer:', 'a bike.', 'Python skills; SQL is a plus.', 'Great team!']
    """
    spans = []
    for line in re.finditer(r"[^\n\r]+", text):
        start = line.start()
        for end in _sentence_ends(line.group()):
            piece = text[start : line.start() + end]
            lead = _LEAD.match(piece).end()
            trail = len(piece) - len(piece.rstrip())
            if lead < len(piece) - trail:
                spans.append((start + lead, line.start() + end - trail))
            start = line.start() + end
    return spans


_LEAD = re.compile(r"[\s\-*\u2022\u00b7\u25aa\u2013>]*")  # bullets and any whitespace before a sentence
_SURROGATES = re.compile("[\ud800-\udfff]")  # replaced one for one, so character offsets stay those of the text


def _sentence_ends(line: str) -> Iterator[int]:
    for match in re.finditer(r"[.!?](?=\s+[\"'(\[]?[A-Z0-9\u00c0-\u024f])", line):
        yield match.end()
    yield len(line)


@dataclass
class ConTeXTMatchOutput(ModelOutput):
    """Token vectors of a batch of texts, their attention mask, and their mean-pooled vectors."""

    token_embeddings: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    pooled_embeddings: torch.Tensor | None = None


class EncodedSegments(NamedTuple):
    """One batch of :meth:`ConTeXTMatchModel.encode_segments`."""

    rows: list[int]  # the index of the text each row comes from
    windowed: list[bool]  # whether the row is one window of a text longer than max_seq_length
    encoded: dict[str, torch.Tensor]  # token_embeddings, score_mask, attention_mask: what score() takes
    offsets: torch.Tensor  # (rows, tokens, 2) character offsets of each token in its text


class ConTeXTMatchModel(LabelIndexMixin, PreTrainedModel):
    """A token encoder plus a skill index; `extract()` finds skills in text, `rank()` scores the whole index.

    Load with ``AutoModel.from_pretrained(folder_or_repo, trust_remote_code=True)``: the weights, the tokenizer and
    the skill index (labels and ids in ``skill_index.json``, pooled vectors in the weights file) all load together.
    """

    config_class = ConTeXTMatchConfig
    base_model_prefix = "contextmatch"
    index_file, index_rows, model_name = SKILL_INDEX_FILE, "num_skills", "ConTeXT-match"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: ConTeXTMatchConfig) -> None:
        super().__init__(config)
        self.encoder = build_encoder(config.encoder_config)
        self.register_buffer("skill_embeddings", torch.zeros(config.num_skills, config.hidden_size))
        self.skill_labels: list[str] = [f"skill {i}" for i in range(config.num_skills)]
        self.skill_ids: list[str] = list(self.skill_labels)
        self.tokenizer = None
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if module is not self and hasattr(self, "encoder"):
            self.encoder._init_weights(module)

    # ----------------------------------------------------------------------------------------------- encoding
    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **encoder_kwargs: Any
    ) -> ConTeXTMatchOutput:
        """Encode token ids into token vectors (B, L, H), and their mean-pooled vectors (B, H)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **encoder_kwargs)[0]
        return ConTeXTMatchOutput(
            token_embeddings=hidden,
            attention_mask=attention_mask,
            pooled_embeddings=mean_pool(hidden, attention_mask),
        )

    def embed_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token vectors (B, L, H) for inference, the one place ``extract``, ``rank`` and ``encode_labels`` run the
        encoder (a subclass may run another engine here, e.g. an ONNX export). On CUDA an fp32 model runs under
        bf16 autocast (fp16 where bf16 is unsupported); the scoring that follows is always float32."""
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        if self.device.type != "cuda" or self.encoder.dtype != torch.float32:
            return self(input_ids, attention_mask).token_embeddings
        half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        with torch.autocast("cuda", dtype=half):
            return self(input_ids, attention_mask).token_embeddings

    @torch.inference_mode()
    def encode_labels(self, labels: Sequence[str], batch_size: int = 128) -> torch.Tensor:
        """Mean-pooled vectors (N, H) of skill labels, as the skill index stores them (float32, on CPU)."""
        tokenizer = require_fast_tokenizer(self.tokenizer, "for character offsets")
        order = sorted(range(len(labels)), key=lambda i: len(labels[i]))
        out = torch.zeros(len(labels), self.config.hidden_size)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer(
                [labels[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.config.label_max_seq_length,
                return_tensors="pt",
            )
            tokens = self.embed_tokens(batch["input_ids"], batch["attention_mask"]).float()
            out[rows] = mean_pool(tokens, batch["attention_mask"].to(tokens.device)).cpu()
        return out

    # -------------------------------------------------------------------------------------------- skill index
    def set_skill_index(
        self,
        labels: Sequence[str],
        ids: Sequence[str] | None = None,
        embeddings: torch.Tensor | None = None,
        taxonomy: str | None = None,
        batch_size: int = 128,
    ) -> None:
        """Replace the skill index: encode ``labels`` (or take precomputed ``embeddings``) and store them.

        ``ids`` (URIs) default to the labels. The index is saved with the model by ``save_pretrained``.
        """
        labels = [str(label) for label in labels]
        ids = [str(i) for i in ids] if ids is not None else list(labels)
        if not labels or any(not label.strip() for label in labels):
            raise ValueError("the skill index needs at least one label, and no empty labels")
        if len(ids) != len(labels):
            raise ValueError(f"got {len(labels)} labels but {len(ids)} ids")
        if len(set(labels)) != len(labels):
            raise ValueError("skill labels must be unique; deduplicate the taxonomy first")
        if embeddings is None:
            embeddings = self.encode_labels(labels, batch_size=batch_size)
        if tuple(embeddings.shape) != (len(labels), self.config.hidden_size):
            raise ValueError(f"embeddings of shape {tuple(embeddings.shape)} do not fit {len(labels)} labels")
        with torch.inference_mode(False):  # a normal tensor, also when encoded under inference mode
            self.skill_embeddings = embeddings.to(device=self.device, dtype=torch.float32).clone().contiguous()
        self.skill_labels, self.skill_ids = labels, ids
        self.config.num_skills = len(labels)
        if taxonomy is not None:
            self.config.taxonomy = taxonomy

    def _index_state(self) -> dict[str, Any]:
        return {"taxonomy": self.config.taxonomy, "labels": self.skill_labels, "ids": self.skill_ids}

    def _load_index_state(self, index: dict[str, Any]) -> None:
        self.skill_labels, self.skill_ids = list(index["labels"]), list(index["ids"])

    # --------------------------------------------------------------------------------------------- inference
    @torch.inference_mode()
    def rank(self, texts: Sequence[str], top_k: int | None = None, scoring: str = "contextmatch", batch_size: int = 32):
        """Score each text, as one sentence, against the whole skill index.

        ``scoring="contextmatch"`` is the token attention; ``scoring="mean-pool"`` is the plain bi-encoder baseline
        (cosine of the mean-pooled sentence and skill vectors, what a sentence-transformers user gets).

        Returns ``torch.return_types.topk`` with ``values`` (match scores) and ``indices`` (rows of the index,
        see ``skill_labels``/``skill_ids``), both (len(texts), k), best first; ``top_k=None`` ranks every skill.
        A text longer than ``max_seq_length`` tokens is scored in windows and keeps each skill's best window.
        """
        self._require_index()
        k = self.config.num_skills if top_k is None else min(top_k, self.config.num_skills)
        scores = torch.full((len(texts), self.config.num_skills), float("-inf"))
        for segment_rows, _, encoded, _ in self.encode_segments([str(t) for t in texts], batch_size):
            segment_scores = self.score(encoded, scoring)
            for row, text_index in enumerate(segment_rows):
                scores[text_index] = torch.maximum(scores[text_index], segment_scores[row])
        return scores.topk(k, dim=1)

    @torch.inference_mode()
    def extract(
        self,
        texts: str | Sequence[str],
        threshold: float | None = None,
        top_k: int | None = None,
        redundancy_filter: bool | None = None,
        batch_size: int = 32,
    ) -> list[dict[str, Any]]:
        """Skills in each text, with the words that triggered them.

        Each text is split into sentences (long ones into windows); a skill is kept in a sentence when its match
        score reaches ``threshold`` (default: the calibrated ``config.threshold``) and, with the redundancy filter,
        when it wins the highest dot product for at least one token. Per text, skills keep their best score and
        the union of their evidence.

        Returns one dict per text: ``{"text", "skills": [{"label", "id", "score", "evidence": [{"start", "end",
        "text"}]}]}``, skills best first (at most ``top_k``), evidence as character spans of the input text.
        """
        texts = [texts] if isinstance(texts, str) else [str(t) for t in texts]
        self._require_index()
        threshold = self.config.threshold if threshold is None else float(threshold)
        use_filter = self.config.redundancy_filter if redundancy_filter is None else redundancy_filter
        sentences = [(i, start, end) for i, text in enumerate(texts) for start, end in split_sentences(text)]
        found: list[dict[int, dict[str, Any]]] = [{} for _ in texts]
        sentence_texts = [texts[t][s:e] for t, s, e in sentences]
        for rows, windows, encoded, offsets in self.encode_segments(sentence_texts, batch_size):
            scores = self.score(encoded, shortlist=self.config.prerank_candidates)
            for row, sentence_index in enumerate(rows):
                text_index, sentence_start, sentence_end = sentences[sentence_index]
                kept = (scores[row] >= threshold).nonzero().flatten()
                owned = self._owned_tokens(encoded, row, kept, use_filter, offsets[row])
                for skill, tokens in owned.items():
                    spans = _token_spans(offsets[row], tokens, sentence_start, sentence_end, windows[row])
                    entry = found[text_index].setdefault(skill, {"score": float("-inf"), "spans": set()})
                    entry["score"] = max(entry["score"], float(scores[row, skill]))
                    entry["spans"].update(spans)
        return [self._format(text, hits, top_k) for text, hits in zip(texts, found, strict=True)]

    def _format(self, text: str, hits: dict[int, dict[str, Any]], top_k: int | None) -> dict[str, Any]:
        ranked = sorted(hits.items(), key=lambda item: -item[1]["score"])[:top_k]
        skills = []
        for skill, hit in ranked:
            evidence = [{"start": s, "end": e, "text": text[s:e]} for s, e in _merge_spans(hit["spans"], text)]
            skills.append(
                {
                    "label": self.skill_labels[skill],
                    "id": self.skill_ids[skill],
                    "score": round(hit["score"], 4),
                    "evidence": evidence,
                }
            )
        return {"text": text, "skills": skills}

    def score(
        self, encoded: dict[str, torch.Tensor], scoring: str = "contextmatch", shortlist: int = 0
    ) -> torch.Tensor:
        """Scores (B, N) of an :meth:`encode_segments` batch against the skill index, on the CPU.

        ``scoring`` is ``"contextmatch"`` (token attention, the paper's score) or ``"mean-pool"`` (cosine of the
        mean-pooled sentence); with ``shortlist`` only that many mean-pool candidates per sentence get the token
        attention, the others score -inf (what :meth:`extract` does with ``config.prerank_candidates``).
        """
        skills = self.skill_embeddings.to(torch.float32)
        tokens, mask = encoded["token_embeddings"], encoded["score_mask"]
        if scoring not in ("contextmatch", "mean-pool"):
            raise ValueError(f"unknown scoring {scoring!r}: use 'contextmatch' or 'mean-pool'")
        if scoring == "contextmatch" and not 0 < shortlist < skills.shape[0]:
            return contextmatch_scores(tokens, mask, skills).cpu()
        pooled = nn.functional.normalize(mean_pool(tokens, encoded["attention_mask"]), dim=-1)
        cosines = pooled @ self._unit_skills().T
        if scoring == "mean-pool":
            return cosines.cpu()
        candidates = cosines.topk(shortlist, dim=1).indices  # (B, C)
        scores = torch.full_like(cosines, float("-inf"))
        rows = max(1, (1 << 21) // (shortlist * skills.shape[1]))  # small gathered blocks: 8 MB, reused by malloc
        for r in range(0, scores.shape[0], rows):
            part = slice(r, r + rows)
            gathered = skills[candidates[part]]  # (rows, C, H)
            scores[part] = scores[part].scatter_(
                1, candidates[part], contextmatch_scores(tokens[part], mask[part], gathered)
            )
        return scores.cpu()

    def _unit_skills(self) -> torch.Tensor:
        """The skill vectors scaled to unit length, cached until the index tensor changes (new, moved or edited)."""
        skills = self.skill_embeddings
        version = -1 if skills.is_inference() else skills._version
        key = (skills.data_ptr(), tuple(skills.shape), skills.device, skills.dtype, version)
        cached = self.__dict__.get("_unit_skills_cache")
        if cached is None or cached[0] != key:
            cached = (key, nn.functional.normalize(skills.to(torch.float32), dim=-1))
            self.__dict__["_unit_skills_cache"] = cached
        return cached[1]

    def _owned_tokens(
        self,
        encoded: dict[str, torch.Tensor],
        row: int,
        kept: torch.Tensor,
        use_filter: bool,
        offsets: torch.Tensor | None = None,
    ) -> dict[int, list[int]]:
        """Tokens each kept skill wins (the highest dot product among the kept skills).

        With the redundancy filter only skills that win a token survive; without it every kept skill stays, with
        the tokens it wins (possibly none) as its evidence. Special tokens (``<s>``, ``</s>``: no characters in
        ``offsets``) take part in scoring and in deciding which skills survive, but they point at no words: a skill
        that wins only special tokens gets the word with its highest dot product as evidence. Of the words a skill
        wins, those that get at least half the attention (softmax of the dot products, as in the score) of the
        skill's most-attended word are its evidence, or else its best won word: a highlight points at the words
        that matched, not at every token the arg-max happened to hand it.
        """
        if kept.numel() == 0:
            return {}
        mask = encoded["score_mask"][row]
        positions = mask.nonzero().flatten().tolist()
        tokens = encoded["token_embeddings"][row][mask]  # (T, H)
        dots = tokens @ self.skill_embeddings[kept.to(self.skill_embeddings.device)].T.float()  # (T, K)
        owned: dict[int, list[int]] = {} if use_filter else {int(s): [] for s in kept}
        for position, winner in zip(positions, dots.argmax(dim=1).tolist(), strict=True):
            owned.setdefault(int(kept[winner]), []).append(position)
        if offsets is None:
            return owned
        is_word = (offsets[:, 0] != offsets[:, 1])[mask.cpu()].to(dots.device)  # (T,) per scored position
        if not bool(is_word.any()):
            return owned
        column_of = {int(skill): column for column, skill in enumerate(kept.tolist())}
        row_of = {position: i for i, position in enumerate(positions)}
        for skill, tokens in owned.items():
            if not tokens:  # kept without the filter, but wins nothing: no evidence
                continue
            attention = dots[:, column_of[skill]].masked_fill(~is_word, float("-inf"))  # word tokens only
            words = [p for p in tokens if bool(is_word[row_of[p]])]
            if not words:  # only special tokens: the word that matches this skill best
                words = [positions[int(attention.argmax())]]
            else:  # the won words that get at least half the attention of the skill's most-attended word
                peak = float(attention.max())
                strong = [p for p in words if float(attention[row_of[p]]) >= peak - _LN2]
                words = strong or [max(words, key=lambda p: float(attention[row_of[p]]))]
            owned[skill] = words
        return owned

    def encode_segments(self, texts: list[str], batch_size: int = 32) -> Iterator[EncodedSegments]:
        """Tokenize texts into windows of at most ``max_seq_length`` tokens, encode them in length-sorted batches.

        Yields one :class:`EncodedSegments` per batch: the text index of each row, whether the row is one window of
        a longer text, the encoded batch (``token_embeddings``, ``score_mask``, ``attention_mask``; what
        :meth:`score` takes) and the character offsets of each token.
        """
        if not texts:
            return
        tokenizer = require_fast_tokenizer(self.tokenizer, "for character offsets")
        enc = tokenizer(
            [_SURROGATES.sub("\ufffd", text) for text in texts],  # a lone surrogate (JSON "\ud800") stops the tokenizer
            truncation=True,
            max_length=self.config.max_seq_length,
            stride=self.config.window_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        sample = enc["overflow_to_sample_mapping"]
        windows_per_text = Counter(sample)
        pad_id = tokenizer.pad_token_id or 0
        for rows in length_buckets([len(ids) for ids in enc["input_ids"]], batch_size):
            length = len(enc["input_ids"][rows[-1]])
            ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
            attention = torch.zeros(len(rows), length, dtype=torch.long)
            special = torch.ones(len(rows), length, dtype=torch.bool)
            offsets = torch.zeros(len(rows), length, 2, dtype=torch.long)
            for r, i in enumerate(rows):
                n = len(enc["input_ids"][i])
                ids[r, :n] = torch.tensor(enc["input_ids"][i])
                attention[r, :n] = 1
                special[r, :n] = torch.tensor(enc["special_tokens_mask"][i], dtype=torch.bool)
                offsets[r, :n] = torch.tensor(enc["offset_mapping"][i])
            tokens = self.embed_tokens(ids, attention)
            score_mask = attention.bool() if self.config.score_special_tokens else attention.bool() & ~special
            encoded = {
                "token_embeddings": tokens.float(),
                "score_mask": score_mask.to(self.device),
                "attention_mask": attention.to(self.device),
            }
            windowed = [windows_per_text[sample[i]] > 1 for i in rows]
            yield EncodedSegments([sample[i] for i in rows], windowed, encoded, offsets)

    def _require_index(self) -> None:
        if self.config.num_skills == 0:
            raise RuntimeError("the skill index is empty: call model.set_skill_index(labels, ids) first")


def _token_spans(
    offsets: torch.Tensor, tokens: list[int], sentence_start: int, sentence_end: int, windowed: bool
) -> list[tuple[int, int]]:
    """Character spans (in the whole text) of the owned tokens; a special token stands for its whole sentence."""
    spans = []
    for position in tokens:
        start, end = offsets[position].tolist()
        if start == end:  # special token (<s>, </s>): the sentence as a whole
            if not windowed:
                spans.append((sentence_start, sentence_end))
            continue
        spans.append((sentence_start + start, sentence_start + end))
    return spans


def _merge_spans(spans: set[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """Evidence spans for people: widened to whole words, punctuation-only spans dropped, neighbours merged.

    >>> text = "Strong PostgreSQL, and Spark."
    >>> [text[s:e] for s, e in _merge_spans({(7, 14), (14, 17), (17, 18), (23, 28)}, text)]
    ['PostgreSQL', 'Spark']
    """
    widened = []
    for start, end in spans:
        if not any(char.isalnum() for char in text[start:end]):
            continue
        while start > 0 and text[start - 1].isalnum():
            start -= 1
        while end < len(text) and text[end].isalnum():
            end += 1
        widened.append((start, end))
    merged: list[list[int]] = []
    for start, end in sorted(widened):
        if merged and (start <= merged[-1][1] or not text[merged[-1][1] : start].strip(" \t")):
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


__all__ = ["ConTeXTMatchModel", "ConTeXTMatchOutput", "contextmatch_scores", "mean_pool", "split_sentences"]
