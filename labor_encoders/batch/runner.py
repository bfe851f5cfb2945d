"""Corpus-scale skill extraction: job ads in, Parquet parts of skills and normalised titles out, resumable.

One job (:class:`BatchJob`) reads its inputs as a stream of items (:mod:`labor_encoders.batch.inputs`), annotates
them in groups with :func:`annotate` (ConTeXT-match skills with scores and evidence, the JobBERT occupation of the
title) and hands the results, in input order, to :class:`BatchOutput`, which writes them as parts of ``part_size``
ads. The same :func:`annotate` serves the one-process engine here (:func:`run_local`) and the Ray Data engine
(:mod:`labor_encoders.batch.ray_data`), and both write through the same :class:`BatchOutput`.

The output folder::

    OUT/parquet/part-00000.parquet ...   the ads, ``part_size`` per part (pd.read_parquet("OUT/parquet"))
    OUT/csv/part-00000.csv ...           the same rows as CSV, with --csv
    OUT/rejects.jsonl                    one line per record that could not be processed, with the reason
    OUT/state.json                       the parts done and the input position after the last one

A part is written to a temporary name and renamed; ``state.json`` is replaced after it, and that replacement is the
commit. A run killed at any moment (Ctrl+C, SIGKILL, a lost machine) therefore restarts, with the same command,
from the last committed part: parts after it are deleted, the rejects file is cut back to its committed length and
the inputs are read again from the committed position, so no row is duplicated or lost. A write that fails (a full
disk, a folder turned read-only) stops the run with :class:`OutputWriteError` and leaves the last commit as it was.

One run writes a folder at a time: both engines hold :func:`labor_encoders.locking.output_lock` on it (the lock file
``.OUT.lock`` is beside the folder, not in it) from before ``state.json`` is read until the run ends.
"""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from ..atomic import write_file
from ..locking import output_lock
from .inputs import (
    MAX_CHARS,
    OUTPUT_COLUMNS,
    BatchError,
    Columns,
    Item,
    count_records,
    file_format,
    read_items,
)

logger = logging.getLogger(__name__)

PART_SIZE = 10_000
ADS_PER_CALL = 64  # ads per extract() call: enough sentences to fill length buckets, little memory
STATE_VERSION = 1
REJECT_COLUMNS = ["source", "row", "line", "id", "reason", "message", "raw"]


def output_schema(with_item_fields: bool = False, columns: Columns | None = None):
    """The Arrow schema of the Parquet parts, with the kept input columns of ``columns`` (text) at the end; with the
    item fields, of a result as it travels through Ray."""
    import pyarrow as pa

    evidence = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("text", pa.string())])
    skill = pa.struct(
        [("label", pa.string()), ("id", pa.string()), ("score", pa.float64()), ("evidence", pa.list_(evidence))]
    )
    fields = [
        ("id", pa.string()),
        ("source", pa.string()),
        ("row", pa.int64()),
        ("title", pa.string()),
        ("skills", pa.list_(skill)),
        ("skill_labels", pa.list_(pa.string())),
        ("skill_ids", pa.list_(pa.string())),
        ("skill_scores", pa.list_(pa.float64())),
        ("occupation", pa.string()),
        ("occupation_id", pa.string()),
        ("occupation_score", pa.float64()),
    ]
    fields += [(name, pa.string()) for name in (columns.kept().values() if columns else ())]
    if with_item_fields:
        fields += [("file", pa.int64()), ("line", pa.int64())]
        fields += [(name, pa.string()) for name in ("reason", "message", "raw")]
    return pa.schema(fields)


# ---------------------------------------------------------------------------------------------------------------
# Annotation: one function for both engines
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelOptions:
    """The models and the extraction settings; everything here but ``batch_size`` shapes the output."""

    model: str | None = None
    jobbert_model: str | None = None
    titles: bool = True
    backend: str = "torch"
    threshold: float | None = None
    top_k: int | None = None
    redundancy_filter: bool | None = None
    batch_size: int = 32

    def signature(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key != "batch_size"}


def annotate(items: Sequence[Item], extractor, jobbert, options: ModelOptions) -> list[Item]:
    """Results for ``items``, in order: skills and occupation for each good item, a reject passed through as is.

    ``extractor`` is what :func:`labor_encoders.backends.load_extractor` returns, ``jobbert`` a JobBERT model or
    None (no occupations). A result is the item without its text plus the :data:`OUTPUT_COLUMNS`.
    """
    good = [i for i, item in enumerate(items) if item["reason"] is None]
    results = [_empty_result(item) for item in items]
    if good:
        extracted = extractor.extract(
            [items[i]["text"] for i in good],
            threshold=options.threshold,
            top_k=options.top_k,
            redundancy_filter=options.redundancy_filter,
            batch_size=options.batch_size,
        )
        for i, found in zip(good, extracted, strict=True):
            skills = found["skills"]
            results[i] |= {
                "skills": skills,
                "skill_labels": [s["label"] for s in skills],
                "skill_ids": [s["id"] for s in skills],
                "skill_scores": [s["score"] for s in skills],
            }
    titled = [i for i in good if items[i]["title"].strip()] if jobbert is not None else []
    if titled:
        normalized = jobbert.normalize([items[i]["title"] for i in titled], top_k=1, batch_size=options.batch_size)
        for i, found in zip(titled, normalized, strict=True):
            if found["matches"]:
                best = found["matches"][0]
                results[i] |= {
                    "occupation": best["label"],
                    "occupation_id": best["id"],
                    "occupation_score": best["score"],
                }
    return results


def _empty_result(item: Item) -> Item:
    """The item without its text, with no skills and no occupation yet."""
    result = {key: value for key, value in item.items() if key != "text"}
    result |= {"skills": [], "skill_labels": [], "skill_ids": [], "skill_scores": []}
    return result | {"occupation": None, "occupation_id": None, "occupation_score": None}


class Annotator:
    """The models of a job and :func:`annotate` as a call; :meth:`load` loads them once (the Ray engine's actors
    hold one each)."""

    def __init__(self, options: ModelOptions, extractor, jobbert=None) -> None:
        self.options, self.extractor, self.jobbert = options, extractor, jobbert

    @classmethod
    def load(cls, options: ModelOptions, device: str | None = None) -> Annotator:
        """The models ``options`` name, through :func:`load_extractor` (so ``backend`` applies) and
        :func:`load_jobbert` (none without titles)."""
        from ..backends import load_extractor

        extractor = load_extractor(options.model, options.backend, device=device)
        if not options.titles:
            return cls(options, extractor)
        from ..jobbert import load_jobbert, resolve_jobbert_dir

        return cls(options, extractor, load_jobbert(resolve_jobbert_dir(options.jobbert_model), device=device))

    def __call__(self, items: Sequence[Item]) -> list[Item]:
        return annotate(items, self.extractor, self.jobbert, self.options)


def default_device() -> str | None:
    """CUDA when this process sees a GPU (a Ray GPU worker does), else the models' default (CPU)."""
    import torch

    return "cuda" if torch.cuda.is_available() else None


# ---------------------------------------------------------------------------------------------------------------
# The job and its output
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class BatchJob:
    """What to read, how to annotate it and where to write it."""

    files: list[Path]
    output: Path
    columns: Columns = field(default_factory=Columns)
    options: ModelOptions = field(default_factory=ModelOptions)
    format: str | None = None
    max_chars: int = MAX_CHARS
    part_size: int = PART_SIZE
    write_csv: bool = False
    limit: int | None = None

    def signature(self) -> dict[str, Any]:
        """Everything that shapes the output; a resumed run must match it."""
        return {
            "inputs": [[str(path.resolve()), path.stat().st_size] for path in self.files],
            # as JSON keeps it (a list); without kept columns, as earlier versions wrote it (resumable)
            "columns": {k: list(v) if k == "keep" else v for k, v in asdict(self.columns).items() if k != "keep" or v},
            "format": self.format,
            "max_chars": self.max_chars,
            "part_size": self.part_size,
            "csv": self.write_csv,
            "model": self.options.signature(),
        }

    def tasks(self, position: dict[str, int]) -> list[tuple[Path, int, int]]:
        """``(path, file index, records to skip)`` for each file not finished at ``position``."""
        first, row = position["file"], position["row"]
        return [(path, i, row if i == first else 0) for i, path in enumerate(self.files) if i >= first]

    def items(self, position: dict[str, int]) -> Iterator[Item]:
        """The items after ``position``, lazily, file after file."""
        for path, index, skip in self.tasks(position):
            yield from read_items(path, index, self.columns, self.format, self.max_chars, skip)

    def total(self) -> int | None:
        """Records in all inputs (capped by ``limit``), from a cheap count; None when a file cannot be counted."""
        try:
            total = sum(count_records(path, file_format(path, self.format)) for path in self.files)
        except (OSError, ValueError):
            return None
        return total if self.limit is None else min(total, self.limit)


class OutputWriteError(BatchError):
    """Writing the output failed (no space left, a read-only folder, ...); the last commit is intact."""


_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


class BatchOutput:
    """The output folder of a job: Parquet (and CSV) parts, the rejects file and the committed state."""

    def __init__(self, job: BatchJob, overwrite: bool = False) -> None:
        self.job = job
        self.folder = job.output
        self.state: dict[str, Any] = {"parts": []}
        self._rejects = None
        self._committed = 0  # parts in the state.json on disk
        try:
            self._open(job, overwrite)
        except OSError as error:
            raise self._write_failed(error, "state.json and rejects.jsonl") from None

    def _open(self, job: BatchJob, overwrite: bool) -> None:
        self.folder = job.output
        self.parts_dir = self.folder / "parquet"
        self.csv_dir = self.folder / "csv"
        self.state_path = self.folder / "state.json"
        self.rejects_path = self.folder / "rejects.jsonl"
        self.columns = OUTPUT_COLUMNS + list(job.columns.kept().values())
        signature = job.signature()
        state = self._read_state()
        if state is not None and overwrite:
            self._clear()
            state = None
        if state is None:
            if self.folder.exists() and any(self.folder.iterdir()) and not overwrite:
                raise BatchError(f"{self.folder} exists and is not a batch output folder; choose another --output")
            state = {"version": STATE_VERSION, "signature": signature, "parts": [], "ads": 0, "rejected": 0}
            state |= {"records": 0, "position": {"file": 0, "row": 0}, "rejects_bytes": 0, "complete": False}
        elif state["signature"] != signature:
            changed = sorted(key for key in signature if signature[key] != state["signature"].get(key))
            raise BatchError(
                f"{self.folder} holds a run with other {', '.join(changed)}: resume it with the same command, "
                "or start again with --overwrite (or another --output)"
            )
        self.state, self._committed = state, len(state["parts"])
        self.folder.mkdir(parents=True, exist_ok=True)
        self._commit()  # first: a folder with a state.json is a batch output folder, whatever fails after it
        self.parts_dir.mkdir(exist_ok=True)
        if job.write_csv:
            self.csv_dir.mkdir(exist_ok=True)
        self._discard_uncommitted()
        self.rows: list[Item] = []
        self.position = dict(state["position"])
        self.records = state["records"]
        self.rejected = state["rejected"]
        self._rejects = self.rejects_path.open("ab")

    @property
    def complete(self) -> bool:
        return bool(self.state["complete"])

    def add(self, result: Item) -> None:
        """Take the next result in input order: a reject goes to the rejects file, an ad to the current part."""
        if result["reason"] is not None:
            line = {key: result.get(key) for key in REJECT_COLUMNS}
            try:
                self._rejects.write((json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace"))
            except OSError as error:
                raise self._write_failed(error, "rejects.jsonl") from None
            self.rejected += 1
        else:
            self.rows.append({key: result[key] for key in self.columns})
        self.position = {"file": int(result["file"]), "row": int(result["row"])}
        self.records += 1
        if len(self.rows) >= self.job.part_size:
            self.flush()

    def flush(self, complete: bool = False) -> None:
        """Write the rows taken since the last part as a new part, then commit (also with no rows, to record a
        position or the end). A failed write raises :class:`OutputWriteError`; the last commit stays as it was."""
        name = f"part-{self._committed:05d}"
        what = name if self.rows else "state.json"
        try:
            self._flush(complete)
        except OSError as error:
            for path in (self.parts_dir / f"{name}.parquet", self.csv_dir / f"{name}.csv"):
                with suppress(OSError):  # the part in hand, if it was renamed in place before the commit failed
                    path.unlink(missing_ok=True)
            raise self._write_failed(error, what) from None

    def _flush(self, complete: bool) -> None:
        if self.rows:
            name = f"part-{len(self.state['parts']):05d}"
            schema = output_schema(columns=self.job.columns)
            write_file(self.parts_dir / f"{name}.parquet", lambda path: _write_parquet(self.rows, path, schema))
            if self.job.write_csv:
                write_file(self.csv_dir / f"{name}.csv", lambda path: _write_csv(self.rows, path, self.columns))
            self.state["parts"].append(name)
            self.state["ads"] += len(self.rows)
            self.rows = []
        self._rejects.flush()
        os.fsync(self._rejects.fileno())
        self.state |= {"position": dict(self.position), "records": self.records, "rejected": self.rejected}
        self.state |= {"rejects_bytes": self._rejects.tell(), "complete": complete}
        self._commit()

    def close(self, complete: bool) -> None:
        self.flush(complete)
        self._rejects.close()

    def _write_failed(self, error: OSError, what: str) -> OutputWriteError:
        """The error that stops the run; the rejects file is closed without its unwritten buffer."""
        if self._rejects is not None:
            with suppress(OSError):
                self._rejects.close()  # closes the file even when flushing its buffer fails
        committed = self._committed
        intact = f"the {committed} committed part{'s' * (committed != 1)} and state.json are intact"
        if error.errno in _NO_SPACE:
            cause, fix = "no space left on device", "free space"
        elif error.errno in _READ_ONLY:
            cause, fix = f"the folder is read-only ({error.strerror})", "make it writable"
        else:
            cause, fix = error.strerror or str(error), "fix that"
        return OutputWriteError(
            f"{cause} while writing {what} in {self.folder}; {intact}; {fix} and run the same command again to resume"
        )

    def _read_state(self) -> dict[str, Any] | None:
        if not self.state_path.is_file():
            return None
        try:
            state = json.loads(self.state_path.read_text())
        except ValueError as error:
            raise BatchError(f"{self.state_path} is unreadable ({error}); start again with --overwrite") from None
        if state.get("version") != STATE_VERSION:
            raise BatchError(f"{self.state_path} was written by another version; start again with --overwrite")
        return state

    def _clear(self) -> None:
        for path in (self.parts_dir, self.csv_dir):
            shutil.rmtree(path, ignore_errors=True)
        for path in (self.rejects_path, self.state_path):
            path.unlink(missing_ok=True)

    def _discard_uncommitted(self) -> None:
        """Delete what an interrupted run wrote after its last commit: later parts, temporary files, rejects."""
        done = set(self.state["parts"])
        for folder, suffix in ((self.parts_dir, ".parquet"), (self.csv_dir, ".csv")):
            for path in folder.glob("*") if folder.is_dir() else []:
                if path.name.startswith(".tmp-") or (path.suffix == suffix and path.stem not in done):
                    path.unlink()
        with self.rejects_path.open("ab") as handle:
            handle.truncate(self.state["rejects_bytes"])

    def _commit(self) -> None:
        self.state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        text = json.dumps(self.state, indent=2) + "\n"
        write_file(self.state_path, lambda path: path.write_text(text))
        self._committed = len(self.state["parts"])


def _write_parquet(rows: list[Item], path: Path, schema) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def _write_csv(rows: list[Item], path: Path, columns: list[str]) -> None:
    """The same rows as CSV: ``skills`` as a JSON list, the other lists joined with ``"; "`` (as the web demo)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            cells = dict(row, skills=json.dumps(row["skills"], ensure_ascii=False))
            for column in ("skill_labels", "skill_ids", "skill_scores"):
                cells[column] = "; ".join(map(str, row[column]))
            writer.writerow(["" if cells[c] is None else cells[c] for c in columns])


# ---------------------------------------------------------------------------------------------------------------
# Running a job
# ---------------------------------------------------------------------------------------------------------------


def open_output(job: BatchJob, overwrite: bool = False) -> tuple[BatchOutput, int | None]:
    """The output (new, or resumed at its last commit) and how many records remain to read (None: all)."""
    output = BatchOutput(job, overwrite)
    if output.records:
        logger.info(
            "resuming %s: %s ads in %d parts and %s rejects done, continuing after %s row %d",
            job.output,
            f"{output.state['ads']:,}",
            len(output.state["parts"]),
            f"{output.rejected:,}",
            job.files[min(output.position["file"], len(job.files) - 1)],
            output.position["row"],
        )
    remaining = None if job.limit is None else max(job.limit - output.records, 0)
    return output, remaining


def consume(job: BatchJob, output: BatchOutput, results: Iterable[Item], remaining: int | None, progress: bool):
    """Feed ``results`` (in input order) to ``output`` with a progress bar; commit the end. Returns a summary.

    Ctrl+C or SIGTERM stops after the result in hand: the ads taken so far are written as a (shorter) part and
    committed, then :class:`KeyboardInterrupt` is raised. A second Ctrl+C stops at once, losing only what came after
    the last part (as a kill does).
    """
    from tqdm import tqdm

    started, before = time.perf_counter(), output.records
    total = job.total()
    bar = tqdm(total=total, initial=output.records, unit="ads", desc="batch", disable=not progress, smoothing=0.1)
    with bar, _StopRequest() as stop:
        for result in results:
            output.add(result)
            bar.update(1)
            if output.rejected:
                bar.set_postfix(rejected=output.rejected, refresh=False)
            if stop.requested:
                break
    if stop.requested:
        output.close(complete=False)
        raise KeyboardInterrupt
    exhausted = remaining is None or output.records - before < remaining
    output.close(complete=exhausted)
    seconds = time.perf_counter() - started
    return summary(output, output.records - before, seconds)


class _StopRequest:
    """While active (in the main thread), the first SIGINT or SIGTERM only sets ``requested``: a KeyboardInterrupt
    raised anywhere could be lost (Python ignores exceptions in ``__del__`` methods) or land half-way through a
    write. The second one raises KeyboardInterrupt at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nstopping after the ads in hand (their part is written); Ctrl+C again stops at once",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def summary(output: BatchOutput, records: int, seconds: float) -> dict[str, Any]:
    state = output.state
    return {
        "output": str(output.folder),
        "ads": state["ads"],
        "rejected": state["rejected"],
        "parts": len(state["parts"]),
        "complete": state["complete"],
        "records_this_run": records,
        "seconds": round(seconds, 2),
        "ads_per_s": round(records / seconds, 2) if seconds > 0 else None,
    }


def run_local(
    job: BatchJob, overwrite: bool = False, progress: bool = True, annotator: Annotator | None = None
) -> dict[str, Any]:
    """Run ``job`` in this process, streaming: at most one group of :data:`ADS_PER_CALL` ads and one part in memory.

    ``annotator`` defaults to ``Annotator.load(job.options)``; pass one to reuse models already loaded.
    """
    with output_lock(job.output, "labor-encoders batch"):
        return _run_local(job, overwrite, progress, annotator)


def _run_local(job: BatchJob, overwrite: bool, progress: bool, annotator: Annotator | None) -> dict[str, Any]:
    output, remaining = open_output(job, overwrite)
    if output.complete:
        output.close(complete=True)
        return summary(output, 0, 0.0)
    annotator = annotator or Annotator.load(job.options, device=default_device())
    items = job.items(output.position)
    if remaining is not None:
        items = islice(items, remaining)

    def results() -> Iterator[Item]:
        while group := list(islice(items, ADS_PER_CALL)):
            yield from annotator(group)

    return consume(job, output, results(), remaining, progress)
