"""What every command shares: the error for bad command-line input, the flags several commands take
(``--model``, ``--threshold``, ``--json``, the taxonomy columns) and the readers of texts and titles."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..errors import LaborEncodersError
from ..tables import Bad, columns_of, records

logger = logging.getLogger("labor_encoders")

SAMPLE_AD = Path(__file__).resolve().parents[1] / "samples" / "job_ad.txt"


class UsageError(LaborEncodersError):
    """Bad command-line input: printed as ``error: ...`` with exit status 2."""


def add_model_flag(parser: argparse.ArgumentParser, help: str, hub_id: bool = False) -> None:
    """``--model MODEL``: a model folder, or with ``hub_id`` also a Hub repo id kept as text; every command's default
    is the embedded default model of its kind."""
    parser.add_argument("--model", type=str if hub_id else Path, metavar="MODEL", help=help)


def add_threshold_flag(parser: argparse.ArgumentParser, help: str) -> None:
    """``--threshold TAU``: the decision threshold τ in [0, 1]; unset means the model's own calibrated τ."""
    parser.add_argument("--threshold", type=float, metavar="TAU", help=help)


def add_json_flag(parser: argparse.ArgumentParser, help: str) -> None:
    """``--json``: machine-readable output on standard output (logs stay on standard error)."""
    parser.add_argument("--json", action="store_true", help=help)


def add_taxonomy_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--label-column", help=f"column with the {what} label")
    parser.add_argument("--id-column", help=f"column with the {what} id or URI")
    parser.add_argument("--alt-labels-column", help="column with alternative labels")
    parser.add_argument("--description-column", help="column with the description")
    parser.add_argument("--format", choices=["csv", "tsv", "jsonl", "txt"], help="file format (default: suffix)")


def load_taxonomy_from_args(args: argparse.Namespace, path: Path | None, flag: str, default):
    """The taxonomy a command's file and column flags describe, or ``default()`` when no file is given."""
    from ..taxonomy import load_taxonomy

    columns = [args.label_column, args.id_column, args.alt_labels_column, args.description_column, args.format]
    if path is None:
        if any(columns):
            raise UsageError(f"column and format flags describe a {flag} file; give one")
        return default()
    return load_taxonomy(
        path,
        label_column=args.label_column,
        id_column=args.id_column,
        alt_labels_column=args.alt_labels_column,
        description_column=args.description_column,
        format=args.format,
    )


def read_texts(args: argparse.Namespace) -> list[str]:
    texts = []
    for text in args.texts:
        texts.append(sys.stdin.read() if text == "-" else text)
    for path in args.file:
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"no such file: {path}") from None
        except UnicodeDecodeError as error:
            raise UsageError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not texts:
        raise UsageError("give job ad texts, --file F, or '-' to read standard input")
    return texts


def read_titles(args: argparse.Namespace) -> list[str]:
    """Titles from the arguments, standard input ('-', one per line) and --file, in that order; none is dropped."""
    titles: list[str] = []
    for title in args.titles:
        titles.extend(sys.stdin.read().splitlines() if title == "-" else [title])
    if args.file is not None:
        titles.extend(titles_from_file(args.file, args.column))
    elif args.column:
        raise UsageError("--column names a column of --file; give one")
    if not titles:
        raise UsageError("give job titles, --file F, or '-' to read titles from standard input")
    return titles


def titles_from_file(path: Path, column: str | None) -> list[str]:
    """The titles of a text file (one per line) or of one column of a CSV/TSV file (read by
    :mod:`labor_encoders.tables`); a row without that cell gives an empty title and a warning."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    if path.suffix.lower() not in (".csv", ".tsv"):
        if column:
            raise UsageError(f"--column needs a .csv or .tsv file, {path.name} is read as one title per line")
        return text.splitlines()
    fmt = path.suffix.lower()[1:]
    header = columns_of(path, fmt)
    if not header:
        raise UsageError(f"{path} is empty")
    candidates = [column] if column else ["title", "vacancyTitle", "job_title", "label"]
    name = next((c for c in candidates if c in header), None)
    if name is None:
        if column:
            raise UsageError(f"{path} has no column {column!r}; its columns are {', '.join(header)}")
        if len(header) != 1:
            raise UsageError(f"{path}: say which column holds the titles with --column ({', '.join(header)})")
        name = header[0]
    position = header.index(name)
    titles = []
    for _, line, record in records(path, fmt):
        if isinstance(record, Bad) and record.cells is None:
            raise UsageError(f"{path}, line {line}: {record.message}")
        cells = record.cells if isinstance(record, Bad) else list(record.values())
        if position >= len(cells):
            print(f"warning: {path}:{line} has no {name!r} cell; its title is empty", file=sys.stderr)
        titles.append(cells[position] if position < len(cells) else "")
    return titles
