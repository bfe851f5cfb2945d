"""Inference backends for ConTeXT-match: the same ``extract`` on PyTorch or on an ONNX export.

Every backend returns an object whose ``extract(texts, threshold=None, top_k=None, redundancy_filter=None,
batch_size=32)`` gives exactly what :meth:`ConTeXTMatchModel.extract` gives (one dict per text with its skills,
scores and evidence), so the CLI's ``extract`` and ``batch`` commands take ``--backend`` and nothing else changes.

- ``torch``: the model folder loaded with PyTorch (:func:`labor_encoders.build.load_contextmatch`).
- ``onnx`` / ``onnx-int8``: :class:`~labor_encoders.backends.onnx_model.OnnxContextMatch`, the same model class (its
  tokenisation, windows, scoring, redundancy filter and evidence code) with the encoder replaced by an onnxruntime
  session over ``<folder>/onnx/model.onnx`` or ``model_int8.onnx``. The encoder's PyTorch weights are never
  loaded: only the config, the tokenizer, the skill labels and the skill vectors (read alone from the safetensors
  file). The graphs are written once by ``labor-encoders export-onnx FOLDER [--int8]``; a folder without them is an
  error that names that command (an export loads the PyTorch weights and takes about a minute for all-mpnet-base-v2, too
  much to do silently inside a batch run).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..errors import LaborEncodersError

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx-int8")


class BackendError(LaborEncodersError):
    """An unknown backend, or one that cannot run here, with the reason and the fix."""


def load_extractor(
    model: str | Path | None = None, backend: str = "torch", device: str | None = None, threads: int | None = None
) -> Any:
    """A ConTeXT-match extractor for ``model`` (a folder, a Hub repo id, or None for the embedded default).

    ``device`` applies to the torch backend; the ONNX backends run on CPU with ``threads`` intra-op threads
    (default: the cores this process may use).
    """
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    from ..build import load_contextmatch, resolve_model_dir

    folder = resolve_model_dir(model)
    if backend == "torch":
        return load_contextmatch(folder, device=device)
    if device not in (None, "cpu"):
        raise BackendError(f"the {backend} backend runs on CPU; use --backend torch for device {device!r}")
    return load_onnx_contextmatch(folder, backend, threads=threads)


def load_onnx_contextmatch(folder: str | Path, backend: str = "onnx", threads: int | None = None):
    """A :class:`OnnxContextMatch` over the ``backend`` graph of the local model folder ``folder``."""
    from ..build import BuildError
    from .onnx_export import export_command, onnx_path, weights_changed

    folder = Path(folder)
    if not folder.is_dir():
        raise BackendError(
            f"the {backend} backend needs a local model folder, and {folder} is not one. Download or build the "
            f"model into a folder, then run `{export_command('FOLDER', backend)}`"
        )
    config_file = folder / "config.json"
    if not config_file.is_file() or json.loads(config_file.read_text()).get("model_type") != "contextmatch":
        raise BuildError(f"{folder} is not a ConTeXT-match model folder (no config.json of model_type contextmatch)")
    graph = onnx_path(folder, backend)
    if not graph.is_file():
        raise BackendError(
            f"{folder} has no ONNX export for the {backend} backend ({graph} is missing); create it with "
            f"`{export_command(folder, backend)}`"
        )
    try:
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise BackendError(
            f"the {backend} backend needs onnxruntime ({error}): pip install 'labor-encoders[batch]'"
        ) from None
    if weights_changed(folder):
        logger.warning(
            "the weights in %s changed after the ONNX export: the %s backend runs the old ones; run `%s` again",
            folder,
            backend,
            export_command(folder, backend),
        )
    from .onnx_model import OnnxContextMatch

    return OnnxContextMatch.from_folder(folder, graph, threads=threads)
