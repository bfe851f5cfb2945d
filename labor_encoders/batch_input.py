"""Streaming readers of job ads for ``labor-encoders batch``: CSV, TSV, JSONL and Parquet, one record at a time.

:func:`find_inputs` turns files, folders and globs into a sorted list of files; :func:`check_columns` refuses an
unknown column before any work, naming the columns the file has; :func:`read_items` yields one *item* per input
record, in file order, without ever holding more than one record (CSV, JSONL) or one Parquet batch in memory.

An item is a plain dict (it also travels through Ray Data as a row)::

    {"file": 0, "source": "ads/a.csv", "row": 7, "line": 9, "id": "A7", "title": "Nurse", "text": "...",
     "reason": None, "message": None, "raw": None}

``row`` is the record's 1-based number in its file (blank lines are not records; a CSV header is not one), ``line``
its first line in the file (None for Parquet). ``(source, row)`` is the item's stable key. A record that cannot be
processed keeps its place in the stream with ``reason`` set (a short code), ``message`` saying why and ``raw`` holding
the record as read (cut to :data:`RAW_CHARS` characters); ``text`` is then empty.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LaborEncodersError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
MAX_CHARS = 1_000_000  # an ad longer than this (about 150,000 words) is rejected, never cut
RAW_CHARS = 2_000  # how much of a rejected record the rejects file keeps
REASONS = {
    "malformed_csv": "a CSV/TSV record with the wrong number of fields, or that the csv module cannot parse",
    "bad_json": "a JSONL line that is not JSON, or not a JSON object",
    "not_utf8": "bytes that are not UTF-8, or a JSON escape of a lone surrogate (\\ud800) in the text, title or id",
    "missing_column": "a JSONL record without the text column (or without an id/title column named by a flag)",
    "not_text": "a text cell that holds a number, list or object instead of text",
    "empty_text": "an empty or blank text",
    "too_long": f"a text over --max-chars characters (default {MAX_CHARS:,})",
}
Item = dict[str, Any]
ITEM_FIELDS = ("file", "source", "row", "line", "id", "title", "text", "reason", "message", "raw")
# the columns of the batch output (labor_encoders.batch): the item's key, then what the models add
OUTPUT_COLUMNS = ["id", "source", "row", "title", "skills", "skill_labels", "skill_ids", "skill_scores"]
OUTPUT_COLUMNS += ["occupation", "occupation_id", "occupation_score"]
_SURROGATE = re.compile("[\udc80-\udcff]")  # undecodable bytes, as errors="surrogateescape" keeps them
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # what json.loads makes of "\ud800": not a character


class BatchError(LaborEncodersError):
    """Bad batch input or options (a missing file, an unknown column, a changed input on resume): says the fix."""


@dataclass(frozen=True)
class Columns:
    """Which column holds each field. ``title`` may be missing from a file when it was not named by a flag."""

    text: str = "text"
    title: str | None = "title"
    id: str | None = None
    title_required: bool = False
    keep: tuple[str, ...] = ()  # input columns carried through to the output, as text (``--keep-columns``)

    def kept(self) -> dict[str, str]:
        """The kept input columns and their output names: a name the output already uses gets ``input_``."""
        taken = set(ITEM_FIELDS) | set(OUTPUT_COLUMNS)
        return {column: f"input_{column}" if column in taken else column for column in self.keep}

    def needed(self, available: Sequence[str], source: str) -> list[str]:
        """The columns to read from a file with ``available`` columns; an unknown named column is a BatchError."""
        named = [("text", self.text, "--text-column"), ("id", self.id, "--id-column")]
        if self.title_required:
            named.append(("title", self.title, "--title-column"))
        for field, column, flag in named:
            if column is not None and column not in available:
                have = ", ".join(map(repr, available)) or "(none)"
                raise BatchError(
                    f"{source} has no column {column!r} (the {field} column; choose another with {flag}); "
                    f"its columns are {have}"
                )
        wanted = [self.text, self.id, self.title if self.title in available else None]
        wanted += [column for column in self.keep if column in available]
        return [column for column in dict.fromkeys(wanted) if column is not None]


def item_schema(columns: Columns | None = None):
    """The Arrow schema of an item (for Ray Data blocks), with the kept columns of ``columns``."""
    import pyarrow as pa

    strings = [name for name in ITEM_FIELDS if name not in ("file", "row", "line")]
    strings += list(columns.kept().values()) if columns else []
    return pa.schema(
        [(name, pa.int64()) for name in ("file", "row", "line")] + [(name, pa.string()) for name in strings]
    )


def keep_all(files: Sequence[Path], columns: Columns, forced_format: str | None = None) -> tuple[str, ...]:
    """Every column of the inputs (in order of first appearance) except those read as text, title and id."""
    used = {columns.text, columns.title, columns.id}
    found = [c for path in files for c in columns_of(path, file_format(path, forced_format)) if c not in used]
    return tuple(dict.fromkeys(found))


def file_format(path: Path, forced: str | None = None) -> str:
    fmt = forced or FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BatchError(f"cannot read {path}: unknown suffix {path.suffix!r}; use {', '.join(FORMATS)} (or --format)")
    return fmt


def find_inputs(patterns: Sequence[str], forced_format: str | None = None) -> list[Path]:
    """The input files: each pattern is a file, a folder (its supported files, recursively, sorted) or a glob.

    Files and folders whose name starts with ``.`` or ``_`` inside a folder are skipped (hidden files, Spark's
    ``_SUCCESS``). A file named twice is read once.
    """
    files: dict[Path, None] = {}
    for pattern in patterns:
        path = Path(pattern)
        if path.is_file():
            file_format(path, forced_format)
            files[path] = None
            continue
        if path.is_dir():
            found = [
                f
                for f in sorted(path.rglob("*"))
                if f.is_file()
                and (forced_format or f.suffix.lower() in FORMATS)
                and not any(part.startswith((".", "_")) for part in f.relative_to(path).parts)
            ]
            if not found:
                raise BatchError(f"the folder {path} holds no {', '.join(FORMATS)} file")
        else:
            found = [Path(f) for f in sorted(glob.glob(pattern, recursive=True)) if Path(f).is_file()]
            found = [f for f in found if forced_format or f.suffix.lower() in FORMATS]
            if not found:
                raise BatchError(f"no such file, folder or matching {', '.join(FORMATS)} files: {pattern}")
        files.update(dict.fromkeys(found))
    if not files:
        raise BatchError("give at least one input file, folder or glob")
    return list(files)


def columns_of(path: Path, fmt: str) -> list[str]:
    """The columns of a file: its header (CSV), schema (Parquet) or the keys of its first JSON object (JSONL)."""
    if fmt == "parquet":
        return list(_parquet_file(path).schema_arrow.names)
    if fmt == "jsonl":
        with path.open("rb") as handle:
            for line in handle:
                try:
                    record = json.loads(line.decode("utf-8-sig"))
                except ValueError:
                    continue
                if isinstance(record, dict):
                    return list(record)
        return []
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        for record in csv.reader(handle, delimiter="\t" if fmt == "tsv" else ","):
            if record:
                return [cell.strip() for cell in record]
    return []


def check_columns(files: Sequence[Path], columns: Columns, forced_format: str | None = None) -> None:
    """Refuse, before any work, a file that lacks a named column (JSONL: judged by its first object), and a kept
    column that no input has (a file without it gives empty cells)."""
    seen: set[str] = set()
    for path in files:
        fmt = file_format(path, forced_format)
        available = columns_of(path, fmt)
        if not available and fmt != "jsonl":
            raise BatchError(f"{path} is empty: expected a header (or schema) with the column {columns.text!r}")
        if available:
            columns.needed(available, str(path))
        seen.update(available)
    missing = [column for column in columns.keep if column not in seen]
    if missing:
        have = ", ".join(map(repr, sorted(seen))) or "(none)"
        raise BatchError(
            f"--keep-columns names {', '.join(map(repr, missing))}, which no input has; the inputs' columns are {have}"
        )


def count_records(path: Path, fmt: str) -> int:
    """How many records a file holds, cheaply: Parquet metadata, non-blank JSONL lines, CSV records parsed as
    Latin-1 (UTF-8's multi-byte characters never contain a quote, comma or line break, so the count is exact)."""
    if fmt == "parquet":
        return _parquet_file(path).metadata.num_rows
    if fmt == "jsonl":
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    _raise_csv_limit()
    with path.open(encoding="latin-1", newline="") as handle:
        return max(sum(1 for record in csv.reader(handle, delimiter="\t" if fmt == "tsv" else ",") if record) - 1, 0)


def read_items(
    path: Path,
    file_index: int,
    columns: Columns,
    fmt: str | None = None,
    max_chars: int = MAX_CHARS,
    skip: int = 0,
) -> Iterator[Item]:
    """One item per record of ``path`` after its first ``skip`` records, lazily (see the module docstring)."""
    fmt = fmt or file_format(path)
    source = str(path)
    needed = columns.needed(columns_of(path, fmt), source) if fmt != "jsonl" else None
    kept = columns.kept()
    for row, line, record in _READERS[fmt](path, skip, needed):
        if row <= skip:
            continue
        item: Item = {"file": file_index, "source": source, "row": row, "line": line, "id": None, "title": ""}
        item |= {"text": "", "reason": None, "message": None, "raw": None}
        item |= dict.fromkeys(kept.values())
        if isinstance(record, _Bad):
            item |= {"reason": record.reason, "message": record.message, "raw": _cut(record.raw)}
        else:
            item |= _fields(record, columns, max_chars)
            item |= {name: as_text(record.get(column)) for column, name in kept.items()}
            unstorable = [column for column, name in kept.items() if item[name] and _LONE_SURROGATE.search(item[name])]
            if unstorable:  # Parquet cannot store a lone surrogate (a JSON escape like \ud800)
                item |= dict.fromkeys(kept[column] for column in unstorable)
                if item["reason"] is None:
                    message = f"{unstorable[0]!r} holds a lone surrogate (an escape like \\ud800)"
                    item |= {"reason": "not_utf8", "message": message}
            if item["reason"] is not None:
                ad_id = record.get(columns.id) if columns.id else None
                item |= {"text": "", "id": None if ad_id is None else str(ad_id)}
                item["raw"] = _cut(json.dumps(record, ensure_ascii=False, default=str))
        yield item


def _fields(record: dict[str, Any], columns: Columns, max_chars: int) -> dict[str, Any]:
    """The id, title and text of a good record, or a reason and message."""
    for column, required in ((columns.text, True), (columns.id, True), (columns.title, columns.title_required)):
        if column is not None and required and column not in record:
            return {"reason": "missing_column", "message": f"no {column!r} field"}
    text = record[columns.text]
    if isinstance(text, bytes):  # a Parquet binary column
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            return {"reason": "not_utf8", "message": f"{columns.text!r} is not UTF-8 ({error.reason})"}
    if text is not None and not isinstance(text, str):
        return {"reason": "not_text", "message": f"{columns.text!r} holds a {type(text).__name__}, not text"}
    if text is None or not text.strip():
        return {"reason": "empty_text", "message": f"empty {columns.text!r}"}
    if len(text) > max_chars:
        return {
            "reason": "too_long",
            "message": f"{columns.text!r} has {len(text):,} characters, over the limit of {max_chars:,} (--max-chars)",
        }
    ad_id = record.get(columns.id) if columns.id else None
    title = record.get(columns.title) if columns.title else None
    fields = {"text": text, "id": None if ad_id is None else str(ad_id), "title": "" if title is None else str(title)}
    for column, value in ((columns.text, fields["text"]), (columns.id, fields["id"]), (columns.title, fields["title"])):
        if value and _LONE_SURROGATE.search(value):  # neither the models nor Parquet can take it
            return {"reason": "not_utf8", "message": f"{column!r} holds a lone surrogate (an escape like \\ud800)"}
    return fields | {"title": fields["title"].strip()}


def as_text(value: Any) -> str | None:
    """A kept cell as text: strings as they are, dates in ISO 8601, lists and objects as JSON, None stays None.

    >>> [as_text(v) for v in (None, "Leeds", 3, 2.5, True, [1, "a"])]
    [None, 'Leeds', '3', '2.5', 'true', '[1, "a"]']
    >>> import datetime; as_text(datetime.date(2020, 10, 1))
    '2020-10-01'
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bool | list | tuple | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


@dataclass(frozen=True)
class _Bad:
    reason: str
    message: str
    raw: str


Records = Iterator[tuple[int, int | None, "dict[str, Any] | _Bad"]]  # (row, line, record or why it is bad)


def _delimited(path: Path, skip: int, delimiter: str) -> Records:
    """CSV/TSV records; bytes that are not UTF-8 are kept as surrogates so that only their record is rejected."""
    _raise_csv_limit()
    kind = "TSV" if delimiter == "\t" else "CSV"
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header: list[str] | None = None
        row = line = 0
        while True:
            start = line + 1
            try:
                record = next(reader, None)
            except csv.Error as error:
                line, row = reader.line_num, row + 1
                yield row, start, _Bad("malformed_csv", f"line {start}: malformed {kind} ({error})", "")
                continue
            line = reader.line_num  # a quoted cell may span several lines
            if record is None:
                return
            if not record:  # a blank line is not a record
                continue
            if header is None:
                header = [cell.strip() for cell in record]
                continue
            row += 1
            if row <= skip:
                yield row, start, {}
                continue
            raw = _csv_line(record, delimiter)
            if _has_surrogates(raw):
                raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                yield row, start, _Bad("not_utf8", f"line {start}: bytes that are not UTF-8", raw)
            elif len(record) != len(header):
                message = f"line {start}: {len(record)} fields, the header has {len(header)}"
                yield row, start, _Bad("malformed_csv", message, raw)
            else:
                yield row, start, dict(zip(header, record, strict=True))


def _jsonl(path: Path, skip: int, columns: list[str] | None = None) -> Records:
    """JSONL records, split on ``\\n`` only (JSON strings may hold U+2028 and the like), decoded line by line."""
    row = 0
    with path.open("rb") as handle:
        for line, data in enumerate(handle, 1):
            if not data.strip():
                continue
            row += 1
            if row <= skip:
                yield row, line, {}
                continue
            try:
                text = data.decode("utf-8-sig" if line == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raw = data.decode("utf-8", "backslashreplace").rstrip("\r\n")
                yield row, line, _Bad("not_utf8", f"line {line}: not UTF-8 ({error.reason} at byte {error.start})", raw)
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as error:
                yield row, line, _Bad("bad_json", f"line {line}: not JSON ({error.msg})", text.rstrip("\r\n"))
                continue
            if not isinstance(record, dict):
                message = f"line {line}: a JSON {type(record).__name__}, not an object"
                yield row, line, _Bad("bad_json", message, text.rstrip("\r\n"))
            else:
                yield row, line, record


def _parquet(path: Path, skip: int, columns: list[str] | None = None) -> Records:
    """Parquet rows, one batch of at most 256 rows in memory; row groups wholly before ``skip`` are not read."""
    parquet = _parquet_file(path)
    groups, row = [], 0
    for index in range(parquet.metadata.num_row_groups):
        rows = parquet.metadata.row_group(index).num_rows
        if row + rows <= skip and not groups:
            row += rows
            continue
        groups.append(index)
    if not groups:
        return
    for batch in parquet.iter_batches(batch_size=256, row_groups=groups, columns=columns):
        for record in batch.to_pylist():
            row += 1
            yield row, None, record


def _parquet_file(path: Path):
    import pyarrow.parquet as pq

    try:  # buffered page reads: without them a whole row group (often the whole file) is read into memory
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 16)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ...
        raise BatchError(f"{path} is not a readable Parquet file ({error})") from None


_READERS = {
    "csv": lambda path, skip, columns: _delimited(path, skip, ","),
    "tsv": lambda path, skip, columns: _delimited(path, skip, "\t"),
    "jsonl": _jsonl,
    "parquet": _parquet,
}


def _raise_csv_limit() -> None:
    """Let the csv module read cells of any length (its default stops at 131,072 characters); --max-chars decides."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _csv_line(record: list[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(record)
    return out.getvalue()


def _has_surrogates(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def _cut(raw: str) -> str:
    return raw if len(raw) <= RAW_CHARS else raw[:RAW_CHARS] + f"… ({len(raw):,} characters)"
