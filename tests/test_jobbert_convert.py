"""JobBERT folders from and to the sentence-transformers layout of TechWolf/JobBERT-v2, checked against the real
sentence-transformers library: the same titles give the same vectors on both sides."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from labor_encoders.build import BuildError
from labor_encoders.jobbert import build_jobbert, export_sentence_transformers, read_asym_heads
from tests.test_jobbert import QUERIES, TITLES

HIDDEN, PROJECTION = 32, 48
SKILL_LISTS = [["python", "sql"], ["team work", "communication"], []]


def _st():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import Asym, Dense, Pooling, Transformer
    return SentenceTransformer, Transformer, Pooling, Dense, Asym


def _dense(bias: bool, activation: nn.Module, seed: int):
    _, _, _, Dense, _ = _st()
    torch.manual_seed(seed)
    return Dense(HIDDEN, PROJECTION, bias=bias, activation_function=activation)


@pytest.fixture(scope="module")
def st6_layout(tmp_path_factory, tiny_encoder_dir) -> Path:
    """Transformer -> mean Pooling -> Asym(anchor: Dense+Tanh, positive: Dense without bias), saved by
    sentence-transformers 6 itself (router_config.json)."""
    SentenceTransformer, Transformer, Pooling, _, Asym = _st()
    asym = Asym({"anchor": [_dense(True, nn.Tanh(), 1)], "positive": [_dense(False, nn.Identity(), 2)]})
    model = SentenceTransformer(modules=[Transformer(str(tiny_encoder_dir)), Pooling(HIDDEN, "mean"), asym])
    folder = tmp_path_factory.mktemp("st6-jobbert")
    model.save(str(folder))
    return folder


@pytest.fixture(scope="module")
def jobbert_v2_layout(tmp_path_factory, tiny_encoder_dir) -> Path:
    """Exactly the files of TechWolf/JobBERT-v2 (sentence-transformers 3): modules.json with a
    sentence_transformers.models.Asym at 2_Asym, whose config.json names one Dense folder per branch."""
    folder = tmp_path_factory.mktemp("jobbert-v2")
    for item in tiny_encoder_dir.iterdir():
        shutil.copy(item, folder / item.name)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Asym", "type": "sentence_transformers.models.Asym"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": False}))
    pooling = {"word_embedding_dimension": HIDDEN, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    ids = {"anchor": "139823180934096_Dense", "positive": "139823180930832_Dense"}
    asym = {
        "types": {module_id: "sentence_transformers.models.Dense" for module_id in ids.values()},
        "structure": {branch: [module_id] for branch, module_id in ids.items()},
        "parameters": {"allow_empty_key": True},
    }
    (folder / "2_Asym").mkdir()
    (folder / "2_Asym" / "config.json").write_text(json.dumps(asym))
    for seed, module_id in enumerate(ids.values(), start=3):
        generator = torch.Generator().manual_seed(seed)
        dense = folder / "2_Asym" / module_id
        dense.mkdir()
        config = {"in_features": HIDDEN, "out_features": PROJECTION, "bias": True}
        config["activation_function"] = "torch.nn.modules.activation.Tanh"
        (dense / "config.json").write_text(json.dumps(config))
        state = {
            "linear.weight": torch.randn(PROJECTION, HIDDEN, generator=generator) * 0.2,
            "linear.bias": torch.randn(PROJECTION, generator=generator) * 0.1,
        }
        save_file(state, dense / "model.safetensors")
    return folder


def st_vectors(folder: Path, texts: list[str], task: str) -> torch.Tensor:
    SentenceTransformer = _st()[0]
    model = SentenceTransformer(str(folder), device="cpu")
    return torch.nn.functional.normalize(model.encode(texts, task=task, convert_to_tensor=True), dim=-1)


def skills_text(lists) -> list[str]:
    return [", ".join(skills) for skills in lists]


@pytest.mark.parametrize("layout", ["st6_layout", "jobbert_v2_layout"])
def test_conversion_gives_the_vectors_sentence_transformers_gives(layout, request) -> None:
    folder = request.getfixturevalue(layout)
    model = build_jobbert(folder, TITLES)
    assert model.config.trained is True and model.config.projection_dim == PROJECTION
    titles = model.encode_titles(QUERIES)
    skills = model.encode_skills(SKILL_LISTS)
    torch.testing.assert_close(titles, st_vectors(folder, QUERIES, "anchor"), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(skills, st_vectors(folder, skills_text(SKILL_LISTS), "positive"), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(titles, model.encode_skills(QUERIES))  # two different heads


def test_head_bias_and_activation_come_from_the_dense_configs(st6_layout, jobbert_v2_layout) -> None:
    model = build_jobbert(st6_layout)
    assert (model.config.title_head_activation, model.config.title_head_bias) == ("tanh", True)
    assert (model.config.skills_head_activation, model.config.skills_head_bias) == ("identity", False)
    assert model.skills_head.bias is None and model.config.num_titles == 0
    legacy = build_jobbert(jobbert_v2_layout)
    assert legacy.config.max_seq_length == 64 and legacy.config.title_head_activation == "tanh"


def test_a_plain_backbone_gets_identity_heads(tiny_encoder_dir) -> None:
    model = build_jobbert(tiny_encoder_dir, TITLES, projection_dim=40)
    assert model.config.trained is False and model.config.projection_dim == 40
    assert read_asym_heads(tiny_encoder_dir) is None
    torch.testing.assert_close(model.title_head.weight[:, :HIDDEN][:HIDDEN], torch.eye(HIDDEN))


def test_export_loads_in_sentence_transformers_and_converts_back(st6_layout, tmp_path) -> None:
    model = build_jobbert(st6_layout, TITLES)
    out = export_sentence_transformers(model, tmp_path / "exported")
    assert json.loads((out / "modules.json").read_text())[2]["type"] == "sentence_transformers.models.Asym"
    torch.testing.assert_close(st_vectors(out, QUERIES, "anchor"), model.encode_titles(QUERIES), atol=1e-5, rtol=1e-4)
    expected = model.encode_skills(SKILL_LISTS)
    torch.testing.assert_close(st_vectors(out, skills_text(SKILL_LISTS), "positive"), expected, atol=1e-5, rtol=1e-4)
    SentenceTransformer = _st()[0]
    plain = SentenceTransformer(str(out), device="cpu").encode(QUERIES, convert_to_tensor=True)
    assert plain.shape[1] == PROJECTION  # a plain encode() goes through the title head, never around it
    again = build_jobbert(out)
    torch.testing.assert_close(again.encode_skills(SKILL_LISTS), expected, atol=1e-6, rtol=1e-5)
    assert again.config.skills_head_bias is False and again.config.title_head_activation == "tanh"


def _edit_asym(src: Path, dst: Path, edit) -> Path:
    shutil.copytree(src, dst)
    config_file = dst / "2_Asym" / "config.json"
    config = json.loads(config_file.read_text())
    edit(config, dst / "2_Asym")
    config_file.write_text(json.dumps(config))
    return dst


def test_unusable_asym_folders_are_refused_with_the_reason(jobbert_v2_layout, tmp_path) -> None:
    def drop_positive(config, _):
        config["structure"].pop("positive")

    folder = _edit_asym(jobbert_v2_layout, tmp_path / "a", drop_positive)
    with pytest.raises(BuildError, match="no 'positive' or 'document' branch"):
        build_jobbert(folder)

    def two_modules(config, _):
        config["structure"]["anchor"] = config["structure"]["anchor"] * 2

    with pytest.raises(BuildError, match="exactly one Dense"):
        build_jobbert(_edit_asym(jobbert_v2_layout, tmp_path / "b", two_modules))

    def odd_activation(config, asym_dir):
        dense = asym_dir / config["structure"]["anchor"][0] / "config.json"
        dense.write_text(json.dumps(json.loads(dense.read_text()) | {"activation_function": "my.Swish"}))

    with pytest.raises(BuildError, match="my.Swish"):
        build_jobbert(_edit_asym(jobbert_v2_layout, tmp_path / "c", odd_activation))

    def no_weights(config, asym_dir):
        (asym_dir / config["structure"]["positive"][0] / "model.safetensors").unlink()

    with pytest.raises(BuildError, match="no weights"):
        build_jobbert(_edit_asym(jobbert_v2_layout, tmp_path / "d", no_weights))


def test_older_dense_weights_in_pytorch_model_bin_are_read(jobbert_v2_layout, tmp_path) -> None:
    folder = shutil.copytree(jobbert_v2_layout, tmp_path / "bin")
    for weights in (folder / "2_Asym").glob("*/model.safetensors"):
        from safetensors.torch import load_file

        torch.save(load_file(weights), weights.with_name("pytorch_model.bin"))
        weights.unlink()
    expected = build_jobbert(jobbert_v2_layout).encode_titles(QUERIES)
    torch.testing.assert_close(build_jobbert(folder).encode_titles(QUERIES), expected)
