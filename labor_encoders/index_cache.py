"""Encoded skill indexes cached on disk, keyed by the encoder's weights and the label list.

Swapping a 13.9k-label taxonomy into a model costs minutes of CPU encoding; benchmarks do it on every run (they rank
against ESCO v1.1.0 labels, not the model's own index). The cache key is content-based: a fingerprint of every
encoder tensor plus the labels and the label length limit, so a fine-tuned model never reuses stale vectors.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .assets import cache_dir
from .atomic import write_file

logger = logging.getLogger(__name__)


def encoder_fingerprint(model: torch.nn.Module) -> str:
    """A short hash of every tensor of ``model.encoder`` (shapes and sums: fast, and changes with any update)."""
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in model.encoder.state_dict().items():
            t = tensor.detach().double()
            digest.update(f"{name}{tuple(t.shape)}{t.sum().item():.10e}{t.abs().sum().item():.10e}".encode())
    return digest.hexdigest()[:24]


def index_key(model: torch.nn.Module, labels: Sequence[str]) -> str:
    digest = hashlib.sha256(encoder_fingerprint(model).encode())
    digest.update(f"max_len={model.config.label_max_seq_length}\n".encode())
    digest.update("\n".join(labels).encode())
    return digest.hexdigest()[:32]


def cached_label_embeddings(
    model: torch.nn.Module, labels: Sequence[str], folder: str | Path | None = None
) -> tuple[torch.Tensor, Path]:
    """``model.encode_labels(labels)``, reused from the cache when the same weights encoded them before; returns the
    vectors and the cache file. Nothing on the model changes."""
    folder = Path(folder) if folder is not None else cache_dir() / "skill-index-cache"
    path = folder / f"{index_key(model, labels)}.safetensors"
    embeddings = None
    if path.is_file():
        try:
            embeddings = load_file(str(path))["embeddings"]
        except Exception as error:  # a truncated cache file is re-encoded, never trusted
            logger.warning("ignoring unreadable index cache %s (%s)", path, error)
    if embeddings is None or embeddings.shape[0] != len(labels):
        logger.info("encoding %d labels (cached in %s for the next run)", len(labels), path)
        embeddings = model.encode_labels(list(labels))
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"embeddings": embeddings.contiguous()}
        write_file(path, lambda tmp: save_file(tensors, str(tmp)))
    return embeddings, path


def set_cached_skill_index(
    model: torch.nn.Module,
    labels: Sequence[str],
    ids: Sequence[str] | None = None,
    taxonomy: str | None = None,
    folder: str | Path | None = None,
) -> Path:
    """``model.set_skill_index(labels, ids)``, reusing vectors encoded before by the same weights; returns the file."""
    embeddings, path = cached_label_embeddings(model, labels, folder)
    model.set_skill_index(labels, ids, embeddings=embeddings, taxonomy=taxonomy)
    return path
