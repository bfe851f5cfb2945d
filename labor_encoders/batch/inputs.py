"""Streaming readers of job ads for ``labor-encoders batch``: CSV, TSV, JSONL and Parquet, one record at a time.

:func:`find_inputs` turns files, folders and globs into a sorted list of files; :func:`check_columns` refuses an
unknown column before any work, naming the columns the file has; :func:`read_items` yields one *item* per input
record, in file order, without ever holding more than one record (CSV, JSONL) or one Parquet batch in memory (the
records come from the project's one table reader, :mod:`labor_encoders.tables`).

An item is a plain dict (it also travels through Ray Data as a row)::

    {"file": 0, "source": "ads/a.csv", "row": 7, "line": 9, "id": "A7", "title": "Nurse", "text": "...",
     "reason": None, "message": None, "raw": None}

``row`` is the record's 1-based number in its file (blank lines are not records; a CSV header is not one), ``line``
its first line in the file (None for Parquet). ``(source, row)`` is the item's stable key. A record that cannot be
processed keeps its place in the stream with ``reason`` set (a short code), ``message`` saying why and ``raw`` holding
the record as read (cut to :data:`RAW_CHARS` characters); ``text`` is then empty.
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import tables
from ..errors import LaborEncodersError
from ..tables import FORMATS, Bad, TableError

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
# the columns of the batch output (labor_encoders.batch.runner): the item's key, then what the models add
OUTPUT_COLUMNS = ["id", "source", "row", "title", "skills", "skill_labels", "skill_ids", "skill_scores"]
OUTPUT_COLUMNS += ["occupation", "occupation_id", "occupation_score"]
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # what json.loads makes of "\ud800": not a character


class BatchError(LaborEncodersError):
    """Bad batch input or options (a missing file, an unknown column, a changed input on resume): says the fix."""


@contextmanager
def _as_batch_error() -> Iterator[None]:
    """The table reader's errors (an unreadable Parquet file, an unknown suffix) as BatchErrors."""
    try:
        yield
    except TableError as error:
        raise BatchError(str(error)) from None


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
    with _as_batch_error():
        return tables.file_format(path, forced)


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
    with _as_batch_error():
        return tables.columns_of(path, fmt)


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
    """How many records a file holds, cheaply (see :func:`labor_encoders.tables.count_records`)."""
    tables.allow_long_cells()
    with _as_batch_error():
        return tables.count_records(path, fmt)


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
    tables.allow_long_cells()  # --max-chars judges lengths
    for row, line, record in _records(path, fmt, skip, needed):
        if row <= skip:
            continue
        item: Item = {"file": file_index, "source": source, "row": row, "line": line, "id": None, "title": ""}
        item |= {"text": "", "reason": None, "message": None, "raw": None}
        item |= dict.fromkeys(kept.values())
        if isinstance(record, Bad):
            message = record.message if line is None else f"line {line}: {record.message}"
            item |= {"reason": record.reason, "message": message, "raw": _cut(record.raw)}
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


def _records(path: Path, fmt: str, skip: int, columns: list[str] | None) -> tables.Records:
    with _as_batch_error():
        yield from tables.records(path, fmt, skip, columns)


def _cut(raw: str) -> str:
    return raw if len(raw) <= RAW_CHARS else raw[:RAW_CHARS] + f"… ({len(raw):,} characters)"
