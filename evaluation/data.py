"""Benchmark rows from a local table or a Hugging Face dataset id, with the same columns either way.

A local path is read by the project's table reader (:mod:`labor_encoders.tables`). Anything that is not an existing
path and looks like ``org/name`` is loaded with ``datasets.load_dataset`` (the user's Hub cache is used; offline, an
uncached dataset fails with a message that says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labor_encoders.errors import LaborEncodersError
from labor_encoders.hub import is_hub_id
from labor_encoders.tables import FORMATS, Bad, TableError, columns_of, records

# Known benchmark datasets on the Hub and the split (or file) that holds the validation data.
HUB_SPLITS = {
    "TechWolf/skill-extraction-house": "validation",
    "TechWolf/skill-extraction-tech": "validation",
    "TechWolf/skill-extraction-techwolf": "validation",
    "TechWolf/Skill-XL": "development",
    "TechWolf/JobBERT-evaluation-dataset": "validation",
}


class DataError(LaborEncodersError):
    """Benchmark data that cannot be found or read; the message says what to do."""


def read_rows(source: str | Path, split: str | None = None, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The rows of a benchmark file (CSV path) or Hub dataset (``org/name``, ``split`` or its known default).

    Raises:
        DataError: If the file or dataset is missing or lacks one of the ``required`` columns.
    """
    if is_hub_id(source):
        rows = _hub_rows(str(source), split or HUB_SPLITS.get(str(source), "validation"))
        where = f"{source} ({split or HUB_SPLITS.get(str(source), 'validation')} split)"
    else:
        path = Path(source)
        if not path.is_file():
            raise DataError(f"benchmark file not found: {path} (give a CSV path or a Hugging Face dataset id)")
        return _file_rows(path, required)
    missing = [c for c in required if rows and c not in rows[0]]
    if missing:
        raise DataError(f"{where} lacks the column(s) {', '.join(missing)}")
    return rows


def _file_rows(path: Path, required: tuple[str, ...]) -> list[dict[str, Any]]:
    """The rows of a local table (CSV, also for an unknown suffix; TSV, JSONL, Parquet by suffix); a bad record
    stops the read with its line number."""
    fmt = FORMATS.get(path.suffix.lower(), "csv")
    try:
        columns = columns_of(path, fmt)
        missing = [c for c in required if c not in columns]
        if missing:
            raise DataError(f"{path} lacks the column(s) {', '.join(missing)}; its columns are {', '.join(columns)}")
        rows = []
        for row, line, record in records(path, fmt):
            if isinstance(record, Bad):
                raise DataError(f"{path}, {'row' if line is None else 'line'} {line or row}: {record.message}")
            rows.append(record)
    except TableError as error:
        raise DataError(str(error)) from None
    return rows


def _hub_rows(dataset_id: str, split: str) -> list[dict[str, Any]]:
    try:
        from datasets import load_dataset
    except ImportError as error:  # pragma: no cover - the eval extra installs it
        raise DataError("loading a Hub dataset needs `datasets`: pip install 'labor-encoders[eval]'") from error
    try:
        dataset = load_dataset(dataset_id, split=split)
    except Exception as error:  # datasets raises many types: connection, missing split, missing repo
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(
            f"could not load the dataset {dataset_id!r} (split {split!r}) from the Hugging Face Hub ({first}). "
            "Check the id and your connection; offline (HF_HUB_OFFLINE=1) only cached datasets load. A local CSV "
            "path works everywhere."
        ) from error
    return [dict(row) for row in dataset]
