"""``labor-encoders normalize``, run as a real subprocess.

Input handling (files, columns, standard input, text output) runs against a tiny randomly initialised JobBERT model
built here; what needs real title vectors runs against the embedded default JobBERT model (``real_weights``). Each
model launch costs seconds, so the checks are grouped into few launches; the usage errors stop before any model loads.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "labor_encoders.cli"]
OCCUPATION = "http://data.europa.eu/esco/occupation/"
MATCH_KEYS = {"label", "id", "score", "matched_label"}
TINY_IDS = {"O1": "nurse", "O2": "baker", "O3": "chef"}


def run(*args: str, stdin: str | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=env)


def normalize_json(*args: str, stdin: str | None = None) -> tuple[list[dict], str]:
    done = run("normalize", "--json", *args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


@pytest.fixture(scope="module")
def tiny_jobbert(tmp_path_factory, tiny_encoder_dir) -> Path:
    """A JobBERT folder on the tiny random BERT of conftest, with three occupations (scores are meaningless)."""
    from labor_encoders.build import save_model
    from labor_encoders.jobbert import build_jobbert
    from labor_encoders.taxonomy import Taxonomy

    titles = Taxonomy(
        labels=list(TINY_IDS.values()),
        ids=list(TINY_IDS),
        alt_labels=[["carer"], [], ["cook"]],
        descriptions=["", "", ""],
        name="tiny occupations",
    )
    model = build_jobbert(tiny_encoder_dir, titles, projection_dim=32)
    return save_model(model, tmp_path_factory.mktemp("normalize") / "tiny-jobbert")


def titles_of(results: list[dict]) -> list[str]:
    return [result["title"] for result in results]


# ------------------------------------------------------------------------------------------------ input handling
@pytest.mark.slow
def test_txt_file_comes_after_the_arguments_and_keeps_blank_lines(tiny_jobbert, tmp_path) -> None:
    titles = write(tmp_path / "titles.txt", "\ufeffnurse\n\n  chef  \r\nbaker")
    results, stderr = normalize_json("--model", str(tiny_jobbert), "--top-k", "2", "--file", str(titles), "cook")
    assert titles_of(results) == ["cook", "nurse", "", "  chef  ", "baker"]
    assert [len(result["matches"]) for result in results] == [2, 2, 0, 2, 2]
    for result in results:
        for match in result["matches"]:
            assert set(match) == MATCH_KEYS and TINY_IDS[match["id"]] == match["label"]
    assert "warning" not in stderr


@pytest.mark.slow
def test_csv_file_with_a_title_column_and_a_short_row(tiny_jobbert, tmp_path) -> None:
    jobs = write(tmp_path / "jobs.csv", 'id,title,company\n1,nurse,acme\n2\n3,"chef, head",x\n4,,y\n')
    results, stderr = normalize_json("--model", str(tiny_jobbert), "--top-k", "1", "--file", str(jobs))
    assert titles_of(results) == ["nurse", "", "chef, head", ""]  # nothing dropped, order kept
    assert [len(result["matches"]) for result in results] == [1, 0, 1, 0]
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "jobs.csv:3" in warnings[0] and "'title'" in warnings[0]


def test_tsv_file_with_a_chosen_column_and_text_output(tiny_jobbert, tmp_path) -> None:
    jobs = write(tmp_path / "jobs.tsv", "title\tposition\nignored\tnurse\nignored\t\nignored\n")
    done = run("normalize", "--model", str(tiny_jobbert), "--top-k", "3", "--column", "position", "--file", str(jobs))
    assert done.returncode == 0, done.stderr
    assert "jobs.tsv:4" in done.stderr and "'position'" in done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if not line.startswith("  ")] == ["nurse", "(empty title)", "(empty title)"]
    matches = lines[1:4]
    assert lines[4:] == ["(empty title)", "(empty title)"]
    for line in matches:
        score, label, concept, *via = line.strip().split("  ")
        assert -1.0 <= float(score) <= 1.0 and TINY_IDS[concept] == label
        assert via in ([], ["(as 'carer')"], ["(as 'cook')"])


@pytest.mark.slow
def test_standard_input_is_read_where_the_dash_stands(tiny_jobbert) -> None:
    results, _ = normalize_json("--model", str(tiny_jobbert), "baker", "-", "nurse", stdin="chef\n\n cook\n")
    assert titles_of(results) == ["baker", "chef", "", " cook", "nurse"]
    assert [bool(result["matches"]) for result in results] == [True, True, False, True, True]


def test_quoted_csv_cell_with_a_line_break_keeps_its_words_apart(tiny_jobbert, tmp_path) -> None:
    jobs = write(tmp_path / "jobs.csv", 'title,company\n"senior\nnurse",acme\nchef,x\n')
    results, _ = normalize_json("--model", str(tiny_jobbert), "--file", str(jobs))
    assert titles_of(results) == ["senior\nnurse", "chef"]


# ---------------------------------------------------------------------------------------------------- bad usage
@pytest.mark.parametrize(
    ("args", "files", "message"),
    [
        (["nurse", "--top-k", "0"], {}, "--top-k must be at least 1"),
        (["nurse", "--top-k", "-2"], {}, "--top-k must be at least 1"),
        ([], {}, "give job titles, --file F, or '-'"),
        (["--file", "{tmp}/missing.txt"], {}, "no such file"),
        (["--model", "{tmp}/no-model", "nurse"], {}, "labor-encoders build-jobbert --output"),
        (["--file", "{tmp}/jobs.csv"], {"jobs.csv": "id,position\n1,nurse\n"}, "--column (id, position)"),
        (["--file", "{tmp}/jobs.txt", "--column", "title"], {"jobs.txt": "nurse\n"}, "needs a .csv or .tsv"),
        (["--column", "title", "nurse"], {}, "names a column of --file"),
        (["--file", "{tmp}/jobs.txt"], {"jobs.txt": b"\xff\xfe\x00\x81"}, "not UTF-8"),
    ],
    ids=[
        "top-k-0",
        "top-k-negative",
        "no-titles",
        "missing-file",
        "missing-model",
        "no-title-column",
        "column-of-txt",
        "column-without-file",
        "binary-file",
    ],
)
def test_bad_usage_exits_2_with_a_message(tmp_path, args, files, message) -> None:
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else write(path, content)
    done = run("normalize", *[arg.format(tmp=tmp_path) for arg in args])
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and message in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_unknown_column_error_lists_the_columns(tmp_path) -> None:
    jobs = write(tmp_path / "jobs.csv", "id,title,company\n1,nurse,x\n")
    done = run("normalize", "--file", str(jobs), "--column", "job")
    assert done.returncode == 2 and "no column 'job'" in done.stderr and "id, title, company" in done.stderr


# ---------------------------------------------------------------------------------------- the default JobBERT
@pytest.fixture(scope="session")
def default_jobbert_dir() -> Path:
    """The embedded default JobBERT model (all-mpnet-base-v2 + ESCO v1.2 occupations), built on first use."""
    from labor_encoders.jobbert import ensure_default_jobbert

    return ensure_default_jobbert()


@pytest.fixture(scope="module")
def occupations() -> dict[str, tuple[str, set[str]]]:
    """The preferred label and all the labels of each ESCO v1.2 occupation of the asset, by URI."""
    from labor_encoders.assets import ensure_esco_occupations

    with ensure_esco_occupations().open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return {row["id"]: (row["label"], {row["label"], *row["alt_labels"].split("\n")} - {""}) for row in rows}


@pytest.mark.real_weights
def test_default_model_json_schema_order_and_edge_titles(default_jobbert_dir, occupations, shared_data) -> None:
    long_title = ("senior full stack software developer with cloud experience " * 10)[:500]
    titles = ["software developer", "", long_title, "👩‍💻🚀", "   ", "head chef"]
    results, _ = normalize_json(*titles)  # no --model: the embedded default
    assert len(long_title) == 500 and titles_of(results) == titles
    for title, result in zip(titles, results, strict=True):
        assert set(result) == {"title", "matches"}
        if not title.strip():
            assert result["matches"] == []
            continue
        matches = result["matches"]
        assert len(matches) == 5  # the default --top-k
        assert len({match["id"] for match in matches}) == 5
        scores = [match["score"] for match in matches]
        assert scores == sorted(scores, reverse=True)
        for match in matches:
            assert set(match) == MATCH_KEYS and math.isfinite(match["score"]) and -1.0 <= match["score"] <= 1.0001
            assert match["id"].startswith(OCCUPATION)
            preferred, labels = occupations[match["id"]]
            assert match["label"] == preferred and match["matched_label"] in labels

    # "software developer" is an ESCO label itself: it is found exactly, and the top 5 hold ICT occupations
    # (ISCO 25, "Information and communications technology professionals" in the ESCO v1.0 export).
    software = results[0]["matches"]
    assert software[0]["matched_label"] == "software developer" and software[0]["score"] >= 0.99
    with (shared_data / "esco" / "occupations_en.csv").open(encoding="utf-8", newline="") as f:
        isco = {row["conceptUri"]: row["iscoGroup"] for row in csv.DictReader(f)}
    ict = [match for match in software if isco.get(match["id"], "").startswith("25")]
    assert len(ict) >= 3, software
    assert results[5]["matches"][0]["label"] == "head chef"


@pytest.mark.real_weights
def test_default_model_text_output_with_standard_input(default_jobbert_dir) -> None:
    done = run(
        "normalize", "--model", str(default_jobbert_dir), "--top-k", "2", "software developer", "-", stdin="nurse\n\n"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if not line.startswith("  ")] == ["software developer", "nurse", "(empty title)"]
    assert lines[0] == "software developer" and lines[3] == "nurse" and lines[6] == "(empty title)" and len(lines) == 7
    pattern = re.compile(rf"  (-?\d\.\d{{3}})  (.+)  ({re.escape(OCCUPATION)}\S+)(  \(as .+\))?")
    for line in lines[1:3] + lines[4:6]:
        assert pattern.fullmatch(line), line
    assert "software developer" in lines[1]
