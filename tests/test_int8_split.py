"""The int8 outlier split (labor_encoders.backends.int8_split): exact in float32, found where the outliers are, kept
float32 by the quantiser, and what makes int8 faithful on an encoder with outlier channels. Tiny models built
in-process; the real-weights figures are in tests/test_onnx.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from labor_encoders.backends import int8_split
from labor_encoders.backends.onnx_export import onnx_path, quiet_exporters
from labor_encoders.build import save_model
from tests.conftest import WORDS, make_tiny_model

SENTENCES = [
    "python and sql",
    "great team work and communication skills",
    " ".join(WORDS[:12]),
    "we build machine learning models with spark",
]

OUTLIERS = [3, 17]
CLI = [sys.executable, "-m", "labor_encoders.cli", "-q"]


def cli(*args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, env=env)


def with_outliers(model, factor: float = 60.0):
    """``model`` with two hidden channels blown up in every LayerNorm but the last (whose output is the token
    vectors), as trained BERT-style encoders have them."""
    norms = [module for module in model.encoder.modules() if isinstance(module, torch.nn.LayerNorm)]
    with torch.no_grad():
        for module in norms[:-1]:
            module.weight[OUTLIERS] *= factor
    return model


def token_vectors(session: onnxruntime.InferenceSession, batch) -> np.ndarray:
    feed = {name: batch[name].numpy() for name in ("input_ids", "attention_mask")}
    return session.run(["token_embeddings"], feed)[0]


def cosines(got: np.ndarray, expected: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Cosine of each real token's vectors over the ordinary channels (the outlier ones would dominate it)."""
    ordinary = [channel for channel in range(got.shape[-1]) if channel not in OUTLIERS]
    got, expected = got[..., ordinary], expected[..., ordinary]
    dot = (got * expected).sum(-1) / (np.linalg.norm(got, axis=-1) * np.linalg.norm(expected, axis=-1))
    return dot[mask.astype(bool)]


def test_a_split_layer_is_the_original_layer_in_float32() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 20)
    split = int8_split.OutlierSplitLinear(layer, torch.tensor([40, 2, 7]))
    x = torch.randn(3, 5, 48)
    x[..., 7] *= 100
    torch.testing.assert_close(split(x), layer(x), atol=1e-4, rtol=1e-5)
    assert split.linear.weight[:, [2, 7, 40]].abs().sum() == 0  # the int8 product never sees those channels
    assert split.outlier_weight.shape == (3, 20)


def test_ranges_are_taken_on_real_tokens_only(tiny_tokenizer) -> None:
    model = make_tiny_model(tiny_tokenizer, "bert")
    together = int8_split.input_ranges(model.encoder, model.tokenizer, SENTENCES, batch_size=4)
    alone = [int8_split.input_ranges(model.encoder, model.tokenizer, [s]) for s in SENTENCES]
    assert len(together) == 12  # 2 layers x (query, key, value, attention output, up, down)
    for name, found in together.items():
        torch.testing.assert_close(found, torch.stack([a[name] for a in alone]).amax(0), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["bert", "mpnet"])
def test_only_layers_with_outlier_inputs_are_split_and_the_encoder_is_unchanged(tiny_tokenizer, kind) -> None:
    model = with_outliers(make_tiny_model(tiny_tokenizer, kind))
    ranges = int8_split.input_ranges(model.encoder, model.tokenizer, SENTENCES)
    split = int8_split.split_outliers(model.encoder, ranges, k=2)
    layers = dict(split.named_modules())
    chosen = {name for name, m in layers.items() if isinstance(m, int8_split.OutlierSplitLinear)}
    assert chosen == {name for name, r in ranges.items() if r.max() > int8_split.OUTLIER_RATIO * r.median()}
    assert chosen and len(chosen) < len(ranges)  # the LayerNorm outputs' readers, not the attention output
    for name in chosen:
        assert set(layers[name].channels.tolist()) == {3, 17}
    batch = model.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.inference_mode():
        torch.testing.assert_close(split(**batch)[0], model.encoder(**batch)[0], atol=1e-4, rtol=1e-4)
    assert next(model.encoder.modules()) is not split  # a copy: the model keeps its own layers
    assert not any(isinstance(m, int8_split.OutlierSplitLinear) for m in model.encoder.modules())
    with pytest.raises(ValueError, match="at least 1"):
        int8_split.split_outliers(model.encoder, ranges, k=0)


@pytest.mark.slow
def test_an_encoder_with_outliers_exports_an_int8_graph_whose_outlier_products_alone_stay_float32(
    tiny_tokenizer, tmp_path
) -> None:
    model = with_outliers(make_tiny_model(tiny_tokenizer, "bert"))
    folder = save_model(model, tmp_path / "model")
    calibration = tmp_path / "calibration.txt"
    calibration.write_text("\n".join(SENTENCES * 2) + "\n\n", encoding="utf-8")
    done = cli("export-onnx", str(folder), "--int8", "--calibration", str(calibration), "--outlier-channels", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(onnx_path(folder)), str(onnx_path(folder, "onnx-int8"))]
    info = json.loads((folder / "onnx" / "export.json").read_text())["int8"]
    assert info["outlier_channels"] == 2 and info["split_layers"] > 0
    assert info["calibration"] == {"source": str(calibration), "texts": len(SENTENCES)}

    graph = onnx.load(str(onnx_path(folder, "onnx-int8"))).graph
    weights = {init.name for init in graph.initializer}
    float_products = [node for node in graph.node if node.op_type == "MatMul" and node.input[1] in weights]
    assert len(float_products) == info["split_layers"]  # of the layers' products, only the outlier ones are float32
    assert {_producers(graph)[node.input[0]] for node in float_products} == {"Gather"}
    quantised = [node for node in graph.node if node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")]
    assert len(quantised) == 12  # every linear layer: 2 x (query, key, value, attention output, up, down)

    texts = ["team work with python", "strong sql and spark skills", " ".join(WORDS[5:20])]  # not the calibration
    batch = model.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = model.encoder(**batch)[0].numpy()
    got = token_vectors(_session(onnx_path(folder, "onnx-int8")), batch)
    assert cosines(got, expected, batch["attention_mask"].numpy()).min() > 0.99


def test_the_split_keeps_int8_faithful_where_plain_quantisation_is_not(tmp_path) -> None:
    """One linear layer whose input has two outlier channels, quantised by onnxruntime as the export does: as it is,
    and split. Only the split one stays close to float32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 48).eval()

    def inputs(n: int) -> torch.Tensor:
        x = torch.randn(1, n, 64)
        x[..., [5, 40]] *= 80
        return x

    ranges = {"": inputs(64)[0].abs().amax(0)}
    split = int8_split.OutlierSplitLinear(layer, ranges[""].topk(2).indices).eval()
    x = inputs(32)
    with torch.inference_mode():
        expected = layer(x).numpy()
    errors = {}
    for name, module in {"plain": layer, "split": split}.items():
        graph = tmp_path / f"{name}.onnx"
        with torch.inference_mode(False), torch.no_grad(), quiet_exporters():
            torch.onnx.export(module, (x,), dynamo=True, input_names=["x"]).save(str(graph))
        quantised = tmp_path / f"{name}_int8.onnx"
        keep = int8_split.float32_products(onnx.load(str(graph)).graph)
        assert len(keep) == (name == "split")
        quantize_dynamic(
            str(graph), str(quantised), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=keep
        )
        got = _session(quantised).run(None, {"x": x.numpy()})[0]
        errors[name] = float(np.linalg.norm(got - expected) / np.linalg.norm(expected))
    assert errors["split"] < 0.005 and errors["plain"] > 10 * errors["split"], errors  # measured 0.0006 and 0.025


@pytest.mark.slow
def test_a_bad_calibration_file_stops_the_export_before_any_work(tiny_tokenizer, tmp_path) -> None:
    folder = save_model(make_tiny_model(tiny_tokenizer, "bert"), tmp_path / "model")
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    for args, message in [
        (["--int8", "--calibration", str(tmp_path / "missing.txt")], "cannot read the calibration texts"),
        (["--int8", "--calibration", str(tmp_path / "empty.txt")], "has no text"),
        (["--int8", "--outlier-channels", "0"], "at least 1"),
        (["--calibration", str(tmp_path / "empty.txt")], "add --int8"),
    ]:
        done = cli("export-onnx", str(folder), *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
        assert not (folder / "onnx").exists()


def test_calibration_texts_from_a_file_or_esco_with_clear_errors(tmp_path) -> None:
    path = tmp_path / "ads.txt"
    path.write_text("one\n\n  two  \none\n" + "".join(f"line {i}\n" for i in range(20)), encoding="utf-8")
    assert int8_split.calibration_texts(path)[:2] == ["one", "two"]
    assert len(int8_split.calibration_texts(path)) == 22
    sample = int8_split.calibration_texts(path, limit=5)
    assert len(sample) == 5 and sample == int8_split.calibration_texts(path, limit=5)
    esco = int8_split.calibration_texts()
    assert len(esco) == int8_split.CALIBRATION_TEXTS and all(text.strip() for text in esco)
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(ValueError, match="has no text"):
        int8_split.calibration_texts(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match="cannot read the calibration texts.*UTF-8 text file"):
        int8_split.calibration_texts(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="cannot read the calibration texts"):
        int8_split.calibration_texts(tmp_path / "latin1.txt")


def _producers(graph) -> dict[str, str]:
    return {output: node.op_type for node in graph.node for output in node.output}


def _session(path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
