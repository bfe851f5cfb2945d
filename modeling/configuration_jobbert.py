"""Configuration of JobBERT V2, job-title embeddings learned from skills (Decorte et al. 2025, arXiv 2505.24640).

This file is copied verbatim into every JobBERT model repository on the Hugging Face Hub: it imports only
``transformers`` and the standard library.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig

HEAD_ACTIVATIONS = ("identity", "tanh", "relu", "gelu", "sigmoid")
SIDES = ("title", "skills")


class JobBERTConfig(PretrainedConfig):
    r"""Configuration of a [`JobBERTModel`]: an encoder, mean pooling, and one linear head per input side.

    Args:
        encoder_config (`dict` or `PretrainedConfig`, *optional*):
            Configuration of the encoder (any `AutoModel` encoder). Defaults to an MPNet base configuration (the
            architecture of all-mpnet-base-v2).
        projection_dim (`int`, defaults to 1024):
            Output width of both heads (768 -> 1024 in JobBERT V2).
        title_head_bias / skills_head_bias (`bool`, defaults to `True`):
            Whether the title head (the "anchor" branch of JobBERT V2) and the skills head (the "positive" branch,
            for comma-separated skill lists) have a bias.
        title_head_activation / skills_head_activation (`str`, defaults to `"identity"`):
            Activation after each head, one of `identity`, `tanh`, `relu`, `gelu`, `sigmoid` (sentence-transformers'
            `Dense` defaults to `tanh`; converted checkpoints keep theirs).
        max_seq_length (`int`, defaults to 64):
            Tokens kept of one title or one skill list.
        num_titles (`int`, defaults to 0):
            Rows of the title index stored with the weights (set by `set_title_index`).
        trained (`bool`, defaults to `False`):
            Whether the heads and encoder were trained on (title, skills) pairs. An untrained model has identity
            heads and ranks titles exactly like its backbone's mean-pooled vectors.
        taxonomy (`str`, *optional*):
            Human-readable name of the title index (for example "ESCO v1.2 occupations").
    """

    model_type = "jobbert"
    sub_configs = {"encoder_config": AutoConfig}

    def __init__(
        self,
        encoder_config: dict[str, Any] | PretrainedConfig | None = None,
        projection_dim: int = 1024,
        title_head_bias: bool = True,
        skills_head_bias: bool = True,
        title_head_activation: str = "identity",
        skills_head_activation: str = "identity",
        max_seq_length: int = 64,
        num_titles: int = 0,
        trained: bool = False,
        taxonomy: str | None = None,
        **kwargs: Any,
    ) -> None:
        if encoder_config is None:
            encoder_config = AutoConfig.for_model("mpnet")
        elif isinstance(encoder_config, dict):
            encoder_config = AutoConfig.for_model(**encoder_config)
        for name, value in (("title", title_head_activation), ("skills", skills_head_activation)):
            if value not in HEAD_ACTIVATIONS:
                raise ValueError(f"{name}_head_activation must be one of {HEAD_ACTIVATIONS}, got {value!r}")
        if projection_dim < 1:
            raise ValueError(f"projection_dim must be positive, got {projection_dim}")
        self.encoder_config = encoder_config
        self.projection_dim = projection_dim
        self.title_head_bias = title_head_bias
        self.skills_head_bias = skills_head_bias
        self.title_head_activation = title_head_activation
        self.skills_head_activation = skills_head_activation
        self.max_seq_length = max_seq_length
        self.num_titles = num_titles
        self.trained = trained
        self.taxonomy = taxonomy
        super().__init__(**kwargs)

    @property
    def hidden_size(self) -> int:
        """Width of the encoder's pooled vectors (the heads' input)."""
        return self.encoder_config.hidden_size
