"""Inference backends for ConTeXT-match: the same ``extract`` on PyTorch or on an ONNX export.

Every backend returns an object whose ``extract(texts, threshold=None, top_k=None, redundancy_filter=None,
batch_size=32)`` gives exactly what :meth:`ConTeXTMatchModel.extract` gives (one dict per text with its skills,
scores and evidence), so the CLI's ``extract`` and ``batch`` commands take ``--backend`` and nothing else changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BACKENDS = ("torch", "onnx", "onnx-int8")


class BackendError(ValueError):
    """An unknown backend, or one that cannot run here, with the reason and the fix."""


def load_extractor(model: str | Path | None = None, backend: str = "torch", device: str | None = None) -> Any:
    """A ConTeXT-match extractor for ``model`` (a folder, a Hub repo id, or None for the embedded default)."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    from .build import load_contextmatch, resolve_model_dir

    if backend == "torch":
        return load_contextmatch(resolve_model_dir(model), device=device)
    raise BackendError(f"the {backend!r} backend is not available yet")
