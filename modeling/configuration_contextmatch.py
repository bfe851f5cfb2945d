"""Configuration of ConTeXT-match, the token-attention skill extractor (Decorte et al. 2025, arXiv 2505.24640).

This file is copied verbatim into every ConTeXT-match model repository on the Hugging Face Hub: it imports only
``transformers`` and the standard library.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig


class ConTeXTMatchConfig(PretrainedConfig):
    r"""Configuration of a [`ConTeXTMatchModel`].

    Args:
        encoder_config (`dict` or `PretrainedConfig`, *optional*):
            Configuration of the token encoder (any `AutoModel` encoder: MPNet, BERT, RoBERTa, ...). Defaults to
            an MPNet base configuration (the architecture of all-mpnet-base-v2).
        max_seq_length (`int`, defaults to 128):
            Maximum number of tokens of one encoded sentence. Longer sentences are scored in overlapping windows.
        window_stride (`int`, defaults to 32):
            Number of tokens two consecutive windows of a long sentence share.
        label_max_seq_length (`int`, defaults to 64):
            Maximum number of tokens of one skill label when the skill index is encoded.
        threshold (`float`, defaults to 0.48):
            Decision threshold tau on the match score: `extract()` keeps skills with `match(x, s) >= tau`.
        redundancy_filter (`bool`, defaults to `True`):
            Whether `extract()` keeps only skills that win the highest token-skill dot product for at least one
            token (the paper's redundancy filter); the tokens a skill wins are its evidence.
        score_special_tokens (`bool`, defaults to `True`):
            Whether the sentence's special tokens (`<s>`, `</s>`) take part in the token attention, as they do in
            sentence-transformers' mean pooling. Padding never does.
        prerank_candidates (`int`, defaults to 1024):
            `extract()` first shortlists this many skills per sentence by the cosine of mean-pooled vectors and
            applies the token attention to those only (2-3x cheaper scoring over 13.9k skills on a CPU). On the
            validation data it keeps 99.9-100% of the skills above the threshold; 0 scores every skill.
            `rank()` always scores every skill.
        num_skills (`int`, defaults to 0):
            Number of rows of the skill index stored with the weights (set by `set_skill_index`).
        trained (`bool`, defaults to `False`):
            Whether the encoder was trained for ConTeXT-match. A zero-shot model built from a plain
            sentence-transformers backbone says `False`, and its threshold is only a starting point.
        taxonomy (`str`, *optional*):
            Human-readable name of the skill index (for example "ESCO v1.2 skills").
    """

    model_type = "contextmatch"
    sub_configs = {"encoder_config": AutoConfig}

    def __init__(
        self,
        encoder_config: dict[str, Any] | PretrainedConfig | None = None,
        max_seq_length: int = 128,
        window_stride: int = 32,
        label_max_seq_length: int = 64,
        threshold: float = 0.48,
        redundancy_filter: bool = True,
        score_special_tokens: bool = True,
        prerank_candidates: int = 1024,
        num_skills: int = 0,
        trained: bool = False,
        taxonomy: str | None = None,
        **kwargs: Any,
    ) -> None:
        if encoder_config is None:
            encoder_config = AutoConfig.for_model("mpnet")
        elif isinstance(encoder_config, dict):
            encoder_config = AutoConfig.for_model(**encoder_config)
        if not 0 <= window_stride < max_seq_length:
            raise ValueError(f"window_stride must be in [0, max_seq_length), got {window_stride}")
        self.encoder_config = encoder_config
        self.max_seq_length = max_seq_length
        self.window_stride = window_stride
        self.label_max_seq_length = label_max_seq_length
        self.threshold = threshold
        self.redundancy_filter = redundancy_filter
        self.score_special_tokens = score_special_tokens
        self.prerank_candidates = prerank_candidates
        self.num_skills = num_skills
        self.trained = trained
        self.taxonomy = taxonomy
        super().__init__(**kwargs)

    @property
    def hidden_size(self) -> int:
        """Width of the token and skill vectors."""
        return self.encoder_config.hidden_size
