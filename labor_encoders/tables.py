"""The one reader of tables: CSV, TSV, JSONL and Parquet files, one record at a time, a bad record reported in place.

:func:`records` yields ``(row, line, record)`` for each record of a file: ``row`` is its 1-based number (blank lines
and a CSV header are not records), ``line`` the file line it starts on (None for Parquet) and ``record`` a dict of
its cells, or a :class:`Bad` that says why it cannot be read (malformed CSV, wrong number of cells, bytes that are
not UTF-8, a JSONL line that is not a JSON object). Nothing is held beyond one record (CSV, JSONL) or one Parquet
batch of 256 rows. What a bad record means is the caller's choice: the batch runner writes it to its rejects file,
training counts and skips it, the taxonomy and benchmark readers stop with its message.

Batch input (:mod:`labor_encoders.batch.inputs`), training pairs (``labor_encoders.training.data``), taxonomies
(:mod:`labor_encoders.taxonomy`), benchmark files (``labor_encoders.evaluation.data``) and the CLI's title files read
through here. The web demo's upload reader (``space/app.py``) keeps its own copy, because the Space runs on the Hub
without this package.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ads.csv"
    >>> _ = path.write_text('id,text\\n1,"Python, SQL"\\n\\n2,a,b\\n', encoding="utf-8")
    >>> columns_of(path, "csv"), count_records(path, "csv")
    (['id', 'text'], 2)
    >>> for row, line, record in records(path, "csv"):
    ...     print(row, line, record)
    1 2 {'id': '1', 'text': 'Python, SQL'}
    2 4 Bad(reason='malformed_csv', message='3 fields, the header has 2', raw='2,a,b', cells=('2', 'a', 'b'))
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LaborEncodersError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_SURROGATE = re.compile("[\udc80-\udcff]")  # undecodable bytes, as errors="surrogateescape" keeps them


class TableError(LaborEncodersError):
    """A file that cannot be read as a table at all (an unreadable Parquet file, an unknown format)."""


@dataclass(frozen=True)
class Bad:
    """A record that cannot be read: a short ``reason`` code, a ``message`` without its position, the record as
    read (``raw``) and, for a CSV/TSV record with the wrong number of cells, the ``cells`` themselves."""

    reason: str
    message: str
    raw: str
    cells: tuple[str, ...] | None = None


Records = Iterator[tuple[int, "int | None", "dict[str, Any] | Bad"]]


def file_format(path: Path, forced: str | None = None) -> str:
    """``forced`` or the format its suffix names.

    Raises:
        TableError: If the suffix is none of :data:`FORMATS`.
    """
    fmt = forced or FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise TableError(f"cannot read {path}: unknown suffix {path.suffix!r}; use {', '.join(FORMATS)} (or --format)")
    return fmt


def records(path: Path, fmt: str, skip: int = 0, columns: list[str] | None = None) -> Records:
    """The records of ``path`` after its first ``skip`` (those are yielded as empty dicts, cheaply; Parquet row
    groups wholly before ``skip`` are not read). ``columns`` limits what Parquet reads."""
    if fmt in ("csv", "tsv"):
        return _delimited(path, skip, "\t" if fmt == "tsv" else ",")
    if fmt == "jsonl":
        return _jsonl(path, skip)
    if fmt == "parquet":
        return _parquet(path, skip, columns)
    raise TableError(f"cannot read {path} as {fmt!r}: the formats are csv, tsv, jsonl and parquet")


def columns_of(path: Path, fmt: str) -> list[str]:
    """The columns of a file: its header (CSV), schema (Parquet) or the keys of its first JSON object (JSONL)."""
    if fmt == "parquet":
        return list(parquet_file(path).schema_arrow.names)
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


def count_records(path: Path, fmt: str) -> int:
    """How many records a file holds, cheaply: Parquet metadata, non-blank JSONL lines, CSV records parsed as
    Latin-1 (UTF-8's multi-byte characters never contain a quote, comma or line break, so the count is exact)."""
    if fmt == "parquet":
        return parquet_file(path).metadata.num_rows
    if fmt == "jsonl":
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    with path.open(encoding="latin-1", newline="") as handle:
        return max(sum(1 for record in csv.reader(handle, delimiter="\t" if fmt == "tsv" else ",") if record) - 1, 0)


def allow_long_cells() -> None:
    """Let the csv module read cells of any length (its default stops at 131,072 characters). The limit is global
    to the process, so only callers that judge lengths themselves (the batch runner's ``--max-chars``) lift it."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def parquet_file(path: Path):
    """A ``pyarrow.parquet.ParquetFile`` with buffered page reads (without them a whole row group, often the whole
    file, is read into memory).

    Raises:
        TableError: If the file is not Parquet.
    """
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 16)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ...
        raise TableError(f"{path} is not a readable Parquet file ({error})") from None


def _delimited(path: Path, skip: int, delimiter: str) -> Records:
    """CSV/TSV records; bytes that are not UTF-8 are kept as surrogates so that only their record is bad."""
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
                yield row, start, Bad("malformed_csv", f"malformed {kind} ({error})", "")
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
            if _SURROGATE.search(raw):
                raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                yield row, start, Bad("not_utf8", "bytes that are not UTF-8", raw)
            elif len(record) != len(header):
                message = f"{len(record)} fields, the header has {len(header)}"
                yield row, start, Bad("malformed_csv", message, raw, tuple(record))
            else:
                yield row, start, dict(zip(header, record, strict=True))


def _jsonl(path: Path, skip: int) -> Records:
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
                yield row, line, Bad("not_utf8", f"not UTF-8 ({error.reason} at byte {error.start})", raw)
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as error:
                yield row, line, Bad("bad_json", f"not JSON ({error.msg})", text.rstrip("\r\n"))
                continue
            if not isinstance(record, dict):
                yield row, line, Bad("bad_json", f"a JSON {type(record).__name__}, not an object", text.rstrip("\r\n"))
            else:
                yield row, line, record


def _parquet(path: Path, skip: int, columns: list[str] | None) -> Records:
    """Parquet rows, one batch of at most 256 rows in memory; row groups wholly before ``skip`` are not read."""
    parquet = parquet_file(path)
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


def _csv_line(record: list[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(record)
    return out.getvalue()
