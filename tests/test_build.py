"""Building ConTeXT-match folders from sentence-transformers folders in the layouts found on the Hub."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from labor_encoders.build import BuildError, build_contextmatch, read_sentence_transformer, save_model
from labor_encoders.taxonomy import Taxonomy
from tests.conftest import TINY_IDS, TINY_SKILLS

TAXONOMY = Taxonomy(TINY_SKILLS, TINY_IDS, [[] for _ in TINY_SKILLS], ["" for _ in TINY_SKILLS], "tiny skills")
SENTENCES = ["strong python and sql skills.", "great team work!"]


def _sentence_transformers():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer
    return SentenceTransformer, Transformer, Pooling, Dense


@pytest.fixture(scope="module")
def contextmatch_layout(tmp_path_factory, tiny_encoder_dir) -> Path:
    """TechWolf/ConTeXT-Skill-Extraction-base layout, saved by sentence-transformers 6: Transformer -> mean Pooling."""
    SentenceTransformer, Transformer, Pooling, _ = _sentence_transformers()
    folder = tmp_path_factory.mktemp("st-contextmatch")
    transformer = Transformer(str(tiny_encoder_dir))
    SentenceTransformer(modules=[transformer, Pooling(32, "mean")], device="cpu").save(str(folder))
    return folder


@pytest.fixture(scope="module")
def mpnet_style_layout(tmp_path_factory, tiny_encoder_dir) -> Path:
    """The all-mpnet-base-v2 layout as published (sentence-transformers 2.x files): Transformer, Pooling, Normalize."""
    folder = tmp_path_factory.mktemp("st-legacy")
    for item in tiny_encoder_dir.iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 40, "do_lower_case": False}))
    (folder / "1_Pooling").mkdir()
    pooling = {
        "word_embedding_dimension": 32,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (folder / "2_Normalize").mkdir()
    return folder


def test_contextmatch_layout_builds_a_model_identical_to_sentence_transformers(contextmatch_layout) -> None:
    SentenceTransformer, *_ = _sentence_transformers()
    reference = SentenceTransformer(str(contextmatch_layout), device="cpu")
    model = build_contextmatch(contextmatch_layout, TAXONOMY)
    torch.testing.assert_close(
        model.skill_embeddings, reference.encode(TINY_SKILLS, convert_to_tensor=True), atol=1e-5, rtol=1e-5
    )
    tokens = reference.encode(SENTENCES, output_value="token_embeddings")
    batch = model.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = model(batch["input_ids"], batch["attention_mask"]).token_embeddings
    for i, reference_tokens in enumerate(tokens):
        torch.testing.assert_close(ours[i, : len(reference_tokens)], reference_tokens, atol=1e-5, rtol=1e-5)
    assert model.config.trained is False and model.config.taxonomy == "tiny skills"


def test_published_mpnet_layout_with_normalize_builds_and_keeps_its_max_length(mpnet_style_layout, tmp_path) -> None:
    layout = read_sentence_transformer(mpnet_style_layout)
    assert layout.normalize and layout.max_seq_length == 40 and layout.transformer_dir == mpnet_style_layout
    model = build_contextmatch(mpnet_style_layout, TAXONOMY, threshold=0.3)
    assert model.config.max_seq_length == 40 and model.config.threshold == 0.3
    folder = save_model(model, tmp_path / "built")
    assert (folder / "skill_index.json").is_file() and (folder / "modeling_contextmatch.py").is_file()
    config = (folder / "config.json").read_text()
    assert str(mpnet_style_layout.parent) not in config and str(tmp_path) not in config  # nothing machine-dependent
    assert json.loads(config)["encoder_config"]["_name_or_path"] == mpnet_style_layout.name


def test_unsupported_layouts_are_refused_with_the_reason(tmp_path, tiny_encoder_dir) -> None:
    SentenceTransformer, Transformer, Pooling, Dense = _sentence_transformers()
    transformer = Transformer(str(tiny_encoder_dir))
    SentenceTransformer(modules=[transformer, Pooling(32, "cls")], device="cpu").save(str(tmp_path / "cls"))
    with pytest.raises(BuildError, match="needs mean pooling"):
        read_sentence_transformer(tmp_path / "cls")
    dense = Dense(32, 16)
    SentenceTransformer(modules=[transformer, Pooling(32, "mean"), dense], device="cpu").save(str(tmp_path / "dense"))
    with pytest.raises(BuildError, match="not supported"):
        read_sentence_transformer(tmp_path / "dense")
    with pytest.raises(BuildError, match="not a sentence-transformers"):
        read_sentence_transformer(tmp_path / "nothing-here")


def test_a_plain_transformers_folder_is_accepted_with_mean_pooling(tiny_encoder_dir) -> None:
    layout = read_sentence_transformer(tiny_encoder_dir)
    assert layout.transformer_dir == tiny_encoder_dir and not layout.normalize


def test_a_default_model_is_rebuilt_only_when_its_assets_change(tmp_path, monkeypatch) -> None:
    from labor_encoders import assets
    from labor_encoders.build import ensure_default_model

    versions = {"backbone": "sha-a", "taxonomy": "sha-1"}
    monkeypatch.setattr(assets, "asset_fingerprint", versions.__getitem__)
    builds = []

    def build(output: Path) -> dict:
        output.mkdir(parents=True, exist_ok=True)
        builds.append(dict(versions))
        return {"built": len(builds)}

    output = tmp_path / "default"
    names = ("backbone", "taxonomy")
    assert ensure_default_model(output, names, build) == output and len(builds) == 1
    ensure_default_model(output, names, build)
    assert len(builds) == 1  # same asset versions: kept
    versions["taxonomy"] = "sha-2"
    ensure_default_model(output, names, build)
    assert builds[-1] == {"backbone": "sha-a", "taxonomy": "sha-2"}  # a new taxonomy version: rebuilt
    assert json.loads((output / ".complete.json").read_text()) == {"built": 2, "assets": versions}
    ensure_default_model(output, names, build, force=True)
    assert len(builds) == 3
    (output / ".complete.json").write_text("{not json")  # an interrupted write counts as no build
    ensure_default_model(output, names, build)
    assert len(builds) == 4


def test_the_state_of_a_default_model_says_when_its_assets_changed(tmp_path, monkeypatch) -> None:
    from labor_encoders import assets
    from labor_encoders.build import default_model_state, ensure_default_model

    versions = {"backbone": "sha-a"}
    monkeypatch.setattr(assets, "asset_fingerprint", versions.__getitem__)
    output = tmp_path / "default"
    assert default_model_state(output, ("backbone",)) == "missing"
    ensure_default_model(output, ("backbone",), lambda out: out.mkdir(parents=True) or {})
    assert default_model_state(output, ("backbone",)) == "built"
    versions["backbone"] = "sha-b"
    assert default_model_state(output, ("backbone",)) == "outdated"


def test_embedded_model_names_resolve_unless_a_folder_has_that_name(monkeypatch, tmp_path) -> None:
    """`--model light` (or `default`, `zero-shot`) anywhere a ConTeXT-match folder is taken: the embedded model,
    built on first use; a folder of that name in the working directory wins; other names are paths."""
    import labor_encoders.build as build

    built = {}
    for name, function in [("default", "ensure_default_contextmatch"), ("light", "ensure_light_contextmatch"),
                           ("zero-shot", "ensure_zero_shot_contextmatch")]:  # fmt: skip
        monkeypatch.setattr(build, function, lambda force=False, name=name: built.setdefault(name, tmp_path / name))
    monkeypatch.chdir(tmp_path)
    assert build.resolve_model_dir("light") == tmp_path / "light"
    assert build.resolve_model_dir(Path("zero-shot")) == tmp_path / "zero-shot"
    assert build.resolve_model_dir(None) == build.resolve_model_dir("default") == tmp_path / "default"
    assert build.resolve_model_dir("my-model") == Path("my-model")
    (tmp_path / "light").mkdir()
    built.clear()
    assert build.resolve_model_dir("light") == Path("light") and built == {}  # the local folder, nothing built
