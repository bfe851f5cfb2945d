"""ConTeXT-match on an ONNX export: the model class itself, with its encoder replaced by an onnxruntime session.

Tokenisation, windows, length buckets, scoring, the redundancy filter and the evidence spans are the model's own code
(:class:`~labor_encoders.modeling.modeling_contextmatch.ConTeXTMatchModel`); only :meth:`embed_tokens` differs. The
encoder's
PyTorch weights are never loaded: the config, the tokenizer, the skill labels and the skill vectors (read alone from
the safetensors file) are all it needs beside the graph.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from labor_encoders.modeling.configuration_contextmatch import ConTeXTMatchConfig
from labor_encoders.modeling.encoder_utils import load_label_index, load_tokenizer, mean_pool
from labor_encoders.modeling.modeling_contextmatch import ConTeXTMatchModel, ConTeXTMatchOutput

from ..build import BuildError
from .onnx_export import INPUT_NAMES, OUTPUT_NAMES, session_options


class OnnxContextMatch(ConTeXTMatchModel):
    """ConTeXT-match whose encoder is an onnxruntime session (CPU); ``extract`` and ``rank`` are the model's own."""

    session: Any = None
    graph: Path | None = None

    @classmethod
    def from_folder(cls, folder: str | Path, graph: str | Path, threads: int | None = None) -> OnnxContextMatch:
        """Config, tokenizer and skill index of the model folder ``folder``, and a session over ``graph``."""
        import onnxruntime

        folder = Path(folder)
        config = ConTeXTMatchConfig.from_pretrained(folder)
        with torch.device("meta"):  # the encoder's modules are built without memory, then dropped
            model = cls(config)
        model.encoder = None
        model.skill_embeddings = read_skill_vectors(folder, config.num_skills, config.hidden_size)
        if config.num_skills:
            index = load_label_index(str(folder), cls.index_file, config.num_skills, ("labels", "ids"), {})
            model._load_index_state(index)
        model.tokenizer = load_tokenizer(folder, config, {}, cls.model_name)
        model.graph = Path(graph)
        model.session = onnxruntime.InferenceSession(
            str(graph), session_options(threads), providers=["CPUExecutionProvider"]
        )
        return model.eval()

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def embed_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        feed = {INPUT_NAMES[0]: input_ids.cpu().numpy(), INPUT_NAMES[1]: attention_mask.cpu().numpy()}
        return torch.from_numpy(self.session.run([OUTPUT_NAMES[0]], feed)[0])

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **encoder_kwargs: Any
    ) -> ConTeXTMatchOutput:
        """Token vectors, mask and mean-pooled vectors, as the PyTorch model returns them (no gradients)."""
        if encoder_kwargs:
            raise TypeError(f"the ONNX encoder takes input_ids and attention_mask only, not {sorted(encoder_kwargs)}")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        tokens = self.embed_tokens(input_ids, attention_mask)
        return ConTeXTMatchOutput(tokens, attention_mask, mean_pool(tokens, attention_mask))

    def save_pretrained(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("an ONNX-backed model has no PyTorch weights to save: save the PyTorch model")

    def __repr__(self) -> str:
        return f"OnnxContextMatch({self.graph}, {self.config.num_skills} skills)"


def read_skill_vectors(folder: Path, rows: int, hidden: int) -> torch.Tensor:
    """The ``skill_embeddings`` tensor alone from the folder's safetensors weights (no encoder weight is read)."""
    if rows == 0:
        return torch.zeros(0, hidden)
    name = "skill_embeddings"
    index = folder / "model.safetensors.index.json"
    try:
        weights = folder / (
            json.loads(index.read_text())["weight_map"][name] if index.is_file() else "model.safetensors"
        )
        with safe_open(str(weights), framework="pt") as f:
            vectors = f.get_tensor(name).to(torch.float32)
    except (OSError, KeyError, ValueError, RuntimeError) as error:
        raise BuildError(f"cannot read the skill vectors of {folder} ({error}); rebuild the model folder") from error
    if tuple(vectors.shape) != (rows, hidden):
        raise BuildError(f"{folder}: skill vectors of shape {tuple(vectors.shape)}, the config says ({rows}, {hidden})")
    return vectors.contiguous()
