"""ONNX export of a ConTeXT-match encoder that keeps the token vectors, and its int8 dynamic quantisation.

The exported graph maps ``input_ids`` and ``attention_mask`` (both int64, dynamic batch and sequence axes) to
``token_embeddings`` (B, L, H, float32) and the attention mask: everything ConTeXT-match's token attention needs.
Third-party ONNX ports of sentence-transformers models end in a pooled sentence vector, which loses the tokens. The
tokenizer, the config and the skill index stay where they are in the model folder; the files written are

    <folder>/onnx/model.onnx        fp32, checked with onnx.checker and against PyTorch on a sample batch
    <folder>/onnx/model_int8.onnx   with ``int8=True``: weights int8 per channel, activations quantised at run time
                                    (each graph keeps its weights beside it in ``<name>.data``)
    <folder>/onnx/export.json       versions, opset, the parity check, the quantisation settings, the source weights

Int8 (measured in the README): every linear layer of the encoder is quantised, weights per output channel and
activations per batch, after its few outlier input channels are split off into a small float32 product
(:mod:`labor_encoders.backends.int8_split`); without that split the token vectors' cosine to the fp32 ones falls to
about 0.81.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..errors import ExportError

logger = logging.getLogger(__name__)

ONNX_DIR = "onnx"
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model_int8.onnx"}
EXPORT_INFO = "export.json"
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAMES = ("token_embeddings", "token_mask")
_SAMPLE = ["Strong knowledge of PostgreSQL, Spark and Airflow; you enjoy mentoring juniors.", "Team player."]


def onnx_path(folder: str | Path, backend: str = "onnx") -> Path:
    """Where ``backend`` (``onnx`` or ``onnx-int8``) expects its graph inside a model folder."""
    return Path(folder) / ONNX_DIR / ONNX_FILES[backend]


def data_file(graph: str | Path) -> Path:
    """The weights file beside a graph (``model.onnx`` -> ``model.onnx.data``)."""
    return Path(graph).with_name(Path(graph).name + ".data")


def export_command(folder: str | Path, backend: str = "onnx") -> str:
    """The command that writes ``backend``'s graph into ``folder``."""
    return f"labor-encoders export-onnx {folder}" + (" --int8" if backend == "onnx-int8" else "")


def token_encoder(encoder):
    """The module that is exported: ``encoder`` alone, returning its token vectors and the mask."""
    import torch

    class TokenEncoder(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
            return hidden, attention_mask

    return TokenEncoder(encoder).eval()


def export_onnx(
    model_dir: str | Path,
    output: str | Path | None = None,
    int8: bool = False,
    calibration: str | Path | None = None,
    outlier_channels: int | None = None,
) -> dict[str, Path]:
    """Export the encoder of the ConTeXT-match folder ``model_dir`` to ONNX (and int8 with ``int8=True``).

    With ``output`` the folder is first copied there (so the source, e.g. the cached default, stays untouched) and
    the graphs go into the copy. ``calibration`` (a text file, one text a line; default: ESCO skill descriptions)
    and ``outlier_channels`` (per linear layer, default 4) set the int8 split
    (:mod:`labor_encoders.backends.int8_split`).
    Returns the paths written, by backend name.
    """
    from ..build import copy_model, load_contextmatch
    from . import int8_split

    texts = int8_split.calibration_texts(calibration) if int8 else []  # a bad file stops the export before any work
    k = int8_split.OUTLIER_CHANNELS if outlier_channels is None else outlier_channels
    if k < 1:
        raise ExportError(f"the outlier channels per layer must be at least 1, got {k}")
    folder = Path(model_dir)
    if output is not None and Path(output).resolve() != folder.resolve():
        folder = copy_model(folder, output)
    model = load_contextmatch(folder)
    target = folder / ONNX_DIR
    target.mkdir(exist_ok=True)
    paths = {"onnx": export_encoder(model, onnx_path(folder))}
    info = {"exported": paths["onnx"].name, **_versions(), **_parity(model, paths["onnx"])}
    if int8:
        paths["onnx-int8"], split = quantize_int8(model, onnx_path(folder, "onnx-int8"), texts, k)
        split["calibration"] = {"source": str(calibration or "ESCO skill descriptions"), "texts": len(texts)}
        info["int8"] = {"file": paths["onnx-int8"].name, **INT8_SETTINGS, **split, **_parity(model, paths["onnx-int8"])}
    info["weights"] = weights_stamp(folder)
    (target / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return paths


def export_encoder(model, path: str | Path) -> Path:
    """Write the ONNX graph of ``model.encoder`` (token vectors and mask out) to ``path`` and check it."""
    import onnx
    import torch

    path = Path(path)
    sample = model.tokenizer(_SAMPLE, padding=True, return_tensors="pt")
    wrapped = token_encoder(model.encoder).to("cpu").float()
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dims = {name: {0: batch, 1: sequence} for name in INPUT_NAMES}
    start = time.perf_counter()
    with torch.inference_mode(False), torch.no_grad(), quiet_exporters():
        program = torch.onnx.export(
            wrapped,
            (sample["input_ids"], sample["attention_mask"]),
            dynamo=True,
            dynamic_shapes=dims,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            verbose=False,
        )
    for stale in (path, data_file(path)):
        stale.unlink(missing_ok=True)
    program.save(str(path), external_data=True)  # onnxruntime maps the weights file: a lower peak RSS than protobuf
    onnx.checker.check_model(str(path), full_check=False)
    logger.info("exported %s in %.0f s", path, time.perf_counter() - start)
    return path


# onnxruntime.quantization.quantize_dynamic settings (the outlier products are excluded by node, see int8_split)
INT8_SETTINGS: dict[str, Any] = {
    "weight_type": "QInt8",
    "per_channel": True,
    "op_types_to_quantize": ["MatMul"],
    "extra_options": {"MatMulConstBOnly": True},
}


def quantize_int8(model, path: str | Path, texts: list[str], outlier_channels: int) -> tuple[Path, dict[str, Any]]:
    """The int8 graph of ``model``'s encoder at ``path``: its linear layers split around their ``outlier_channels``
    widest input channels (found on the calibration ``texts``), exported, then quantised (see the module docstring).
    Returns the path and what the split used, for ``export.json``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from . import int8_split

    path = Path(path)
    k = outlier_channels
    start = time.perf_counter()
    ranges = int8_split.input_ranges(model.encoder, model.tokenizer, texts)
    split = SimpleNamespace(tokenizer=model.tokenizer, encoder=int8_split.split_outliers(model.encoder, ranges, k))
    source = path.with_name(path.stem + ".split.onnx")
    try:
        export_encoder(split, source)
        keep = int8_split.float32_products(onnx.load(str(source), load_external_data=False).graph)
        for stale in (path, data_file(path)):
            stale.unlink(missing_ok=True)
        with quiet_exporters():
            quantize_dynamic(
                str(source),
                str(path),
                weight_type=QuantType.QInt8,
                per_channel=INT8_SETTINGS["per_channel"],
                op_types_to_quantize=INT8_SETTINGS["op_types_to_quantize"],
                nodes_to_exclude=keep,
                extra_options=dict(INT8_SETTINGS["extra_options"]),
                use_external_data_format=True,
            )
    finally:
        for temporary in (source, data_file(source)):
            temporary.unlink(missing_ok=True)
    logger.info(
        "quantised %s to int8 in %.0f s (%d float32 outlier products)", path, time.perf_counter() - start, len(keep)
    )
    used = {
        "outlier_channels": k,
        "outlier_ratio": int8_split.OUTLIER_RATIO,
        "split_layers": len(keep),
    }
    return path, used


@contextlib.contextmanager
def quiet_exporters() -> Iterator[None]:
    """Silence the exporter's and the quantiser's chatter (INFO logs of every graph pass, progress prints on stdout,
    advice on the root logger) so that a command prints its own result; their warnings and errors still show."""
    names = ("torch.onnx", "onnx_ir", "onnxscript", "")  # "" is the root logger, which the quantiser logs to
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(
            logging.ERROR if lg.name in ("root", "torch.onnx") else max(lg.getEffectiveLevel(), logging.WARNING)
        )
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*axis name.*will not be used", category=UserWarning)
            warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated", category=FutureWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def session_options(threads: int | None = None):
    """onnxruntime session options: intra-op threads = ``threads``, else ``OMP_NUM_THREADS`` (which Ray sets to each
    actor's CPUs, and PyTorch also follows), else the cores this process may use."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    omp = os.environ.get("OMP_NUM_THREADS", "")
    options.intra_op_num_threads = threads or (int(omp) if omp.isdigit() and int(omp) > 0 else available_cores())
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle workers sleep instead of spinning: the scoring that follows each run is PyTorch's, on the same cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _parity(model, path: Path) -> dict[str, Any]:
    """Largest absolute difference between the graph's and PyTorch's token vectors on the real tokens of a sample."""
    import numpy as np
    import onnxruntime
    import torch

    sample = model.tokenizer(_SAMPLE, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = model(sample["input_ids"], sample["attention_mask"]).token_embeddings.float().numpy()
    session = onnxruntime.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAMES[0]], {name: sample[name].numpy() for name in INPUT_NAMES})[0]
    real = sample["attention_mask"].numpy().astype(bool)
    cosine = (got * expected).sum(-1) / (np.linalg.norm(got, axis=-1) * np.linalg.norm(expected, axis=-1) + 1e-12)
    return {
        "max_abs_diff": float(np.abs(got - expected)[real].max()),
        "min_token_cosine": round(float(cosine[real].min()), 6),
    }


def _versions() -> dict[str, str]:
    names = ("torch", "transformers", "onnx", "onnxruntime", "onnxscript")
    return {"versions": {name: metadata.version(name) for name in names}}


def weights_stamp(folder: str | Path) -> dict[str, Any]:
    """Size, newest modification time and SHA-256 of the folder's ``*.safetensors`` (what the graphs came from)."""
    files = sorted(Path(folder).glob("*.safetensors"))
    stats = [f.stat() for f in files]
    return {
        "files": [f.name for f in files],
        "size": sum(st.st_size for st in stats),
        "mtime_ns": max((st.st_mtime_ns for st in stats), default=0),
        "sha256": _sha256(files),
    }


def weights_changed(folder: str | Path) -> bool:
    """Whether the folder's weights differ from those the export recorded (size first; the hash if touched)."""
    try:
        recorded = json.loads((Path(folder) / ONNX_DIR / EXPORT_INFO).read_text(encoding="utf-8"))["weights"]
    except (OSError, ValueError, KeyError, TypeError):
        return False  # nothing to compare with: say nothing rather than guess
    files = sorted(Path(folder).glob("*.safetensors"))
    stats = [f.stat() for f in files]
    if [f.name for f in files] != recorded.get("files") or sum(st.st_size for st in stats) != recorded.get("size"):
        return True
    if max((st.st_mtime_ns for st in stats), default=0) == recorded.get("mtime_ns"):
        return False
    return _sha256(files) != recorded.get("sha256")


def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for block in iter(lambda f=f: f.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()
