"""``labor-encoders batch``: streaming readers, rejects, parts, resume, and the command run as a real subprocess."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labor_encoders.batch.inputs import (
    BatchError,
    Columns,
    check_columns,
    count_records,
    find_inputs,
    read_items,
)
from labor_encoders.batch.runner import (
    OUTPUT_COLUMNS,
    Annotator,
    BatchJob,
    ModelOptions,
    run_local,
)
from labor_encoders.build import save_model

CLI = [sys.executable, "-m", "labor_encoders.cli"]
ENV = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
SENTENCES = [
    "Strong python and sql skills.",
    "You will manage project work in a great team.",
    "Data analysis and machine learning models in the cloud.",
    "We offer a bike.\nCommunication in english and dutch is a plus.",
]
TITLES = ["python developer", "data analysis", "project manager", ""]


def make_ads(count: int, start: int = 0) -> list[dict[str, str]]:
    """Ads with varied lengths and titles (one in four has none)."""
    return [
        {
            "id": f"ad-{i}",
            "title": TITLES[i % 4],
            "text": " ".join(SENTENCES[j % 4] for j in range(i, i + 1 + i % 3)),
        }
        for i in range(start, start + count)
    ]


def write_csv(path: Path, rows: list[dict[str, str]], header=("id", "title", "text"), delimiter=",") -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows([row.get(column, "") for column in header] for row in rows)
    return path


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def read_output(folder: Path) -> list[dict]:
    """All output rows, sorted by their key (source, row)."""
    rows = pq.read_table(folder / "parquet").to_pylist()
    return sorted(rows, key=lambda row: (row["source"], row["row"]))


def read_rejects(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "rejects.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, tiny_tokenizer) -> dict[str, Path]:
    """A tiny ConTeXT-match and a tiny JobBERT, saved as folders (as a user passes them with --model)."""
    from tests.conftest import make_tiny_model
    from tests.test_jobbert import make_tiny_jobbert

    folder = tmp_path_factory.mktemp("batch-models")
    return {
        "model": save_model(make_tiny_model(tiny_tokenizer), folder / "contextmatch"),
        "jobbert": save_model(make_tiny_jobbert(tiny_tokenizer), folder / "jobbert"),
    }


@pytest.fixture(scope="module")
def options(model_dirs) -> ModelOptions:
    return ModelOptions(model=str(model_dirs["model"]), jobbert_model=str(model_dirs["jobbert"]))


@pytest.fixture(scope="module")
def annotator(options) -> Annotator:
    return Annotator.load(options)


# ---------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------


def test_every_kind_of_bad_row_is_rejected_with_its_reason(tmp_path) -> None:
    ads = tmp_path / "ads.csv"
    lines = [
        b"id,title,text\n",
        b"1,nurse,Good ad.\n",
        b"2,nurse\n",  # malformed: too few fields
        b"3,nurse,  \n",  # empty text
        b"4,nurse,caf\xe9 latin-1\n",  # not UTF-8
        b'5,nurse,"' + b"x" * 60 + b'"\n',  # over --max-chars 50
        b"\n",  # a blank line is not a record
        b'6,"multi\nline title","Second good ad,\nover two lines."\n',
    ]
    ads.write_bytes(b"".join(lines))
    items = list(read_items(ads, 0, Columns(id="id"), max_chars=50))
    assert [(i["row"], i["line"], i["reason"]) for i in items] == [
        (1, 2, None),
        (2, 3, "malformed_csv"),
        (3, 4, "empty_text"),
        (4, 5, "not_utf8"),
        (5, 6, "too_long"),
        (6, 8, None),
    ]
    assert items[5] | {"text": items[5]["text"]} == {
        "file": 0,
        "source": str(ads),
        "row": 6,
        "line": 8,
        "id": "6",
        "title": "multi\nline title",
        "text": "Second good ad,\nover two lines.",
        "reason": None,
        "message": None,
        "raw": None,
    }
    assert items[1]["raw"] == "2,nurse" and "2 fields, the header has 3" in items[1]["message"]
    assert items[3]["raw"] == "4,nurse,caf\\xe9 latin-1" and items[3]["id"] is None
    assert items[4]["id"] == "5" and "60 characters, over the limit of 50" in items[4]["message"]
    assert all(item["text"] == "" for item in items if item["reason"])
    assert count_records(ads, "csv") == 6

    jsonl = tmp_path / "ads.jsonl"
    jsonl.write_bytes(
        b'{"text": "Good ad.", "title": "nurse"}\n'
        b"{not json\n"
        b"[1, 2]\n"
        b'{"title": "no text"}\n'
        b'{"text": 42}\n'
        b'{"text": "caf\xe9"}\n'
        b"\n"
        b'{"text": "Line \xe2\x80\xa8 separator is not a line break."}\n'
    )
    items = list(read_items(jsonl, 3, Columns()))
    assert [(i["row"], i["line"], i["reason"]) for i in items] == [
        (1, 1, None),
        (2, 2, "bad_json"),
        (3, 3, "bad_json"),
        (4, 4, "missing_column"),
        (5, 5, "not_text"),
        (6, 6, "not_utf8"),
        (7, 8, None),
    ]
    assert items[0]["title"] == "nurse" and items[6]["title"] == "" and items[0]["file"] == 3
    assert items[1]["raw"] == "{not json" and items[5]["raw"] == '{"text": "caf\\xe9"}'
    assert count_records(jsonl, "jsonl") == 7

    parquet = tmp_path / "ads.parquet"
    table = pa.table({"text": pa.array([b"Good ad.", None, "caf\xe9".encode("latin-1")], pa.binary())})
    pq.write_table(table, parquet)
    items = list(read_items(parquet, 0, Columns()))
    assert [(i["row"], i["line"], i["reason"], i["text"]) for i in items] == [
        (1, None, None, "Good ad."),
        (2, None, "empty_text", ""),
        (3, None, "not_utf8", ""),
    ]


def test_skipping_records_resumes_exactly_after_them(tmp_path) -> None:
    ads = make_ads(50)
    parquet = tmp_path / "ads.parquet"
    pq.write_table(pa.Table.from_pylist(ads), parquet, row_group_size=7)  # skips whole row groups, then rows
    files = [write_csv(tmp_path / "ads.csv", ads), write_jsonl(tmp_path / "ads.jsonl", ads), parquet]
    for path in files:
        full = list(read_items(path, 0, Columns(id="id")))
        assert [item["id"] for item in full] == [ad["id"] for ad in ads]
        for skip in (0, 1, 7, 20, 49, 50, 60):
            assert list(read_items(path, 0, Columns(id="id"), skip=skip)) == full[skip:], (path, skip)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
@pytest.mark.slow
def test_reading_is_streamed_whatever_the_file_size(tmp_path, suffix) -> None:
    """A 32 MB file (Parquet: in one row group) is read with under 1 MB of Python objects and 8 MB of Arrow buffers."""
    ads = [{"id": str(i), "title": "developer", "text": os.urandom(450).hex()} for i in range(36_000)]
    path = tmp_path / f"big{suffix}"
    if suffix == ".csv":
        write_csv(path, ads)
    elif suffix == ".jsonl":
        write_jsonl(path, ads)
    else:
        pq.write_table(pa.Table.from_pylist(ads), path)
        assert pq.read_metadata(path).num_row_groups == 1
    del ads
    assert path.stat().st_size > 30 * 2**20
    items = read_items(path, 0, Columns(id="id"))
    tracemalloc.start()
    arrow_peak = count = 0
    last = ""
    try:
        for item in items:
            count, last = count + 1, item["id"]
            arrow_peak = max(arrow_peak, pa.total_allocated_bytes())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 36_000 and last == "35999"
    assert peak < 2**20, f"{peak:,} bytes of Python objects alive while reading"
    assert arrow_peak < 8 * 2**20, f"{arrow_peak:,} bytes of Arrow buffers alive while reading"


def test_inputs_from_files_folders_and_globs(tmp_path) -> None:
    (tmp_path / "in" / "2024").mkdir(parents=True)
    (tmp_path / "in" / "_tmp").mkdir()
    names = ["in/b.csv", "in/a.jsonl", "in/2024/c.parquet", "in/.hidden.csv", "in/_tmp/d.csv", "in/notes.txt"]
    for name in names:
        (tmp_path / name).write_text("text\nx\n")
    found = find_inputs([str(tmp_path / "in")])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["in/2024/c.parquet", "in/a.jsonl", "in/b.csv"]
    globbed = find_inputs([str(tmp_path / "in" / "*.csv"), str(tmp_path / "in" / "b.csv"), str(tmp_path / "in/**")])
    assert [p.relative_to(tmp_path).as_posix() for p in globbed] == [  # a glob takes what it matches
        "in/b.csv",
        "in/2024/c.parquet",
        "in/_tmp/d.csv",
        "in/a.jsonl",
    ]
    with pytest.raises(BatchError, match="no such file, folder or matching"):
        find_inputs([str(tmp_path / "missing*.csv")])
    with pytest.raises(BatchError, match="unknown suffix '.txt'"):
        find_inputs([str(tmp_path / "in" / "notes.txt")])
    assert find_inputs([str(tmp_path / "in" / "notes.txt")], "csv") == [tmp_path / "in" / "notes.txt"]
    assert find_inputs([str(tmp_path / "in" / "_tmp")]) == [tmp_path / "in" / "_tmp" / "d.csv"]  # named: read
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("text\nx\n")
    with pytest.raises(BatchError, match="the folder .*docs holds no .csv, .tsv, .jsonl, .ndjson, .parquet file"):
        find_inputs([str(tmp_path / "docs")])


def test_an_unknown_column_is_refused_before_any_work_with_the_columns_listed(tmp_path) -> None:
    csv_file = write_csv(tmp_path / "ads.csv", make_ads(2), header=("ad_id", "job_title", "body"))
    parquet = tmp_path / "ads.parquet"
    pq.write_table(pa.Table.from_pylist(make_ads(2)), parquet)
    jsonl = write_jsonl(tmp_path / "ads.jsonl", ["not an object", {"body": "x", "ad_id": 1}])
    with pytest.raises(BatchError, match=r"ads.csv has no column 'text'.*--text-column.*'ad_id', 'job_title', 'body'"):
        check_columns([csv_file], Columns())
    with pytest.raises(BatchError, match=r"no column 'job_title'.*--title-column.*'id', 'title', 'text'"):
        check_columns([parquet], Columns(title="job_title", title_required=True))
    with pytest.raises(BatchError, match=r"no column 'text'.*'body', 'ad_id'"):
        check_columns([jsonl], Columns())
    check_columns([csv_file, jsonl], Columns(text="body", id="ad_id"))  # the default title may be missing
    with pytest.raises(BatchError, match="ads.csv has no column 'text'"):  # every file is checked, not the first
        check_columns([parquet, csv_file], Columns(text="text", id="id"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(BatchError, match="is empty"):
        check_columns([empty], Columns())


# ---------------------------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------------------------


def test_each_ad_gets_what_extract_and_normalize_give(tmp_path, options, annotator) -> None:
    ads = make_ads(12)
    ads.append({"id": "unicode", "title": "Krankenpfleger", "text": "Wir suchen Pflegekräfte. 看护 🙂 Python!"})
    source = write_csv(tmp_path / "ads.csv", ads)
    job = BatchJob([source], tmp_path / "out", Columns(id="id"), options, part_size=5, write_csv=True)
    result = run_local(job, progress=False, annotator=annotator)
    assert result | {"seconds": 0, "ads_per_s": 0} == {
        "output": str(tmp_path / "out"),
        "ads": 13,
        "rejected": 0,
        "parts": 3,
        "complete": True,
        "records_this_run": 13,
        "seconds": 0,
        "ads_per_s": 0,
    }
    rows = read_output(job.output)
    extracted = annotator.extractor.extract([ad["text"] for ad in ads])
    normalized = annotator.jobbert.normalize([ad["title"] or "x" for ad in ads], top_k=1)
    for number, (row, ad, skills, titles) in enumerate(zip(rows, ads, extracted, normalized, strict=True), 1):
        assert (row["id"], row["source"], row["row"], row["title"]) == (ad["id"], str(source), number, ad["title"])
        assert row["skills"] == skills["skills"] and row["skill_labels"] == [s["label"] for s in skills["skills"]]
        assert row["skill_ids"] == [s["id"] for s in skills["skills"]]
        assert row["skill_scores"] == [s["score"] for s in skills["skills"]]
        best = titles["matches"][0]
        expected = (best["label"], best["id"], best["score"]) if ad["title"] else (None, None, None)
        assert (row["occupation"], row["occupation_id"], row["occupation_score"]) == expected
    assert sorted(p.name for p in (job.output / "parquet").iterdir()) == [f"part-0000{i}.parquet" for i in range(3)]
    assert [pq.read_metadata(job.output / "parquet" / f"part-0000{i}.parquet").num_rows for i in range(3)] == [5, 5, 3]
    with (job.output / "csv" / "part-00001.csv").open(encoding="utf-8", newline="") as handle:
        csv_rows = list(csv.DictReader(handle))
    assert list(csv_rows[0]) == OUTPUT_COLUMNS
    for csv_row, row in zip(csv_rows, rows[5:10], strict=True):
        assert json.loads(csv_row["skills"]) == row["skills"]
        assert csv_row["skill_labels"] == "; ".join(row["skill_labels"]) and csv_row["row"] == str(row["row"])
    assert (job.output / "rejects.jsonl").read_text() == ""
    state = json.loads((job.output / "state.json").read_text())
    assert state["complete"] and state["parts"] == ["part-00000", "part-00001", "part-00002"]


def test_rejects_file_and_no_titles(tmp_path, model_dirs, annotator) -> None:
    source = tmp_path / "ads.jsonl"
    source.write_bytes(b'{"text": "python", "title": "nurse"}\n{bad\n{"text": ""}\n{"text": "sql \xff"}\n')
    no_titles = ModelOptions(model=str(model_dirs["model"]), titles=False)
    job = BatchJob([source], tmp_path / "out", options=no_titles)
    run_local(job, progress=False, annotator=Annotator(no_titles, annotator.extractor))
    (row,) = read_output(job.output)
    assert row["title"] == "nurse" and row["occupation"] is None and row["skill_labels"]
    rejects = read_rejects(job.output)
    assert [(r["row"], r["line"], r["reason"]) for r in rejects] == [
        (2, 2, "bad_json"),
        (3, 3, "empty_text"),
        (4, 4, "not_utf8"),
    ]
    assert set(rejects[0]) == {"source", "row", "line", "id", "reason", "message", "raw"}
    assert rejects[0]["source"] == str(source) and rejects[0]["raw"] == "{bad"


def test_a_crash_resumes_from_the_last_part_without_duplicates_or_gaps(tmp_path, options, annotator) -> None:
    files = [write_csv(tmp_path / "a.csv", make_ads(70)), write_jsonl(tmp_path / "b.jsonl", make_ads(90, 70))]
    (tmp_path / "b.jsonl").write_text((tmp_path / "b.jsonl").read_text() + "{broken\n" + json.dumps({"text": ""}))

    def job(name: str, **kwargs) -> BatchJob:
        return BatchJob(files, tmp_path / name, Columns(id="id"), options, part_size=25, write_csv=True, **kwargs)

    reference = job("reference")
    run_local(reference, progress=False, annotator=annotator)

    class Crash(Exception):
        pass

    calls = 0

    def crashing(items):
        nonlocal calls
        calls += 1
        if calls == 2:  # groups of 64 ads: the first gave parts 0 and 1 and 14 ads of part 2
            raise Crash
        return annotator(items)

    crashed = job("crashed")
    with pytest.raises(Crash):
        run_local(crashed, progress=False, annotator=crashing)
    state = json.loads((crashed.output / "state.json").read_text())
    assert state["parts"] == ["part-00000", "part-00001"] and not state["complete"]
    # what a kill at a bad moment leaves: a part renamed but not committed, a temporary file, an extra reject
    (crashed.output / "parquet" / "part-00002.parquet").write_bytes(b"half")
    (crashed.output / "csv" / ".tmp-part-00002.csv").write_text("half")
    with (crashed.output / "rejects.jsonl").open("a") as handle:
        handle.write('{"uncommitted": true}\n')
    calls = -100
    assert run_local(crashed, progress=False, annotator=crashing)["complete"]
    assert read_output(crashed.output) == read_output(reference.output)
    assert read_rejects(crashed.output) == read_rejects(reference.output) and len(read_rejects(reference.output)) == 2
    for sub in ("parquet", "csv"):
        assert sorted(os.listdir(crashed.output / sub)) == sorted(os.listdir(reference.output / sub))
    keys = [(row["source"], row["row"]) for row in read_output(crashed.output)]
    assert len(keys) == len(set(keys)) == 160

    limited = job("limited", limit=60)  # a limit stops early; a later run without it continues
    assert run_local(limited, progress=False, annotator=annotator)["complete"] is False
    assert len(read_output(limited.output)) == 60
    limited.limit = None
    summary = run_local(limited, progress=False, annotator=annotator)
    assert summary["complete"] and summary["records_this_run"] == 102
    assert read_output(limited.output) == read_output(reference.output)
    assert read_rejects(limited.output) == read_rejects(reference.output)


def test_a_finished_run_is_kept_and_other_options_are_refused(tmp_path, options, annotator) -> None:
    source = write_csv(tmp_path / "ads.csv", make_ads(6))
    job = BatchJob([source], tmp_path / "out", options=options, part_size=4)
    run_local(job, progress=False, annotator=annotator)
    before = {p.name: p.stat().st_mtime_ns for p in (job.output / "parquet").iterdir()}

    def refuse(*_):
        raise AssertionError("a finished run must not annotate again")

    assert run_local(job, progress=False, annotator=refuse)["records_this_run"] == 0
    assert {p.name: p.stat().st_mtime_ns for p in (job.output / "parquet").iterdir()} == before
    other = BatchJob([source], job.output, options=ModelOptions(model=options.model, threshold=0.9), part_size=4)
    with pytest.raises(BatchError, match="holds a run with other model.*--overwrite"):
        run_local(other, progress=False, annotator=annotator)
    assert run_local(other, overwrite=True, progress=False, annotator=annotator)["ads"] == 6
    write_csv(source, make_ads(7))
    with pytest.raises(BatchError, match="other inputs"):
        run_local(other, progress=False, annotator=annotator)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(BatchError, match="not a batch output folder"):
        run_local(BatchJob([source], tmp_path / "taken", options=options), progress=False, annotator=annotator)


# ---------------------------------------------------------------------------------------------------------------
# The command, as a real subprocess
# ---------------------------------------------------------------------------------------------------------------


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=ENV)


def model_flags(model_dirs) -> list[str]:
    return ["--model", str(model_dirs["model"]), "--jobbert-model", str(model_dirs["jobbert"])]


@pytest.mark.slow
def test_cli_reads_a_folder_of_csv_jsonl_and_parquet(tmp_path, model_dirs) -> None:
    folder = tmp_path / "ads"
    folder.mkdir()
    renamed = [{"ad_id": ad["id"], "job": ad["title"], "body": ad["text"]} for ad in make_ads(3)]
    write_csv(folder / "1.csv", renamed, header=("ad_id", "job", "body"))
    write_jsonl(folder / "2.jsonl", [{"ad_id": 7, "job": "nurse", "body": "Team work."}, {"body": ""}])
    pq.write_table(pa.Table.from_pylist([{"ad_id": "p", "job": None, "body": "sql"}]), folder / "3.parquet")
    done = cli("batch", str(folder), "--output", str(tmp_path / "out"), "--text-column", "body", "--title-column",
               "job", "--id-column", "ad_id", "--csv", *model_flags(model_dirs))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "5 ads in 1 part under" in done.stderr and "1 rejected" in done.stderr and "complete" in done.stderr
    rows = read_output(tmp_path / "out")
    assert [(Path(r["source"]).name, r["row"], r["id"], r["title"]) for r in rows] == [
        ("1.csv", 1, "ad-0", "python developer"),
        ("1.csv", 2, "ad-1", "data analysis"),
        ("1.csv", 3, "ad-2", "project manager"),
        ("2.jsonl", 1, "7", "nurse"),
        ("3.parquet", 1, "p", ""),
    ]
    (reject,) = read_rejects(tmp_path / "out")
    assert (reject["reason"], reject["row"], reject["message"]) == ("missing_column", 2, "no 'ad_id' field")
    again = cli("batch", str(folder), "--output", str(tmp_path / "out"), "--text-column", "body", "--title-column",
                "job", "--id-column", "ad_id", "--csv", *model_flags(model_dirs))  # fmt: skip
    assert again.returncode == 0 and "0 rows read in this run" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text-column", "body"], "has no column 'body' (the text column; choose another with --text-column); "),
        (["--title-column", "job"], "its columns are 'id', 'title', 'text'"),
        (["--part-size", "0"], "--part-size must be at least 1"),
        ([], "does not exist"),
    ],
)
def test_cli_errors_are_clear(tmp_path, args, message) -> None:
    source = write_csv(tmp_path / "ads.csv", make_ads(2))
    done = cli("batch", str(source), "--output", str(tmp_path / "out"), "--model", str(tmp_path / "none"), *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def many_ads(tmp_path_factory, model_dirs) -> tuple[Path, Path]:
    """600 ads with 3 bad rows after the 150th in a CSV, and the output of an uninterrupted run."""
    folder = tmp_path_factory.mktemp("many")
    source = write_csv(folder / "ads.csv", make_ads(150))
    with source.open("a", encoding="utf-8") as handle:
        handle.write("bad-1,too few\nbad-2,nurse,\n,,   \n")
    write_csv(folder / "rest.csv", make_ads(450, 150))
    with source.open("a", encoding="utf-8") as handle:
        handle.write((folder / "rest.csv").read_text(encoding="utf-8").split("\n", 1)[1])
    done = cli("-q", "batch", str(source), "--output", str(folder / "reference"), "--part-size", "20", "--id-column",
               "id", "--csv", *model_flags(model_dirs))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return source, folder / "reference"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
@pytest.mark.slow
def test_cli_interrupted_for_real_then_rerun_equals_an_uninterrupted_run(tmp_path, many_ads, model_dirs, signum):
    """Ctrl+C and SIGTERM write the ads in hand as a part and stop; SIGKILL loses what came after the last part."""
    source, reference = many_ads
    output = tmp_path / "out"
    command = [*CLI, "-q", "batch", str(source), "--output", str(output), "--part-size", "20", "--id-column", "id",
               "--csv", *model_flags(model_dirs)]  # fmt: skip
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    parts: list[str] = []
    while len(parts) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
        try:
            parts = json.loads((output / "state.json").read_text())["parts"]
        except (OSError, ValueError):
            continue
    assert process.poll() is None, f"the run ended before it could be interrupted: {process.communicate()}"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    state = json.loads((output / "state.json").read_text())
    assert not state["complete"] and 2 <= len(state["parts"]) < 30
    if signum == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 130, stderr
        assert "stopping after the ads in hand" in stderr and "run the same command again to continue" in stderr
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = read_output(output)
    expected_keys = [(str(source), n) for n in [*range(1, 151), *range(154, 604)]]
    assert [(row["source"], row["row"]) for row in rows] == expected_keys
    assert rows == read_output(reference)
    assert read_rejects(output) == read_rejects(reference)
    assert [(r["row"], r["reason"]) for r in read_rejects(output)] == [
        (151, "malformed_csv"),
        (152, "empty_text"),
        (153, "empty_text"),
    ]
    if signum == signal.SIGKILL:  # the same parts; after a graceful stop, one part is shorter
        assert sorted(os.listdir(output / "csv")) == sorted(os.listdir(reference / "csv"))
        for name in os.listdir(output / "csv"):
            assert (output / "csv" / name).read_bytes() == (reference / "csv" / name).read_bytes()
    assert len(os.listdir(output / "csv")) == len(os.listdir(output / "parquet"))


# ---------------------------------------------------------------------------------------------------------------
# The real default models
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.real_weights
def test_real_models_on_skill_xl_ads_give_what_extract_and_normalize_give(
    tmp_path, shared_data, default_model, default_jobbert
) -> None:
    """Three Skill-XL job ads, their first 12 sentences each (Skill-XL gives each sentence with its ad's id)."""
    ads: dict[str, dict[str, str]] = {}
    sentences: dict[str, int] = {}
    with (shared_data / "skill-xl" / "development_a.csv").open(encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            if len(ads) == 3 and record["ID"] not in ads:
                break
            ad = ads.setdefault(record["ID"], {"id": record["ID"], "title": record["title"], "text": ""})
            sentences[ad["id"]] = sentences.get(ad["id"], 0) + 1
            if sentences[ad["id"]] <= 12:
                ad["text"] += ("\n" if ad["text"] else "") + record["sentence"]
    ads_list = list(ads.values())
    source = write_jsonl(tmp_path / "ads.jsonl", ads_list)
    options = ModelOptions()
    job = BatchJob([source], tmp_path / "out", Columns(id="id"), options, part_size=2)
    run_local(job, progress=False, annotator=Annotator(options, default_model, default_jobbert))
    rows = read_output(job.output)
    extracted = default_model.extract([ad["text"] for ad in ads_list])
    normalized = default_jobbert.normalize([ad["title"] for ad in ads_list], top_k=1)
    assert [row["id"] for row in rows] == [ad["id"] for ad in ads_list]
    assert len(rows) == 3 and sum(len(row["skills"]) for row in rows) >= 3
    for row, skills, titles in zip(rows, extracted, normalized, strict=True):
        assert row["skills"] == skills["skills"]
        assert (row["occupation"], row["occupation_id"]) == (titles["matches"][0]["label"], titles["matches"][0]["id"])
