"""Property tests (Hypothesis) of the code that takes text from the world: extract, the sentence splitter, the batch
readers and a whole batch run, and the taxonomy loader. Any input: no exception but the documented ones, bounded
time, evidence that is a slice of its text, every input row in the output or in the rejects (never both, never
neither). Examples are few and small so that the file runs in seconds; the big inputs are explicit examples."""

from __future__ import annotations

import json
import string
import time
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from labor_encoders.batch.inputs import REASONS, BatchError, Columns, count_records, read_items
from labor_encoders.batch.runner import BatchJob, run_local
from labor_encoders.modeling.modeling_contextmatch import split_sentences
from labor_encoders.taxonomy import TaxonomyError, load_taxonomy
from tests import test_batch
from tests.conftest import WORDS, make_tiny_model

model_dirs, options, annotator = test_batch.model_dirs, test_batch.options, test_batch.annotator  # fixtures

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RUNS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ODD = [
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner
    "\ufeff",  # byte order mark
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "שלום עולם",  # Hebrew
    "مرحبا بالعالم",  # Arabic
    "\u0301",  # a combining accent with nothing to combine with
    "👩‍💻",  # an emoji sequence
    "İ",  # lowercases to two characters
    "ﬁ",  # a ligature that normalises to two
    "\x00",
    "\x07",
    "\x1b[31m",
    "\u2028",  # line separator (not a line break to the splitter)
    "\x85",
    "\u3000",  # ideographic space
    "\u2003",  # em space
    "\ud800",  # a lone surrogate, as json.loads makes of "\ud800"
    "\t",
    "\r",
    "\r\n",
    "\n",
    "\n\n",
    "- ",
    "• ",
    ". ",
    "! ",
    "? ",
    "A. ",
    "1. ",
]
pieces = st.sampled_from(WORDS + ODD + list(string.punctuation)) | st.text(max_size=8)
texts = st.lists(pieces, max_size=60).map(" ".join) | st.text(max_size=300)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a busy 2-core machine, intra-op threads make the many tiny per-sentence products of a
    tiny model up to 75 times slower (0.7 s against 50 s for 5,000 sentences, measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model(tiny_tokenizer):
    return make_tiny_model(tiny_tokenizer, threshold=0.0)  # every skill passes: the most evidence to check


def check_extracted(text: str, result: dict, labels: list[str]) -> None:
    assert result["text"] == text
    for skill in result["skills"]:
        assert skill["label"] in labels and skill["score"] == skill["score"]  # not NaN
        for evidence in skill["evidence"]:
            start, end = evidence["start"], evidence["end"]
            assert 0 <= start < end <= len(text)
            assert text[start:end] == evidence["text"]
            assert any(char.isalnum() for char in evidence["text"])


# ---------------------------------------------------------------------------------------------------------------
# extract and the sentence splitter
# ---------------------------------------------------------------------------------------------------------------


@FAST
@given(batch=st.lists(texts, min_size=1, max_size=4))
@example(batch=["".join(ODD)])
@example(batch=["python\u200b sql", "\u202ewe need python\u202c", "\ud800 python", "\u3000", ""])
def test_extract_takes_any_text_and_its_evidence_is_a_slice_of_it(model, batch) -> None:
    results = model.extract(batch, top_k=None)
    assert len(results) == len(batch)
    for text, result in zip(batch, results, strict=True):
        check_extracted(text, result, model.skill_labels)


@pytest.mark.parametrize(
    "text",
    [
        "python" * 170_000,  # one line of about 1 MB without a space
        "A b. " * 20_000,  # 20,000 tiny sentences
        "\n".join(["sql"] * 20_000),  # 20,000 one-word lines
    ],
    ids=["1-MB-word", "20k-sentences", "20k-lines"],
)
@pytest.mark.slow
def test_extract_on_huge_inputs_ends_in_bounded_time(model, text) -> None:
    started = time.perf_counter()
    (result,) = model.extract(text, top_k=5, batch_size=256)
    assert time.perf_counter() - started < 60
    check_extracted(text, result, model.skill_labels)


@FAST
@given(text=texts)
def test_sentences_are_ordered_stripped_slices_that_cover_every_letter(text) -> None:
    spans = split_sentences(text)
    covered = set()
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        sentence = text[start:end]
        assert sentence == sentence.strip() and "\n" not in sentence and "\r" not in sentence
        covered.update(range(start, end))
        previous_end = end
    assert all(i in covered for i, char in enumerate(text) if char.isalnum())


# ---------------------------------------------------------------------------------------------------------------
# Batch readers and a whole run
# ---------------------------------------------------------------------------------------------------------------

cells = st.sampled_from(WORDS + ODD + ['"', '""', ",", "\t", "\n", "\\", "{", "}", "[", "null", "1"]) | st.text(
    max_size=6
)
lines = st.lists(cells, max_size=6).map("".join)
json_values = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20) | texts
json_records = st.fixed_dictionaries({"text": json_values}, optional={"title": json_values, "id": json_values})


@st.composite
def ad_files(draw) -> tuple[str, bytes]:
    """A CSV, TSV or JSONL file of ads with broken rows, bad bytes and odd text; or random bytes."""
    kind = draw(st.sampled_from(["csv", "tsv", "jsonl", "jsonl-raw", "bytes"]))
    if kind == "bytes":
        return draw(st.sampled_from(["csv", "tsv", "jsonl"])), draw(st.binary(max_size=400))
    if kind == "jsonl-raw":
        rows = draw(st.lists(json_records.map(json.dumps) | lines, max_size=8))
        return "jsonl", "\n".join(rows).encode("utf-8", "surrogatepass")
    if kind == "jsonl":
        rows = [json.dumps(r, ensure_ascii=draw(st.booleans())) for r in draw(st.lists(json_records, max_size=8))]
        data = "\n".join(rows).encode("utf-8", "surrogatepass")
        return "jsonl", data
    delimiter = "," if kind == "csv" else "\t"
    rows = [delimiter.join(["id", "title", "text"])] + draw(st.lists(lines, max_size=8))
    data = "\n".join(rows).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):  # a few bytes that are not UTF-8 somewhere after the header
        at = draw(st.integers(len(rows[0]) + 1, max(len(data), len(rows[0]) + 1)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"])) + data[at:]
    return kind, data


def expected_records(fmt: str, data: bytes, path: Path) -> int:
    if fmt == "jsonl":
        return sum(1 for line in data.split(b"\n") if line.strip())
    return count_records(path, fmt)


@FAST
@given(file=ad_files())
def test_readers_yield_every_record_once_as_an_ad_or_a_reject(tmp_path_factory, file) -> None:
    fmt, data = file
    path = tmp_path_factory.mktemp("ads") / f"ads.{fmt}"
    path.write_bytes(data)
    try:
        items = list(read_items(path, 0, Columns(id="id" if fmt == "jsonl" else None), fmt))
    except BatchError:
        return  # documented: a file without the text column
    assert [item["row"] for item in items] == list(range(1, len(items) + 1))
    assert len(items) == expected_records(fmt, data, path)
    for item in items:
        if item["reason"] is None:
            assert isinstance(item["text"], str) and item["text"].strip() and item["message"] is None
            item["text"].encode("utf-8")  # storable: no lone surrogate
            (item["id"] or "").encode("utf-8") and item["title"].encode("utf-8")
        else:
            assert item["reason"] in REASONS and item["text"] == "" and item["message"]


@FAST
@given(data=st.binary(max_size=300))
@example(data=b"PAR1" + b"\0" * 20 + b"PAR1")
def test_a_broken_parquet_file_is_a_batch_error(tmp_path_factory, data) -> None:
    path = tmp_path_factory.mktemp("parquet") / "ads.parquet"
    path.write_bytes(data)
    with pytest.raises(BatchError, match="is not a readable Parquet file"):
        list(read_items(path, 0, Columns(), "parquet"))


@RUNS
@given(file=ad_files())
def test_a_run_puts_every_row_in_the_output_or_the_rejects_never_both(tmp_path_factory, options, annotator, file):
    fmt, data = file
    folder = tmp_path_factory.mktemp("run")
    path = folder / f"ads.{fmt}"
    path.write_bytes(data)
    job = BatchJob([path], folder / "out", Columns(), options, part_size=3)
    try:
        summary = run_local(job, progress=False, annotator=annotator)
    except BatchError:
        return  # documented: a file without the text column (the command checks it before any work)
    assert summary["complete"]
    done = [row["row"] for row in pq.read_table(job.output / "parquet").to_pylist()] if summary["ads"] else []
    lines = (job.output / "rejects.jsonl").read_text(encoding="utf-8").split("\n")[:-1]  # JSON may hold U+2028
    rejected = [json.loads(line)["row"] for line in lines]
    assert not set(done) & set(rejected)
    assert sorted(done + rejected) == list(range(1, expected_records(fmt, data, path) + 1))


# ---------------------------------------------------------------------------------------------------------------
# Taxonomy files
# ---------------------------------------------------------------------------------------------------------------


@st.composite
def taxonomy_files(draw) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(["csv", "tsv", "jsonl", "txt"]))
    if draw(st.integers(0, 9)) == 0:
        return fmt, draw(st.binary(max_size=300))
    if fmt == "jsonl":
        record = st.fixed_dictionaries(
            {"label": json_values}, optional={"id": json_values, "alt_labels": json_values | st.lists(json_values)}
        )
        rows = draw(st.lists(record.map(json.dumps) | lines, max_size=8))
    elif fmt == "txt":
        rows = draw(st.lists(lines, max_size=8))
    else:
        delimiter = "," if fmt == "csv" else "\t"
        rows = [delimiter.join(["label", "id", "altLabels"])] + draw(st.lists(lines, max_size=8))
    return fmt, "\n".join(rows).encode("utf-8", "surrogatepass")


@FAST
@given(file=taxonomy_files())
@example(file=("jsonl", b'{"label": "python", "alt_labels": [null, 1, {"a": 2}]}\n{"label": "\\ud800"}'))
def test_taxonomy_files_load_or_raise_a_taxonomy_error(tmp_path_factory, file) -> None:
    fmt, data = file
    path = tmp_path_factory.mktemp("taxonomy") / f"skills.{fmt}"
    path.write_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # skipped and merged rows are announced, not errors
            taxonomy = load_taxonomy(path)
    except TaxonomyError:
        return
    assert len(taxonomy.labels) == len(set(taxonomy.labels)) == len(taxonomy.ids) == len(taxonomy.alt_labels) > 0
    for label, alts in zip(taxonomy.labels, taxonomy.alt_labels, strict=True):
        assert label and label == label.strip() and label not in alts
        label.encode("utf-8")  # a label the models can encode
        assert all(alt and alt == alt.strip() for alt in alts)


@RUNS
@given(records=st.lists(st.fixed_dictionaries({"text": json_values}, optional={"region": json_values}), max_size=6))
@example(records=[{"text": "python", "region": "\ud800"}, {"text": "sql", "region": {"a": ["\udfff"]}}])
def test_kept_columns_never_stop_a_run(tmp_path_factory, options, annotator, records) -> None:
    folder = tmp_path_factory.mktemp("keep")
    path = folder / "ads.jsonl"
    path.write_bytes("".join(json.dumps(r) + "\n" for r in records).encode("utf-8"))
    job = BatchJob([path], folder / "out", Columns(keep=("region",)), options, part_size=2)
    summary = run_local(job, progress=False, annotator=annotator)
    assert summary["complete"] and summary["ads"] + summary["rejected"] == len(records)
