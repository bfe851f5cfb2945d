"""Model cards: rendered from a folder's own metadata and from results JSON that the project's runners really wrote
(on tiny models and a few hand-made benchmark rows), parsed back with huggingface_hub."""

from __future__ import annotations

import csv
import doctest
import json
import shutil
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard, SpaceCard

import labor_encoders.model_cards.folder
import labor_encoders.model_cards.results
from labor_encoders.build import save_model
from labor_encoders.cli import main
from labor_encoders.model_cards import CardError, load_results, read_model_folder, render_model_card, render_space_card
from tests.conftest import REPO, make_tiny_model
from tests.test_jobbert import make_tiny_jobbert

REPO_ID = "labor-encoders-test/tiny"
# A training record as training/loop.py writes it, with paths of the machine that trained.
TRAINING_RECORD = {
    "task": "contextmatch",
    "arguments": {
        "model": None,
        "output_dir": "/home/someone/runs/cm",
        "data": None,
        "limit": 9600,
        "batch_size": 32,
        "mini_batch_size": 0,
        "learning_rate": 2e-05,
        "scale": 20.0,
        "symmetric": False,
        "freeze_layers": 10,
        "seed": 42,
        "validation": ["/home/someone/data/house_validation_annotations.csv"],
    },
    "steps": 300,
    "seconds": 1168.2,
    "processes": 1,
    "validation": {"house/mrr": 0.4905},
    "loss": 0.0683,
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tiny_tokenizer) -> dict[str, Path]:
    """Tiny ConTeXT-match and JobBERT folders saved as the project saves them."""
    root = tmp_path_factory.mktemp("card-models")
    return {
        "contextmatch": save_model(make_tiny_model(tiny_tokenizer, threshold=0.2), root / "contextmatch"),
        "jobbert": save_model(make_tiny_jobbert(tiny_tokenizer), root / "jobbert"),
    }


@pytest.fixture(scope="module")
def results(folders, tmp_path_factory) -> dict[str, Path]:
    """Results files written by `labor-encoders evaluate ... --output` and `calibrate` on the tiny models."""
    data = tmp_path_factory.mktemp("card-data")
    out = tmp_path_factory.mktemp("card-results")
    house = data / "house_validation_annotations.csv"
    rows = [("strong python skills", "python"), ("sql and data analysis", "sql"), ("great team work", "team work")]
    rows += [("sql and data analysis", "data analysis"), ("you manage project teams", "LABEL NOT PRESENT")]
    _write_csv(house, ["sentence", "label"], rows)
    skill_xl = data / "development_a.csv"
    xl_rows = [("1", "strong python skills", "1", "python"), ("1", "great team work", "1", "team work")]
    _write_csv(skill_xl, ["ID", "sentence", "cluster", "skill"], [*xl_rows, ("2", "we offer a bike", "", "")])
    titles = data / "titles.validation.csv"
    _write_csv(titles, ["vacancyTitle", "conceptUri"], [("python", "urn:occ:developer"), ("sql", "urn:occ:analyst")])
    cm, jb = str(folders["contextmatch"]), str(folders["jobbert"])
    commands = [
        ["evaluate", "skill-extraction", "--model", cm, "--annotations", str(house), "--scoring", "context"],
        ["evaluate", "skill-xl", "--model", cm, "--data", str(skill_xl)],
        ["evaluate", "job-normalization", "--model", jb, "--titles", str(titles)],
        ["calibrate", "--model", cm, "--annotations", str(house), "--no-write"],
    ]
    commands[0] += ["mean-pool"]
    for command in commands:
        assert main(["-q", *command, "--output", str(out)]) == 0, command
    return {p.stem: p for p in out.glob("*.json")}


def _write_csv(path: Path, header: list[str], rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])


def parsed(card) -> tuple[ModelCard, dict]:
    """The card as the Hub reads it (ModelCard.load of the saved file) and its raw YAML."""
    text = str(card)
    front = yaml.safe_load(text.split("---")[1])
    return ModelCard(text), front


def test_the_card_states_every_metric_of_the_results_in_its_model_index(folders, results, tmp_path) -> None:
    files = [results["skill-extraction"], results["skill-xl"], results["calibration"]]
    card = render_model_card(folders["contextmatch"], REPO_ID, files, split="validation")
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    data = loaded.data
    assert data.library_name == "transformers" and data.pipeline_tag == "feature-extraction"
    assert data.license == "apache-2.0" and data.language == ["en"] and "skill-extraction" in data.tags
    assert data.model_name == REPO_ID
    reported = {(r.dataset_type, r.metric_type, r.metric_config): r.metric_value for r in data.eval_results}
    assert all(r.dataset_split == "validation" for r in data.eval_results)
    written = json.loads(results["skill-extraction"].read_text())["results"]
    for scoring, scores in written["house"].items():
        config = {"contextmatch": "ConTeXT-match (token attention)", "mean-pool": "mean pooling (bi-encoder baseline)"}
        for key in ("mrr", "map", "rp@1", "rp@5", "rp@10", "recall@5", "ndcg@10"):
            assert reported["TechWolf/skill-extraction-house", key, config[scoring]] == scores[key]
    skill_xl = json.loads(results["skill-xl"].read_text())["results"]
    after = next(r for r in data.eval_results if r.dataset_type == "TechWolf/Skill-XL" and r.metric_type == "f1"
                 and "after" in r.metric_config)  # fmt: skip
    assert after.metric_value == skill_xl["after_filter"]["f1"] and after.metric_args == {"threshold": 0.2}
    best = json.loads(results["calibration"].read_text())["results"]["best"]
    assert (
        reported["TechWolf/skill-extraction-house", "f1", f"τ = {best['tau']:.2f}, after the redundancy filter"]
        == (best["after_filter"]["f1"])
    )
    assert f"{written['house']['contextmatch']['mrr']:.3f}" in loaded.text  # the table in the text
    assert "Not evaluated" not in loaded.text


def test_without_results_the_card_says_not_evaluated_and_has_no_model_index(folders) -> None:
    card, front = parsed(render_model_card(folders["jobbert"], REPO_ID))
    assert card.data.eval_results is None and "model-index" not in front
    assert "**Not evaluated.**" in card.text and "labor-encoders evaluate job-normalization" in card.text
    assert card.data.pipeline_tag == "sentence-similarity" and card.data.library_name == "transformers"


def test_job_normalization_results_go_into_a_jobbert_card(folders, results) -> None:
    card, _ = parsed(render_model_card(folders["jobbert"], REPO_ID, [results["job-normalization"]]))
    written = json.loads(results["job-normalization"].read_text())["results"]["model index"]
    reported = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert reported == {"mrr": written["mrr"], "r@5": written["r@5"], "r@10": written["r@10"]}
    assert {r.dataset_type for r in card.data.eval_results} == {"TechWolf/JobBERT-evaluation-dataset"}


def test_results_of_the_wrong_model_or_shape_are_refused(folders, results, tmp_path) -> None:
    with pytest.raises(CardError, match="measure a jobbert model; this is a contextmatch model"):
        render_model_card(folders["contextmatch"], REPO_ID, [results["job-normalization"]])
    with pytest.raises(CardError, match="measure a contextmatch model; this is a jobbert model"):
        render_model_card(folders["jobbert"], REPO_ID, [results["skill-extraction"]])
    (tmp_path / "other.json").write_text('{"mrr": 0.5}')
    with pytest.raises(CardError, match="not a results file of this project"):
        load_results(tmp_path / "other.json", "contextmatch")
    (tmp_path / "broken.json").write_text('{"kind": "skill-xl", "results": {"threshold": 0.5}}')
    with pytest.raises(CardError, match="malformed skill-xl results"):
        load_results(tmp_path / "broken.json", "contextmatch")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(CardError, match="cannot read .* as JSON"):
        load_results(tmp_path / "bad.json", "contextmatch")
    with pytest.raises(CardError, match="results file not found"):
        load_results(tmp_path / "missing.json", "contextmatch")


def test_folders_that_are_not_our_models_are_refused(folders, tmp_path) -> None:
    with pytest.raises(CardError, match="has no config.json"):
        read_model_folder(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(CardError, match="holds a 'bert' model"):
        read_model_folder(tmp_path)
    with pytest.raises(CardError, match="is not a folder"):
        read_model_folder(tmp_path / "nowhere")


def test_trained_or_zero_shot_comes_from_the_folder(folders, tmp_path) -> None:
    zero_shot = render_model_card(folders["contextmatch"], REPO_ID).text
    assert "**Zero-shot**" in zero_shot and "**Trained**" not in zero_shot
    trained = shutil.copytree(folders["contextmatch"], tmp_path / "trained")
    (trained / "training_args.json").write_text(json.dumps(TRAINING_RECORD))
    model = read_model_folder(trained)
    assert model.status == "trained" and "output_dir" not in model.training["arguments"]
    assert model.training["arguments"]["validation"] == ["house_validation_annotations.csv"]
    text = render_model_card(trained, REPO_ID).text
    assert "**Trained**" in text and "**Zero-shot**" not in text and "/home/someone" not in text
    assert "the first 9600 pairs" in text and "scale 20.0" in text and "lower 10 encoder layers" in text
    elsewhere = shutil.copytree(folders["jobbert"], tmp_path / "converted")
    config = json.loads((elsewhere / "config.json").read_text())
    (elsewhere / "config.json").write_text(json.dumps(config | {"trained": True}))
    assert "**Trained elsewhere**" in render_model_card(elsewhere, REPO_ID).text
    assert "**Untrained**" in render_model_card(folders["jobbert"], REPO_ID).text


def test_a_calibration_left_in_the_folder_is_quoted_and_explains_tau(folders, tmp_path) -> None:
    folder = shutil.copytree(folders["contextmatch"], tmp_path / "m")
    annotations = tmp_path / "house_validation_annotations.csv"
    rows = [("strong python skills", "python"), ("great team work", "team work")]
    _write_csv(annotations, ["sentence", "label"], rows)
    assert main(["-q", "calibrate", "--model", str(folder), "--annotations", str(annotations)]) == 0
    tau = json.loads((folder / "config.json").read_text())["threshold"]
    card, _ = parsed(render_model_card(folder, REPO_ID))
    assert {r.dataset_type for r in card.data.eval_results} == {"TechWolf/skill-extraction-house"}
    assert {r.dataset_split for r in card.data.eval_results} == {"validation"}  # from the file name it recorded
    assert f"| threshold τ | {tau} (calibrated: the best F1 after the redundancy filter" in card.text


def test_base_model_and_training_datasets_come_from_the_folder(folders, tmp_path) -> None:
    folder = shutil.copytree(folders["contextmatch"], tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["encoder_config"]["_name_or_path"] = "all-mpnet-base-v2"
    (folder / "config.json").write_text(json.dumps(config))
    hub_data = TRAINING_RECORD["arguments"] | {"data": "TechWolf/Synthetic-ESCO-skill-sentences"}
    (folder / "training_args.json").write_text(json.dumps(TRAINING_RECORD | {"arguments": hub_data}))
    card, _ = parsed(render_model_card(folder, REPO_ID))
    assert card.data.base_model == "sentence-transformers/all-mpnet-base-v2"
    assert card.data.datasets == ["TechWolf/Synthetic-ESCO-skill-sentences"]
    local = TRAINING_RECORD | {"arguments": TRAINING_RECORD["arguments"] | {"data": "/home/someone/pairs.csv"}}
    (folder / "training_args.json").write_text(json.dumps(local))
    card, front = parsed(render_model_card(folder, REPO_ID, base_model="org/start"))
    assert "datasets" not in front and card.data.base_model == "org/start"
    assert "a local file, `pairs.csv`" in card.text


def test_the_space_card_keeps_its_front_matter_and_names_its_models() -> None:
    card = render_space_card(REPO / "space" / "README.md", "org/contextmatch", "org/jobbert")
    original = SpaceCard.load(REPO / "space" / "README.md")
    loaded = SpaceCard(str(card))
    for key in ("title", "sdk", "sdk_version", "app_file", "license", "short_description", "emoji"):
        assert getattr(loaded.data, key) == getattr(original.data, key), key
    assert loaded.data.models == ["org/contextmatch", "org/jobbert"]
    assert original.text.strip() in loaded.text
    assert "| `CONTEXTMATCH_MODEL` | [org/contextmatch](https://huggingface.co/org/contextmatch) |" in loaded.text


@pytest.mark.parametrize(
    "module", [labor_encoders.model_cards.results, labor_encoders.model_cards.folder], ids=lambda m: m.__name__
)
def test_doctests(module) -> None:
    failures, tried = doctest.testmod(module)
    assert tried and not failures
