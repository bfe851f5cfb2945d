"""Load the label set (taxonomy) that a ConTeXT-match model extracts: ESCO skills or a user's own file.

Supported formats: CSV, TSV, JSON Lines (``.jsonl``/``.ndjson``) and plain text (one label per line).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from .errors import LaborEncodersError
from .tables import Bad, columns_of, records

logger = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "txt"}
LABEL_COLUMNS = ("label", "preferredLabel", "skill", "name", "title")
ID_COLUMNS = ("id", "uri", "conceptUri", "URI")
ALT_LABELS_COLUMNS = ("alt_labels", "altLabels")
DESCRIPTION_COLUMNS = ("description",)
_FORMAT_NAMES = "csv, tsv, jsonl or txt"
_MAX_EXAMPLES = 5
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # what json.loads makes of "\ud800"

Record = tuple[int, dict[str, Any]]  # (line number in the file, column -> value)


class TaxonomyError(LaborEncodersError):
    """A taxonomy file is missing, malformed or lacks the requested columns."""


@dataclass(frozen=True)
class Taxonomy:
    """An ordered set of labels with their ids, alternative labels and descriptions.

    Attributes:
        labels: Preferred labels: unique, non-empty and stripped.
        ids: Id or URI per label; the label itself when the file has no id.
        alt_labels: Alternative labels per label, possibly empty.
        descriptions: Description per label, possibly ``""``.
        name: Human-readable name, e.g. the file stem or ``"ESCO v1.2 skills"``.
    """

    labels: list[str]
    ids: list[str]
    alt_labels: list[list[str]]
    descriptions: list[str]
    name: str

    def __post_init__(self) -> None:
        if len({len(self.labels), len(self.ids), len(self.alt_labels), len(self.descriptions)}) != 1:
            raise ValueError("labels, ids, alt_labels and descriptions must have the same length")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: Iterable[int]) -> Taxonomy:
        """Return a taxonomy with only the entries at ``indices``, in that order."""
        idx = list(indices)
        return Taxonomy(
            labels=[self.labels[i] for i in idx],
            ids=[self.ids[i] for i in idx],
            alt_labels=[list(self.alt_labels[i]) for i in idx],
            descriptions=[self.descriptions[i] for i in idx],
            name=self.name,
        )


def load_taxonomy(
    path: str | os.PathLike[str],
    *,
    label_column: str | None = None,
    id_column: str | None = None,
    alt_labels_column: str | None = None,
    description_column: str | None = None,
    alt_labels_separator: str | None = None,
    format: str | None = None,
    name: str | None = None,
) -> Taxonomy:
    """Load a taxonomy from a CSV, TSV, JSON Lines or text file.

    Columns left as ``None`` are detected from the header (the first of ``LABEL_COLUMNS``,
    ``ID_COLUMNS``, ... present, exact case first). Rows with an empty label are skipped and
    duplicate labels merged into their first occurrence, each with one ``UserWarning``.

    Args:
        path: The taxonomy file.
        label_column: Column with the preferred labels.
        id_column: Column with ids/URIs; without one (or in an empty cell) a label is its own id.
        alt_labels_column: Column with alternative labels: a string, or in JSON Lines also a list.
        description_column: Column with descriptions.
        alt_labels_separator: Separator of alternative labels within a string; by default a
            newline if the string contains one, else ``"|"``.
        format: ``"csv"``, ``"tsv"``, ``"jsonl"`` or ``"txt"``; by default taken from the suffix.
        name: Name of the taxonomy; by default the file stem.

    Returns:
        The taxonomy, in file order.

    Raises:
        TaxonomyError: If the file is missing, malformed, lacks a requested column or has no labels.
    """
    path = Path(path)
    if not path.is_file():
        raise TaxonomyError(f"taxonomy file not found: {path}")
    fmt = _detect_format(path, format)
    try:
        columns, records = _read(path, fmt)
    except UnicodeDecodeError as err:
        raise TaxonomyError(f"{path} is not UTF-8 text: {err}") from None
    if not records:
        header = columns and fmt in ("csv", "tsv")
        raise TaxonomyError(f"{path} has a header but no rows" if header else f"{path} is empty")
    label_col = _resolve(columns, label_column, LABEL_COLUMNS, path, "--label-column", required=True)
    taxonomy = _build(
        records,
        label_col,
        _resolve(columns, id_column, ID_COLUMNS, path, "--id-column"),
        _resolve(columns, alt_labels_column, ALT_LABELS_COLUMNS, path, "--alt-labels-column"),
        _resolve(columns, description_column, DESCRIPTION_COLUMNS, path, "--description-column"),
        alt_labels_separator,
        path,
    )
    logger.debug("loaded %d labels from %s", len(taxonomy[0]), path)
    return Taxonomy(*taxonomy, name=name or path.stem)


def load_esco_skills(path: str | os.PathLike[str] | None = None) -> Taxonomy:
    """Load the ESCO v1.2 skills, the default taxonomy.

    Args:
        path: A skills file; by default the clean CSV from ``labor_encoders.assets.ensure_esco_skills``.
    """
    if path is None:
        from labor_encoders.assets import ensure_esco_skills

        path = ensure_esco_skills()
    return load_taxonomy(path, alt_labels_separator="\n", name="ESCO v1.2 skills")


def load_esco_occupations(path: str | os.PathLike[str] | None = None) -> Taxonomy:
    """Load the ESCO v1.2 occupations, the default title index of JobBERT.

    Args:
        path: An occupations file; by default the CSV from ``labor_encoders.assets.ensure_esco_occupations``.
    """
    if path is None:
        from labor_encoders.assets import ensure_esco_occupations

        path = ensure_esco_occupations()
    return load_taxonomy(path, alt_labels_separator="\n", name="ESCO v1.2 occupations")


def write_taxonomy(taxonomy: Taxonomy, path: str | os.PathLike[str]) -> None:
    """Write a CSV (``id,label,alt_labels,description``) that ``load_taxonomy`` reads back identically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "label", "alt_labels", "description"])
        rows = zip(taxonomy.ids, taxonomy.labels, taxonomy.alt_labels, taxonomy.descriptions, strict=True)
        for id_, label, alts, description in rows:
            # A trailing newline keeps a lone alt label containing "|" from being split on reading.
            cell = "\n".join(alts) + ("\n" if len(alts) == 1 and "|" in alts[0] else "")
            writer.writerow([id_, label, cell, description])


def _detect_format(path: Path, format: str | None) -> str:
    fmt = (format or FORMATS.get(path.suffix.lower(), "")).lower()
    fmt = "jsonl" if fmt == "ndjson" else fmt
    if fmt not in FORMATS.values():
        what = f"format {format!r}" if format else f"suffix {path.suffix!r}"
        raise TaxonomyError(f"cannot read {path}: unknown {what}; use format= (--format) {_FORMAT_NAMES}")
    return fmt


def _read(path: Path, fmt: str) -> tuple[list[str], list[Record]]:
    """Return the columns (in order of appearance) and the records of a file (through the project's table reader,
    :mod:`labor_encoders.tables`, except one-label-per-line text). A CSV/TSV row with fewer cells than the header
    is padded with empty cells; any other bad record stops the load with its line number."""
    if fmt == "txt":
        with path.open(encoding="utf-8-sig", newline="") as f:
            return ["label"], [(n, {"label": line}) for n, line in enumerate(f, 1) if line.strip()]
    header = columns_of(path, fmt) if fmt != "jsonl" else []
    columns: dict[str, None] = dict.fromkeys(header)
    found = []
    for _, line, record in records(path, fmt):
        if isinstance(record, Bad):
            record = _short_row(record, header, path, fmt, line)
        elif fmt == "jsonl" and _LONE_SURROGATE.search(json.dumps(record, ensure_ascii=False)):
            raise TaxonomyError(  # the model could not save such a label
                f"{path}, line {line}: an escape such as \\ud800 that is not a character (a lone surrogate); "
                "fix or remove it"
            )
        columns.update(dict.fromkeys(record))
        found.append((line, record))
    return list(columns), found


def _short_row(bad: Bad, header: list[str], path: Path, fmt: str, line: int | None) -> dict[str, str]:
    """A CSV/TSV row with fewer cells than the header, padded; a TaxonomyError for any other bad record."""
    where = f"{path}, line {line}"
    if bad.cells is not None and len(bad.cells) < len(header):
        return dict(zip(header, [*bad.cells] + [""] * (len(header) - len(bad.cells)), strict=True))
    if bad.cells is not None:
        raise TaxonomyError(
            f"{where}: {len(bad.cells)} cells but the header has {len(header)}; wrong delimiter? Use format= "
            f"(--format) {'csv' if fmt == 'tsv' else 'tsv'} if this is not a {fmt.upper()} file, or quote cells "
            "that contain the delimiter"
        )
    if bad.reason == "bad_json" and bad.message.startswith("not JSON"):
        raise TaxonomyError(f"{where}: invalid JSON ({bad.message.removeprefix('not JSON (').rstrip(')')})")
    if bad.reason == "bad_json":
        kind = bad.message.removeprefix("a JSON ").split(",")[0]
        raise TaxonomyError(f"{where}: expected a JSON object, got a {kind}")
    raise TaxonomyError(f"{where}: {bad.message}")


def _resolve(
    columns: list[str],
    requested: str | None,
    defaults: tuple[str, ...],
    path: Path,
    flag: str,
    required: bool = False,
) -> str | None:
    """Return the column to use for one field, or raise a TaxonomyError that lists the columns."""
    available = f"available columns: {', '.join(columns) or '(none)'}"
    if requested is not None:
        if requested in columns:
            return requested
        near = [c for c in columns if c.lower() == requested.lower()] or get_close_matches(requested, columns)
        hint = f"did you mean {near[0]!r}?" if near else f"pick one of them for {flag}"
        raise TaxonomyError(f"column {requested!r} not found in {path}; {available}; {hint}")
    for default in defaults:
        if default in columns:
            return default
    lowered = {c.lower(): c for c in reversed(columns)}
    found = [lowered[d.lower()] for d in defaults if d.lower() in lowered]
    if found or not required:
        return found[0] if found else None
    delimiter = len(columns) == 1 and any(d in columns[0] for d in ",;\t")
    raise TaxonomyError(
        f"no label column in {path} (looked for {', '.join(defaults)}); {available}; choose one with"
        f" {flag}" + ("; wrong delimiter? Use --format" if delimiter else "")
    )


def _build(
    records: list[Record],
    label_col: str,
    id_col: str | None,
    alt_col: str | None,
    desc_col: str | None,
    separator: str | None,
    path: Path,
) -> tuple[list[str], list[str], list[list[str]], list[str]]:
    """Return labels, ids, alt labels and descriptions, warning about skipped and merged rows."""
    index: dict[str, int] = {}
    ids: list[str] = []
    alts: list[list[str]] = []
    descriptions: list[str] = []
    empty: list[int] = []
    duplicates: list[str] = []
    for line_no, record in records:
        label = _text(record.get(label_col))
        new_alts = _split_alts(record.get(alt_col) if alt_col else None, separator)
        if not label:
            empty.append(line_no)
        elif label in index:
            duplicates.append(f"{label!r} (line {line_no})")
            _merge(alts[index[label]], new_alts, label)
        else:
            index[label] = len(ids)
            ids.append(_text(record.get(id_col) if id_col else None) or label)
            alts.append(_merge([], new_alts, label))
            descriptions.append(_text(record.get(desc_col) if desc_col else None))
    if not index:
        raise TaxonomyError(f"{path} has no non-empty labels in column {label_col!r} ({len(empty)} rows)")
    _warn(empty, f"skipped {len(empty)} rows with an empty label in {path} (lines {_examples(empty)})")
    merged = f"merged {len(duplicates)} duplicate labels in {path} into their first occurrence"
    _warn(duplicates, f"{merged}: {_examples(duplicates)}")
    _warn_shared_ids(ids, list(index), path)
    return list(index), ids, alts, descriptions


def _warn_shared_ids(ids: list[str], labels: list[str], path: Path) -> None:
    by_id: dict[str, list[str]] = {}
    for id_, label in zip(ids, labels, strict=True):
        by_id.setdefault(id_, []).append(repr(label))
    shared = [f"{id_!r} ({', '.join(labels)})" for id_, labels in by_id.items() if len(labels) > 1]
    _warn(shared, f"{len(shared)} ids in {path} are shared by different labels: {_examples(shared)}")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _split_alts(value: Any, separator: str | None) -> list[str]:
    if value is None or isinstance(value, list):
        return [_text(v) for v in value or []]
    value = str(value)
    return value.split(separator or ("\n" if "\n" in value else "|"))


def _merge(target: list[str], new: list[str], label: str) -> list[str]:
    """Append the stripped, non-empty alt labels of ``new`` not yet in ``target`` and not ``label``."""
    for alt in map(str.strip, new):
        if alt and alt != label and alt not in target:
            target.append(alt)
    return target


def _examples(items: list[Any]) -> str:
    return ", ".join(map(str, items[:_MAX_EXAMPLES])) + (", ..." if len(items) > _MAX_EXAMPLES else "")


def _warn(items: list[Any], message: str) -> None:
    if items:
        warnings.warn(message, UserWarning, stacklevel=4)  # points at the caller of load_taxonomy
