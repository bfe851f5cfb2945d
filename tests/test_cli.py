"""The labor-encoders command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labor_encoders.build import save_model

CLI = [sys.executable, "-m", "labor_encoders.cli"]


def run(*args: str, stdin: str | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    from tests.conftest import make_tiny_model

    return save_model(make_tiny_model(tiny_tokenizer), tmp_path_factory.mktemp("cli") / "tiny")


@pytest.mark.slow
def test_extract_json_has_the_documented_shape(tiny_dir) -> None:
    ad = "Strong python and sql skills.\nGreat team work!"
    done = run("extract", "--model", str(tiny_dir), "--json", "--top-k", "3", ad, "")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert [r["text"] for r in results] == [ad, ""]
    assert 0 < len(results[0]["skills"]) <= 3 and results[1]["skills"] == []
    for skill in results[0]["skills"]:
        assert set(skill) == {"label", "id", "score", "evidence"}
        for span in skill["evidence"]:
            assert set(span) == {"start", "end", "text"} and ad[span["start"] : span["end"]] == span["text"]


def test_extract_reads_files_and_standard_input(tiny_dir, tmp_path) -> None:
    ad = tmp_path / "ad.txt"
    ad.write_text("Python and sql.", encoding="utf-8")
    done = run("extract", "--model", str(tiny_dir), "--json", "--file", str(ad), "-", stdin="Team work!")
    assert done.returncode == 0, done.stderr
    assert [r["text"] for r in json.loads(done.stdout)] == ["Team work!", "Python and sql."]


def test_extract_threshold_flag_and_plain_output(tiny_dir) -> None:
    done = run("extract", "--model", str(tiny_dir), "--threshold", "1.5", "python sql", "   ")
    assert done.returncode == 0, done.stderr
    assert "(no skills found)" in done.stdout and "(empty text)" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["extract"], "give job ad texts"),
        (["extract", "--file", "/no/such/ad.txt"], "no such file"),
        (["extract", "--model", "/no/such/model", "python"], "does not exist"),
        (["extract", "--top-k", "0", "python"], "--top-k"),
        (["build", "--output", "/tmp/x", "--label-column", "name"], "--taxonomy"),
    ],
)
@pytest.mark.slow
def test_bad_input_gives_a_clear_error_and_exit_status_2(args, message) -> None:
    done = run(*args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_extract_refuses_a_binary_file(tiny_dir, tmp_path) -> None:
    blob = tmp_path / "ad.bin"
    blob.write_bytes(b"\xff\xfe\x00\x81" * 10)
    done = run("extract", "--model", str(tiny_dir), "--file", str(blob))
    assert done.returncode == 2 and "not UTF-8" in done.stderr


@pytest.mark.slow
def test_build_from_a_custom_taxonomy_and_backbone(tmp_path, tiny_encoder_dir) -> None:
    taxonomy = tmp_path / "skills.csv"
    taxonomy.write_text("code,name,synonyms\nS1,python,py\nS2,sql,\nS3,team work,teamwork|collaboration\nS4,,\n")
    output = tmp_path / "custom"
    done = run(
        "build",
        "--output",
        str(output),
        "--backbone",
        str(tiny_encoder_dir),
        "--taxonomy",
        str(taxonomy),
        "--label-column",
        "name",
        "--id-column",
        "code",
        "--threshold",
        "0.2",
    )
    assert done.returncode == 0, done.stderr
    assert "empty" in done.stderr  # the empty label row is reported, not fatal
    index = json.loads((output / "skill_index.json").read_text())
    assert index["labels"] == ["python", "sql", "team work"] and index["ids"] == ["S1", "S2", "S3"]
    done = run("extract", "--model", str(output), "--json", "--threshold", "0", "python")
    assert done.returncode == 0 and json.loads(done.stdout)[0]["skills"][0]["id"] in {"S1", "S2", "S3"}

    bad = run(
        "build",
        "--output",
        str(tmp_path / "bad"),
        "--backbone",
        str(tiny_encoder_dir),
        "--taxonomy",
        str(taxonomy),
        "--label-column",
        "skill_name",
    )
    assert bad.returncode == 2 and "available columns" in bad.stderr and "name" in bad.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.real_weights
def test_default_model_from_the_command_line(default_model_dir) -> None:
    from labor_encoders.cli import SAMPLE_AD

    done = run("extract", "--json", "--file", str(SAMPLE_AD))
    assert done.returncode == 0, done.stderr
    labels = {skill["label"] for skill in json.loads(done.stdout)[0]["skills"]}
    assert "PostgreSQL" in labels


@pytest.mark.real_weights
def test_the_light_model_from_the_command_line(default_model_dir) -> None:
    """`--model light`: the MiniLM default the setup built beside the MPNet one (384-wide vectors), same output."""
    from labor_encoders.build import ensure_light_contextmatch
    from labor_encoders.cli import SAMPLE_AD

    light = ensure_light_contextmatch()
    assert json.loads((light / "config.json").read_text())["encoder_config"]["hidden_size"] == 384
    done = run("extract", "--model", "light", "--json", "--file", str(SAMPLE_AD))
    assert done.returncode == 0, done.stderr
    skills = json.loads(done.stdout)[0]["skills"]
    assert "PostgreSQL" in {skill["label"] for skill in skills}
    assert all(e["text"] for skill in skills for e in skill["evidence"])


@pytest.mark.real_weights
def test_build_with_no_flag_writes_the_default_model(default_model_dir, tmp_path) -> None:
    done = run("build", "--output", str(tmp_path / "default"))
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in (tmp_path / "default").iterdir())
    assert written == sorted(p.name for p in default_model_dir.iterdir() if p.name != ".complete.json")
    config = json.loads((tmp_path / "default" / "config.json").read_text())
    assert config["trained"] is True and config["num_skills"] == 13939


def test_setup_status_lists_every_asset() -> None:
    done = run("setup", "--status")
    assert done.returncode == 0, done.stderr
    names = ("all-mpnet-base-v2", "all-MiniLM-L6-v2", "esco-skills-v1.2", "esco-occupations-v1.2")
    for name in (*names, "default ConTeXT-match", "light ConTeXT-match", "default JobBERT"):
        assert name in done.stdout
