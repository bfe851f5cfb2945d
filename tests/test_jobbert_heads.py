"""JobBERT heads trained on cached backbone vectors: the data, a reproducible run, the shipped record, the setup's
loading, the tie-break of ``normalize`` and ESCO downloads as a title index. Tiny models built in-process."""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from labor_encoders.adapter import AdapterError, verify
from labor_encoders.jobbert import build_jobbert, load_esco_titles, load_heads, load_jobbert
from labor_encoders.taxonomy import Taxonomy
from labor_encoders.training.jobbert_head_data import esco_pairs, vacancy_pairs, vacancy_split
from labor_encoders.training.train_jobbert_heads import HEADS_FILE, main

OCCUPATIONS = [
    # uri, preferred, alternative labels (newline-separated as ESCO ships them), ISCO group
    ("http://data.europa.eu/esco/occupation/ds", "data scientist", "data analytics scientist\nml scientist", "2511"),
    (
        "http://data.europa.eu/esco/occupation/bio",
        "bioinformatics scientist",
        "data scientist\nbio data expert",
        "2131",
    ),
    ("http://data.europa.eu/esco/occupation/nurse", "nurse", "registered nurse\nstaff nurse\nward nurse", "2221"),
    ("http://data.europa.eu/esco/occupation/chef", "sous chef", "second chef\nkitchen deputy", "3434"),
]
SKILLS = {
    "s1": "python",
    "s2": "statistics",
    "s3": "patient care",
    "s4": "cooking",
    "s5": "sql",
    "s6": "genetics",
    "s7": "hygiene",
}
RELATIONS = [
    ("ds", "essential", "s1"),
    ("ds", "essential", "s2"),
    ("ds", "optional", "s5"),
    ("bio", "essential", "s6"),
    ("bio", "optional", "s1"),
    ("nurse", "essential", "s3"),
    ("nurse", "optional", "s7"),
    ("chef", "essential", "s4"),
    ("chef", "essential", "s7"),
]


def _csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def occupations_csv() -> str:
    rows = [["Occupation", uri, isco, label, alts, "", "released", "", "", "", "", "", f"{label} work.", ""]
            for uri, label, alts, isco in OCCUPATIONS]  # fmt: skip
    header = ["conceptType", "conceptUri", "iscoGroup", "preferredLabel", "altLabels", "hiddenLabels", "status",
              "modifiedDate", "regulatedProfessionNote", "scopeNote", "definition", "inScheme", "description",
              "code"]  # fmt: skip
    return _csv(header, rows)


def write_esco(folder: Path) -> list[Path]:
    """A classification zip and a relations zip with the files and columns of the official download."""
    folder.mkdir(parents=True, exist_ok=True)
    skills = _csv(
        ["conceptUri", "preferredLabel"], [[f"http://data.europa.eu/esco/skill/{k}", v] for k, v in SKILLS.items()]
    )
    relations = _csv(
        ["occupationUri", "relationType", "skillType", "skillUri"],
        [[f"http://data.europa.eu/esco/occupation/{o}", r, "skill/competence", f"http://data.europa.eu/esco/skill/{s}"]
         for o, r, s in RELATIONS],
    )  # fmt: skip
    classification, relation = folder / "classification.zip", folder / "relations.zip"
    with zipfile.ZipFile(classification, "w") as archive:
        archive.writestr("occupations_en.csv", occupations_csv())
        archive.writestr("skills_en.csv", skills)
    with zipfile.ZipFile(relation, "w") as archive:
        archive.writestr("occupationSkillRelations.csv", relations)
    return [classification, relation]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("heads-data")
    esco = write_esco(root / "esco")
    titles = ["data scientist", "senior data scientist", "staff nurse", "icu nurse", "sous chef", "chef de partie",
              "bioinformatician", "nurse practitioner", "line cook", "ml engineer"]  # fmt: skip
    skills = [["python", "statistics"], ["python", "sql"], ["patient care"], ["patient care", "hygiene"], ["cooking"],
              ["cooking", "hygiene"], ["genetics", "python"], ["patient care"], ["cooking"], ["python"]]  # fmt: skip
    vacancies = root / "vacancies.parquet"
    pd.DataFrame({"title": titles, "skill_name": skills}).to_parquet(vacancies)
    validation = root / "validation.csv"
    uri = {label: uri for uri, label, _, _ in OCCUPATIONS}
    rows = [["data scientist", uri["data scientist"]], ["registered nurse", uri["nurse"]], ["chef", uri["sous chef"]]]
    validation.write_text(_csv(["vacancyTitle", "conceptUri"], rows))
    occupations = root / "occupations_en.csv"
    occupations.write_text(occupations_csv())
    return {"esco": esco, "vacancies": vacancies, "validation": validation, "occupations": occupations}


def train_args(data: dict, backbone: Path, output: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "--output", str(output), "--backbone", str(backbone), "--cache_dir", str(cache),
        "--esco", *map(str, data["esco"]), "--vacancies", str(data["vacancies"]),
        "--validation", str(data["validation"]), "--validation_occupations", str(data["occupations"]),
        "--epochs", "3", "--batch_size", "4", "--projection_dim", "24", *extra,
    ]  # fmt: skip


def test_esco_pairs_pair_every_label_with_its_own_skills_and_alt_labels_with_the_preferred(data) -> None:
    pairs = esco_pairs(data["esco"], variants=2, skills_per_list=2, max_alt_labels=5, seed=0)
    assert pairs.occupations == 4
    by_title = dict(zip(pairs.skills.titles, pairs.skills.skills, strict=True))
    assert set(by_title) >= {"data scientist", "ml scientist", "staff nurse", "kitchen deputy"}
    assert set(by_title["data scientist"].split(", ")) <= {"python", "statistics", "sql"}
    assert set(by_title["staff nurse"].split(", ")) <= {"patient care", "hygiene"}
    aux = set(zip(pairs.titles.titles, pairs.titles.skills, strict=True))
    assert {("ward nurse", "nurse"), ("nurse", "ward nurse"), ("staff nurse", "ward nurse")} <= aux
    assert not any(first == second for first, second in aux) and ("nurse", "sous chef") not in aux
    again = esco_pairs(data["esco"], variants=2, skills_per_list=2, max_alt_labels=5, seed=0)
    assert again.skills.skills == pairs.skills.skills  # seeded


def test_vacancy_split_holds_every_fifth_sorted_title_apart(data) -> None:
    train, held = vacancy_split(data["vacancies"])
    assert sorted(train + held) == list(range(10)) and len(held) == 2
    titles = sorted(vacancy_pairs(data["vacancies"], held).titles)
    everything = sorted(pd.read_parquet(data["vacancies"])["title"])
    assert titles == [everything[4], everything[9]]


def test_a_small_run_twice_writes_identical_heads_and_a_verifiable_record(data, tiny_encoder_dir, tmp_path) -> None:
    first = main(train_args(data, tiny_encoder_dir, tmp_path / "a", tmp_path / "cache-a"))
    second = main(train_args(data, tiny_encoder_dir, tmp_path / "b", tmp_path / "cache-b"))
    assert (tmp_path / "a" / HEADS_FILE).read_bytes() == (tmp_path / "b" / HEADS_FILE).read_bytes()
    assert first["files"] == second["files"] and verify(tmp_path / "a")["files"] == first["files"]
    record = json.loads((tmp_path / "a" / "record.json").read_text())
    assert record["command"].startswith("python -m labor_encoders.training.train_jobbert_heads --output")
    assert "--cache_dir" not in record["command"]
    assert set(record["data"]) == {"classification.zip", "relations.zip", "vacancies.parquet", "validation.csv",
                                   "occupations_en.csv"}  # fmt: skip
    assert record["steps"] > 0 and {"mrr", "r@5", "r@10"} <= set(record["validation"]["trained"])
    assert record["pairs"]["title_pairs"] > 0 and record["vacancy_split"]["held_apart_rows"] == 2
    # the heads load onto the backbone, and the model's own vectors are what the training scored
    model = build_jobbert(tiny_encoder_dir, None, heads=tmp_path / "a")
    assert model.config.trained and model.config.projection_dim == 24
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "a" / HEADS_FILE)
    assert torch.equal(model.title_head.weight, saved["title_head.weight"])
    assert torch.equal(model.skills_head.bias, saved["skills_head.bias"])


def test_a_tampered_heads_file_fails_verification_with_a_clear_message(data, tiny_encoder_dir, tmp_path) -> None:
    folder = tmp_path / "heads"
    main(train_args(data, tiny_encoder_dir, folder, tmp_path / "cache", "--epochs", "1"))
    blob = bytearray((folder / HEADS_FILE).read_bytes())
    blob[-1] ^= 1
    (folder / HEADS_FILE).write_bytes(bytes(blob))
    expected = r"heads\.safetensors: sha256 differs from record\.json.*python -m labor_encoders\.training"
    with pytest.raises(AdapterError, match=expected):
        verify(folder)
    with pytest.raises(AdapterError, match="sha256 differs"):
        build_jobbert(tiny_encoder_dir, None, heads=folder)
    (folder / HEADS_FILE).unlink()
    with pytest.raises(AdapterError, match="heads.safetensors is missing"):
        verify(folder)


def test_heads_of_another_width_or_with_unexpected_tensors_are_refused(data, tiny_encoder_dir, tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    from labor_encoders.adapter import write_record

    folder = tmp_path / "heads"
    main(train_args(data, tiny_encoder_dir, folder, tmp_path / "cache", "--epochs", "1"))
    model = build_jobbert(tiny_encoder_dir, None, projection_dim=16)
    with pytest.raises(AdapterError, match="the title head is"):
        load_heads(model, folder)
    state = load_file(folder / HEADS_FILE) | {"extra": torch.zeros(1)}
    save_file(state, folder / HEADS_FILE)
    write_record(folder, json.loads((folder / "record.json").read_text()))
    with pytest.raises(AdapterError, match="expected exactly"):
        build_jobbert(tiny_encoder_dir, None, heads=folder)


def test_an_exact_preferred_label_wins_a_tie_with_another_concepts_alternative_label(jobbert_tiny) -> None:
    # "bioinformatics scientist" comes first in the index and lists "data scientist" as an alternative label, so
    # both concepts score the same for the title "data scientist"
    taxonomy = Taxonomy(
        labels=["bioinformatics scientist", "data scientist", "nurse"],
        ids=["bio", "ds", "nurse"],
        alt_labels=[["data scientist"], [], []],
        descriptions=["", "", ""],
        name="tie",
    )
    from labor_encoders.jobbert import set_title_taxonomy

    set_title_taxonomy(jobbert_tiny, taxonomy)
    for title in ("data scientist", "  Data   Scientist "):
        matches = jobbert_tiny.normalize(title, top_k=2)[0]["matches"]
        assert [m["id"] for m in matches][:1] == ["ds"], (title, matches)
    exact = jobbert_tiny.normalize("data scientist", top_k=2)[0]["matches"]
    assert exact[0]["score"] == exact[1]["score"] and exact[1]["id"] == "bio"  # a tie, settled by the name


@pytest.fixture
def jobbert_tiny(tiny_tokenizer):
    from tests.test_jobbert import make_tiny_jobbert

    return make_tiny_jobbert(tiny_tokenizer)


@pytest.mark.parametrize("form", ["zip", "folder", "csv"])
def test_build_jobbert_titles_takes_an_official_esco_download(data, tiny_encoder_dir, tmp_path, form) -> None:
    from labor_encoders.cli import main as cli

    if form == "zip":
        titles = data["esco"][0]
    elif form == "folder":
        titles = tmp_path / "esco-download"
        (titles / "nested").mkdir(parents=True)
        shutil.copy(data["esco"][0], titles / "nested" / "classification.zip")
    else:
        titles = data["occupations"]
    output = tmp_path / "model"
    args = ["build-jobbert", "--backbone", str(tiny_encoder_dir), "--titles", str(titles), "--output", str(output)]
    assert cli([*args, "--projection-dim", "16"]) == 0
    model = load_jobbert(output)
    rows = list(zip(model.title_labels, model.title_ids, strict=True))
    assert ("ward nurse", "http://data.europa.eu/esco/occupation/nurse") in rows
    assert ("data scientist", "http://data.europa.eu/esco/occupation/bio") in rows
    assert model.title_names["http://data.europa.eu/esco/occupation/ds"] == "data scientist"
    assert len(set(model.title_ids)) == 4
    if form != "csv":
        assert load_esco_titles(titles).alt_labels[2] == ["registered nurse", "staff nurse", "ward nurse"]


def test_the_model_card_reads_the_heads_record(data, tiny_encoder_dir, tmp_path) -> None:
    from labor_encoders.build import save_model
    from labor_encoders.model_cards.render import render_model_card

    heads = tmp_path / "heads"
    record = main(train_args(data, tiny_encoder_dir, heads, tmp_path / "cache", "--epochs", "1"))
    folder = save_model(build_jobbert(tiny_encoder_dir, None, heads=heads), tmp_path / "model")
    shutil.copy(heads / "record.json", folder / "training_args.json")
    card = render_model_card(folder, "org/jobbert").text
    assert "only the two heads were trained" in card
    assert f"MRR {record['validation']['trained']['mrr']:.3f}" in card
    assert record["command"] in card
