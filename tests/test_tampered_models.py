"""Tampered or damaged model folders are refused at load, before any text is processed, with the fix: an index that
does not fit the vectors, NaN or Inf in the weights, another model_type, an auto_map naming other code."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from labor_encoders.build import BuildError, load_contextmatch, save_model
from labor_encoders.jobbert import load_jobbert
from labor_encoders.modeling.modeling_contextmatch import ConTeXTMatchModel
from labor_encoders.modeling.modeling_jobbert import JobBERTModel
from tests.conftest import make_tiny_model
from tests.test_jobbert import make_tiny_jobbert

KINDS = {
    "contextmatch": (ConTeXTMatchModel, load_contextmatch, "skill_index.json", "skill_embeddings"),
    "jobbert": (JobBERTModel, load_jobbert, "title_index.json", None),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tiny_tokenizer) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("genuine")
    return {
        "contextmatch": save_model(make_tiny_model(tiny_tokenizer), root / "contextmatch"),
        "jobbert": save_model(make_tiny_jobbert(tiny_tokenizer), root / "jobbert"),
    }


def tampered(folders, kind: str, tmp_path: Path, change) -> Path:
    folder = tmp_path / kind
    shutil.copytree(folders[kind], folder)
    change(folder)
    return folder


def edit_weights(folder: Path, change) -> None:
    weights = load_file(folder / "model.safetensors")
    change(weights)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})


def edit_json(folder: Path, name: str, change) -> None:
    data = json.loads((folder / name).read_text())
    change(data)
    (folder / name).write_text(json.dumps(data))


def index_key(weights: dict, kind: str) -> str:
    if KINDS[kind][3]:
        return KINDS[kind][3]
    return next(key for key in weights if "index" in key or "title" in key)


def drop_last_label(index: dict) -> None:
    index["labels"], index["ids"] = index["labels"][:-1], index["ids"][:-1]


TAMPERINGS = {
    "index shorter than the vectors": (
        lambda folder, kind: edit_json(folder, KINDS[kind][2], drop_last_label),
        r"lists \d+ entries, the weights hold \d+ vectors; the folder is inconsistent, rebuild its index",
    ),
    "vectors shorter than the config": (
        lambda folder, kind: edit_weights(folder, lambda w: w.update({index_key(w, kind): w[index_key(w, kind)][:-1]})),
        r"do not fit its config.json .*index vectors of another count.*rebuild it",
    ),
    "NaN in an encoder weight": (
        lambda folder, kind: edit_weights(
            folder,
            lambda w: w[next(k for k in w if k.startswith("encoder.") and w[k].is_floating_point())].fill_(
                float("nan")
            ),
        ),
        r"hold NaN or Inf values \(in encoder\..*download or rebuild the model folder",
    ),
    "Inf in the index vectors": (
        lambda folder, kind: edit_weights(folder, lambda w: w[index_key(w, kind)].view(-1)[3:5].fill_(float("inf"))),
        r"hold NaN or Inf values \(in .*download or rebuild",
    ),
    "unknown model_type": (
        lambda folder, kind: edit_json(folder, "config.json", lambda c: c.update(model_type="bert-evil")),
        r"'bert-evil'",
    ),
    "foreign auto_map": (
        lambda folder, kind: edit_json(
            folder, "config.json", lambda c: c["auto_map"].update(AutoModel="someone/else--modeling_x.Model")
        ),
        r"maps AutoModel to 'someone/else--modeling_x.Model', not to this model's own code .*download it again",
    ),
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_a_tampered_folder_is_refused_with_the_fix(folders, tmp_path, kind, tampering) -> None:
    change, message = TAMPERINGS[tampering]
    folder = tampered(folders, kind, tmp_path, lambda folder: change(folder, kind))
    model_class, load, _, _ = KINDS[kind]
    with pytest.raises(BuildError, match=message):  # the command line's loader
        load(folder)
    if tampering != "unknown model_type":  # the project's loader says it first, in its own words
        with pytest.raises(OSError, match=message):  # a Hub user's from_pretrained
            model_class.from_pretrained(folder)


def test_genuine_folders_load_and_the_checks_are_cheap(folders) -> None:
    for kind, (model_class, load, _, _) in KINDS.items():
        load(folders[kind])
        started = time.perf_counter()
        model_class.from_pretrained(folders[kind])
        assert time.perf_counter() - started < 5


def test_the_space_refuses_a_foreign_auto_map_before_running_any_code(folders, tmp_path) -> None:
    from labor_encoders.space.app import check_model_config

    check_model_config(str(folders["contextmatch"]), "contextmatch")
    check_model_config(str(folders["jobbert"]), "jobbert")
    with pytest.raises(SystemExit, match="holds a model of type 'jobbert', not 'contextmatch'"):
        check_model_config(str(folders["jobbert"]), "contextmatch")
    change = TAMPERINGS["foreign auto_map"][0]
    folder = tampered(folders, "contextmatch", tmp_path, lambda folder: change(folder, "contextmatch"))
    with pytest.raises(SystemExit, match="maps AutoModel to 'someone/else--modeling_x.Model', not to the model's own"):
        check_model_config(str(folder), "contextmatch")
