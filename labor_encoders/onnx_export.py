"""ONNX export of a ConTeXT-match encoder that keeps the token vectors, and its int8 dynamic quantisation.

The exported graph maps ``input_ids`` and ``attention_mask`` (both int64, dynamic batch and sequence axes) to
``token_embeddings`` (B, L, H, float32) and the attention mask: everything ConTeXT-match's token attention needs.
Third-party ONNX ports of sentence-transformers models end in a pooled sentence vector, which loses the tokens. The
tokenizer, the config and the skill index stay where they are in the model folder; the files written are

    <folder>/onnx/model.onnx        fp32, checked with onnx.checker and against PyTorch on a sample batch
    <folder>/onnx/model_int8.onnx   with ``int8=True``: weights int8 per channel, activations quantised at run time
                                    (each graph keeps its weights beside it in ``<name>.data``)
    <folder>/onnx/export.json       versions, opset, the parity check, the quantisation settings, the source weights

Int8 choice (measured in the README): only the linear layers (MatMuls with a constant weight) are quantised, per
output channel; the feed-forward down-projections stay float32. Their input, the GELU output, carries the outlier
channels of BERT-style encoders (Bondarenko et al. 2021, "Understanding and Overcoming the Challenges of Efficient
Transformer Quantization"), which one per-tensor uint8 scale per batch, all onnxruntime's dynamic quantisation
offers, crushes: quantising them too drops the token vectors' cosine to the fp32 ones to about 0.87.
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
from typing import Any

logger = logging.getLogger(__name__)

ONNX_DIR = "onnx"
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model_int8.onnx"}
EXPORT_INFO = "export.json"
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAMES = ("token_embeddings", "token_mask")
_SAMPLE = ["Strong knowledge of PostgreSQL, Spark and Airflow; you enjoy mentoring juniors.", "Team player."]


class ExportError(ValueError):
    """An export that cannot be done or that does not reproduce PyTorch, with the reason."""


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


def export_onnx(model_dir: str | Path, output: str | Path | None = None, int8: bool = False) -> dict[str, Path]:
    """Export the encoder of the ConTeXT-match folder ``model_dir`` to ONNX (and int8 with ``int8=True``).

    With ``output`` the folder is first copied there (so the source, e.g. the cached default, stays untouched) and
    the graphs go into the copy. Returns the paths written, by backend name.
    """
    from .build import copy_model, load_contextmatch

    folder = Path(model_dir)
    if output is not None and Path(output).resolve() != folder.resolve():
        folder = copy_model(folder, output)
    model = load_contextmatch(folder)
    target = folder / ONNX_DIR
    target.mkdir(exist_ok=True)
    paths = {"onnx": export_encoder(model, onnx_path(folder))}
    info = {"exported": paths["onnx"].name, **_versions(), **_parity(model, paths["onnx"])}
    if int8:
        paths["onnx-int8"] = quantize_int8(paths["onnx"], onnx_path(folder, "onnx-int8"), model.config)
        info["int8"] = {"file": paths["onnx-int8"].name, **INT8_SETTINGS, **_parity(model, paths["onnx-int8"])}
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


# onnxruntime.quantization.quantize_dynamic settings (the FFN down-projections are excluded by node, see above)
INT8_SETTINGS: dict[str, Any] = {
    "weight_type": "QInt8",
    "per_channel": True,
    "op_types_to_quantize": ["MatMul"],
    "extra_options": {"MatMulConstBOnly": True},
    "kept_float32": "feed-forward down-projections (input: the GELU output)",
}


def quantize_int8(source: str | Path, path: str | Path, config) -> Path:
    """Int8 dynamic quantisation of the fp32 graph ``source`` into ``path`` (see the module docstring)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, path = Path(source), Path(path)
    keep = down_projections(source, config.encoder_config.intermediate_size, config.hidden_size)
    if not keep:
        raise ExportError(f"{source}: found no feed-forward down-projection to keep in float32; cannot quantise")
    for stale in (path, data_file(path)):
        stale.unlink(missing_ok=True)
    start = time.perf_counter()
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
    logger.info(
        "quantised %s to int8 in %.0f s (%d down-projections kept float32)",
        path,
        time.perf_counter() - start,
        len(keep),
    )
    return path


def down_projections(path: str | Path, intermediate: int, hidden: int) -> list[str]:
    """Names of the MatMul nodes whose constant weight maps the feed-forward width back to the hidden width."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and shapes.get(node.input[1]) == (intermediate, hidden)
    ]


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
