"""ONNX export (token vectors kept) and the onnx / onnx-int8 backends, checked against the PyTorch model.

Tiny BERT and MPNet models are exported in-process into temporary folders. The ``real_weights`` tests export the
embedded default model, fp32 and int8 (a copy in a temporary folder: the user cache is never written), and check fp32
parity and int8 fidelity and ranking on benchmark files read in place from ``../shared/data``.
"""

from __future__ import annotations

import csv
import json
import logging

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from labor_encoders.backends import BackendError, load_extractor
from labor_encoders.backends.onnx_export import INPUT_NAMES, OUTPUT_NAMES, export_onnx, onnx_path
from labor_encoders.build import save_model
from tests.conftest import WORDS, make_tiny_model

AD = "We offer a bike. Python skills; SQL is a plus.\n- Great team work and communication!\n" + " ".join(WORDS)
TEXTS = [AD, "python", "strong knowledge of databases such as postgresql and experience with spark", "", "  \n "]


@pytest.fixture(scope="module", params=["bert", "mpnet"])
def exported(request, tmp_path_factory, tiny_tokenizer):
    """(torch model, folder with onnx/model.onnx and onnx/model_int8.onnx) for a tiny model of each kind."""
    model = make_tiny_model(tiny_tokenizer, request.param, max_seq_length=24, window_stride=4)
    folder = save_model(model, tmp_path_factory.mktemp(f"onnx-{request.param}") / "model")
    export_onnx(folder, int8=True)
    return model, folder


@pytest.fixture
def bert_model(tiny_tokenizer):
    """One tiny model for the tests of files, errors and the CLI (the kinds are covered by ``exported``)."""
    return make_tiny_model(tiny_tokenizer, "bert")


def _session(path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.slow
def test_the_graph_is_valid_and_maps_ids_and_mask_to_token_vectors_and_mask(exported) -> None:
    _, folder = exported
    graph = onnx.load(str(onnx_path(folder)))
    onnx.checker.check_model(graph)
    assert [i.name for i in graph.graph.input] == list(INPUT_NAMES)
    assert [o.name for o in graph.graph.output] == list(OUTPUT_NAMES)
    info = json.loads((folder / "onnx" / "export.json").read_text())
    assert info["max_abs_diff"] < 1e-4 and info["int8"]["file"] == "model_int8.onnx"
    assert info["weights"]["files"] == ["model.safetensors"]


@pytest.mark.parametrize("shape", [(1, 3), (5, 40), (2, 7)])
def test_fp32_token_vectors_equal_pytorch_for_any_batch_and_length(exported, shape) -> None:
    """Dynamic axes: batch and sequence sizes other than the export sample's, with padded rows."""
    model, folder = exported
    generator = torch.Generator().manual_seed(shape[0] * 100 + shape[1])
    ids = torch.randint(5, len(model.tokenizer), shape, generator=generator)
    mask = torch.ones(shape, dtype=torch.long)
    mask[0, max(1, shape[1] - 2) :] = 0  # padding at the end of the first row
    ids[mask == 0] = model.tokenizer.pad_token_id
    with torch.inference_mode():
        expected = model(ids, mask).token_embeddings.numpy()
    tokens, out_mask = _session(onnx_path(folder)).run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    assert tokens.shape == (*shape, model.config.hidden_size)
    np.testing.assert_array_equal(out_mask, mask.numpy())
    real = mask.numpy().astype(bool)
    np.testing.assert_allclose(tokens[real], expected[real], atol=1e-4, rtol=1e-4)


def test_padding_does_not_change_the_real_tokens(exported) -> None:
    model, folder = exported
    session = _session(onnx_path(folder))
    alone = model.tokenizer(["python sql"], return_tensors="np")
    padded = model.tokenizer(["python sql", AD], padding=True, truncation=True, max_length=40, return_tensors="np")
    one = session.run([OUTPUT_NAMES[0]], {k: alone[k] for k in INPUT_NAMES})[0][0]
    two = session.run([OUTPUT_NAMES[0]], {k: padded[k] for k in INPUT_NAMES})[0][0, : one.shape[0]]
    np.testing.assert_allclose(one, two, atol=1e-5)


def _without_scores(results: list[dict]) -> list[dict]:
    return [{**r, "skills": [{k: v for k, v in s.items() if k != "score"} for s in r["skills"]]} for r in results]


def test_onnx_extract_gives_the_same_skills_evidence_and_scores(exported) -> None:
    model, folder = exported
    backend = load_extractor(folder, "onnx")
    expected, got = model.extract(TEXTS), backend.extract(TEXTS)
    assert _without_scores(got) == _without_scores(expected)  # labels, ids, order and evidence spans
    scores = [[s["score"] for r in results for s in r["skills"]] for results in (expected, got)]
    np.testing.assert_allclose(scores[1], scores[0], atol=2e-4)
    assert got[0]["skills"], "the tiny model at threshold 0 finds skills in the ad"
    ranked = model.rank(TEXTS[:3]), backend.rank(TEXTS[:3])
    torch.testing.assert_close(ranked[1].values, ranked[0].values, atol=1e-5, rtol=1e-5)
    options = {"top_k": 2, "threshold": 0.1, "redundancy_filter": False, "batch_size": 2}
    assert _without_scores(backend.extract(AD, **options)) == _without_scores(model.extract(AD, **options))


def test_the_onnx_backend_holds_no_encoder_weights(exported) -> None:
    _, folder = exported
    backend = load_extractor(folder, "onnx")
    assert backend.encoder is None and not list(backend.parameters())
    assert backend.skill_embeddings.shape == (backend.config.num_skills, backend.config.hidden_size)
    assert backend.device == torch.device("cpu")
    # labels of a new taxonomy are encoded by the graph too, as the PyTorch model encodes them
    model, _ = exported
    torch.testing.assert_close(
        backend.encode_labels(["python", "team work"]),
        model.encode_labels(["python", "team work"]),
        atol=1e-5,
        rtol=1e-5,
    )


def test_int8_runs_and_ranks_close_to_pytorch(exported) -> None:
    model, folder = exported
    backend = load_extractor(folder, "onnx-int8")
    results = backend.extract(TEXTS)
    assert [r["text"] for r in results] == TEXTS
    assert {s["label"] for s in results[0]["skills"]} <= set(model.skill_labels)
    texts = ["python and sql", "great team work and communication", "machine learning models"]
    exact, quantised = model.rank(texts), backend.rank(texts)
    assert (quantised.values - exact.values).abs().max() < 0.05
    assert (exact.indices[:, 0] == quantised.indices[:, 0]).float().mean() >= 2 / 3


def test_a_folder_without_onnx_files_names_the_command_that_writes_them(bert_model, tmp_path) -> None:
    folder = save_model(bert_model, tmp_path / "plain")
    with pytest.raises(BackendError, match=r"labor-encoders export-onnx .*plain`"):
        load_extractor(folder, "onnx")
    with pytest.raises(BackendError, match=r"model_int8.onnx is missing.*export-onnx .*plain --int8"):
        load_extractor(folder, "onnx-int8")
    with pytest.raises(BackendError, match="unknown backend"):
        load_extractor(folder, "tensorrt")
    with pytest.raises(BackendError, match="local model folder"):
        load_extractor(tmp_path / "nowhere", "onnx")


def test_export_to_another_folder_leaves_the_source_untouched(bert_model, tmp_path) -> None:
    source = save_model(bert_model, tmp_path / "source")
    before = sorted(p.name for p in source.iterdir())
    export_onnx(source, output=tmp_path / "copy")
    assert sorted(p.name for p in source.iterdir()) == before
    assert onnx_path(tmp_path / "copy").is_file() and not onnx_path(tmp_path / "copy", "onnx-int8").exists()
    assert load_extractor(tmp_path / "copy", "onnx").extract("python") == bert_model.extract("python")


def test_new_weights_after_the_export_are_reported(bert_model, tmp_path, caplog) -> None:
    folder = save_model(bert_model, tmp_path / "model")
    export_onnx(folder)
    with caplog.at_level(logging.WARNING, logger="labor_encoders"):
        load_extractor(folder, "onnx")
    assert "changed after the ONNX export" not in caplog.text
    with torch.no_grad():
        next(bert_model.encoder.parameters()).add_(0.1)
    bert_model.save_pretrained(folder)  # retrained in place: the graph is now stale
    with caplog.at_level(logging.WARNING, logger="labor_encoders"):
        load_extractor(folder, "onnx")
    assert "changed after the ONNX export" in caplog.text and "export-onnx" in caplog.text


@pytest.mark.slow
def test_cli_export_onnx_then_extract_with_each_backend(bert_model, tmp_path, capsys) -> None:
    from labor_encoders.cli import main

    folder = save_model(bert_model, tmp_path / "model")
    assert main(["-q", "export-onnx", str(folder), "--int8"]) == 0
    assert onnx_path(folder).is_file() and onnx_path(folder, "onnx-int8").is_file()
    capsys.readouterr()
    outputs = {}
    for backend in ("torch", "onnx", "onnx-int8"):
        assert main(["-q", "extract", "--json", "--model", str(folder), "--backend", backend, AD]) == 0
        outputs[backend] = json.loads(capsys.readouterr().out)
    assert _without_scores(outputs["onnx"]) == _without_scores(outputs["torch"])
    assert outputs["onnx-int8"][0]["text"] == AD
    empty = tmp_path / "empty"
    save_model(bert_model, empty)
    assert main(["-q", "extract", "--model", str(empty), "--backend", "onnx", "python"]) == 2
    assert "labor-encoders export-onnx" in capsys.readouterr().err


@pytest.fixture(scope="module")
def real_export(default_model_dir, tmp_path_factory):
    """The embedded default exported, fp32 and int8, into a temporary copy (the user cache is never written)."""
    folder = tmp_path_factory.mktemp("real-onnx") / "model"
    export_onnx(default_model_dir, output=folder, int8=True)
    return folder


@pytest.mark.real_weights
def test_real_model_export_matches_pytorch_on_validation_sentences(real_export, default_model, shared_data) -> None:
    """The embedded default, exported into a temporary copy: fp32 token vectors within 1e-4 and the same extraction
    on SkillSpan validation sentences."""
    with (shared_data / "skillspan-esco" / "tech_validation_annotations.csv").open(encoding="utf-8") as f:
        sentences = list(dict.fromkeys(row["sentence"].strip() for row in csv.DictReader(f)))[:12]
    model = default_model
    backend = load_extractor(real_export, "onnx")
    batch = model.tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = model(batch["input_ids"], batch["attention_mask"]).token_embeddings
    got = backend.embed_tokens(batch["input_ids"], batch["attention_mask"])
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(got[real], expected[real], atol=1e-4, rtol=1e-4)
    expected_results, results = model.extract(sentences), backend.extract(sentences)
    assert _without_scores(results) == _without_scores(expected_results)
    assert sum(len(r["skills"]) for r in results) > 0


@pytest.mark.real_weights
def test_real_model_int8_keeps_the_token_vectors_and_the_ranking(real_export, default_model, shared_data) -> None:
    """Int8 with the outlier split, on text it was not calibrated on (its calibration texts are ESCO descriptions):
    token vectors on Skill-XL development sentences, and the ranking of the 13,896 benchmark labels on HOUSE + TECH
    validation (label vectors from PyTorch, as a deployed folder carries them) within a point of PyTorch's."""
    import copy

    from labor_encoders.evaluation.benchmarks import with_benchmark_index
    from labor_encoders.evaluation.int8_fidelity import skill_xl_sentences
    from labor_encoders.evaluation.skillspan import evaluate_ranking, load_skillspan, read_labels

    info = json.loads((real_export / "onnx" / "export.json").read_text())["int8"]
    assert info["split_layers"] >= 24 and info["min_token_cosine"] > 0.99
    backend = load_extractor(real_export, "onnx-int8")
    sentences = skill_xl_sentences(shared_data / "skill-xl" / "development_a.csv", 256)  # as the README's figures
    found = []
    for start in range(0, 256, 32):
        batch = default_model.tokenizer(sentences[start : start + 32], padding=True, return_tensors="pt")
        with torch.inference_mode():
            expected = default_model(batch["input_ids"], batch["attention_mask"]).token_embeddings
        got = backend.embed_tokens(batch["input_ids"], batch["attention_mask"])
        real = batch["attention_mask"].bool()
        found.append(torch.nn.functional.cosine_similarity(got[real], expected[real], dim=-1))
    cosine = torch.cat(found)
    assert cosine.mean() > 0.99 and cosine.quantile(0.01) > 0.98  # measured 0.997 and 0.994

    labels = shared_data / "skillspan-esco" / "skills_en_label.txt"
    exact = with_benchmark_index(copy.deepcopy(default_model), labels)
    backend.set_skill_index(exact.skill_labels, embeddings=exact.skill_embeddings, taxonomy=labels.name)
    files = [shared_data / "skillspan-esco" / f"{split}_validation_annotations.csv" for split in ("house", "tech")]
    examples = load_skillspan(files, read_labels(labels))
    with torch.inference_mode():
        reference, quantised = evaluate_ranking(exact, examples), evaluate_ranking(backend, examples)
    assert quantised["mrr"] >= reference["mrr"] - 0.01
    assert quantised["rp@5"] >= reference["rp@5"] - 1.5 and quantised["rp@10"] >= reference["rp@10"] - 1.5
