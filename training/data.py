"""Training pairs for ConTeXT-match and JobBERT V2: readers, builders and the batch collator.

- :func:`read_pairs` reads (first, second) text pairs from a CSV, TSV, JSONL, JSON or Parquet file, or a Hugging Face
  dataset id, e.g. ``read_pairs("TechWolf/Synthetic-ESCO-skill-sentences", "sentence", "skill")``. Bad rows are
  counted and described, never fatal.
- :func:`esco_skill_pairs` builds the offline ConTeXT-match training set from the ESCO taxonomy alone.
- :func:`jobbert_pairs_from_ads` turns (job title, ad text) pairs into JobBERT V2's (title, "skill a, skill b")
  pairs with a ConTeXT-match model's ``extract``.
- :class:`PairDataset` and :class:`PairCollator` feed the pairs to a loss: two tokenised sides plus the second texts
  as keys, so that duplicates in a batch are not treated as negatives of each other.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from labor_encoders.evaluation.data import DataError
from labor_encoders.hub import is_hub_id
from labor_encoders.modeling.modeling_contextmatch import split_sentences
from labor_encoders.tables import Bad, TableError, columns_of, records
from labor_encoders.taxonomy import Taxonomy

Pair = tuple[str, str]
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet"}
MAX_PROBLEMS = 10
_NO_COLUMN = object()  # a record that lacks a column altogether (JSON, JSONL), unlike an empty cell


@dataclass
class PairSet:
    """Pairs read from one source, with the rows that were skipped.

    Attributes:
        pairs: (first, second) texts, whitespace-stripped, in source order.
        bad_rows: How many rows were skipped.
        problems: Why, for the first :data:`MAX_PROBLEMS` of them (``"line 7: empty 'skill'"``); CSV, TSV and JSONL
            rows are named by their line in the file, JSON, Parquet and Hub rows by their 1-based row number.
        source: The file or dataset id (with its split).
    """

    pairs: list[Pair]
    bad_rows: int = 0
    problems: list[str] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.pairs)

    def summary(self) -> str:
        """One line, plus one line per recorded problem.

        >>> print(PairSet([("a", "b")], 2, ["line 3: empty 'skill'"], "x.csv").summary())
        1 pair from x.csv; 2 bad rows skipped
          line 3: empty 'skill'
          (1 more)
        """
        text = f"{len(self.pairs):,} pair{'s' * (len(self.pairs) != 1)} from {self.source}"
        if not self.bad_rows:
            return text
        lines = [f"{text}; {self.bad_rows:,} bad row{'s' * (self.bad_rows != 1)} skipped"]
        lines += [f"  {problem}" for problem in self.problems]
        if self.bad_rows > len(self.problems):
            lines.append(f"  ({self.bad_rows - len(self.problems):,} more)")
        return "\n".join(lines)


def read_pairs(
    source: str | os.PathLike[str],
    first: str,
    second: str,
    split: str = "train",
    limit: int | None = None,
    second_is_list: bool = False,
) -> PairSet:
    """Read (``first``, ``second``) column pairs from a local file or a Hugging Face dataset.

    Args:
        source: A ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``, ``.json`` (a list of objects) or ``.parquet`` file, or a
            dataset id ``org/name`` loaded with ``datasets.load_dataset`` (offline, only from the local Hub cache).
        first: Column of the first text (a sentence, a job title).
        second: Column of the second text (a skill, an ad text).
        split: Split of a Hub dataset.
        limit: Stop after this many good pairs.
        second_is_list: The second column holds several texts (a list in JSON/Parquet, a JSON or Python list
            literal such as ``['a', 'b']`` in CSV/TSV, as SkillSkape ships its skills): one pair per item.

    Returns:
        The pairs with whitespace stripped. Rows with a missing or empty cell, JSONL lines that are not a JSON
        object and CSV/TSV lines with the wrong number of cells are skipped and counted.

    Raises:
        DataError: If the source cannot be found or read, or lacks one of the columns (the message lists its columns).
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if is_hub_id(source):
        name, rows = f"{source} ({split} split)", _hub_records(str(source), split, (first, second))
    else:
        path = Path(source)
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise DataError(f"cannot read {path}: unknown suffix {path.suffix!r}; use {', '.join(FORMATS)}")
        if not path.is_file():
            raise DataError(f"file not found: {path} (give a {', '.join(FORMATS)} file or a Hugging Face dataset id)")
        name, rows = str(path), _READERS[fmt](path, (first, second))
    result = PairSet([], source=name)
    seen_columns: dict[str, None] = {}
    try:
        for where, record in rows:
            if limit is not None and len(result.pairs) >= limit:
                break
            if isinstance(record, str):  # the reader's own reason: not JSON, wrong number of cells, ...
                _bad(result, f"{where}: {record}")
                continue
            seen_columns.update(dict.fromkeys(record))
            cells = {column: _cell(record, column) for column in (first, second)}
            if second_is_list:
                items, reason = _list_cell(record, second)
                cells[second] = (items, reason)
            reasons = [f"{reason} {column!r}" for column, (_, reason) in cells.items() if reason]
            if reasons:
                _bad(result, f"{where}: {' and '.join(reasons)}")
            elif second_is_list:
                result.pairs.extend((cells[first][0], item) for item in cells[second][0])
            else:
                result.pairs.append((cells[first][0], cells[second][0]))
    except UnicodeDecodeError as error:
        raise DataError(f"{name} is not UTF-8 text ({error})") from None
    if seen_columns:  # JSON and JSONL records have no header: a column is missing if no record has it
        _check_columns(name, list(seen_columns), (first, second), bool(result.pairs))
    return result


def _list_cell(record: dict[str, Any], column: str) -> tuple[list[str], str]:
    """``(stripped non-empty items, "")`` of a list cell or ``([], reason)``, like :func:`_cell` for one text.

    >>> _list_cell({"s": "['use python', ' sql ', '']"}, "s"), _list_cell({"s": ["b", None]}, "s")
    ((['use python', 'sql'], ''), (['b'], ''))
    >>> _list_cell({"s": "[]"}, "s"), _list_cell({"s": "python"}, "s"), _list_cell({}, "s")
    (([], 'empty'), ([], 'no list in'), ([], 'no'))
    """
    value = record.get(column, _NO_COLUMN)
    if value is _NO_COLUMN:
        return [], "no"
    if value is None:
        return [], "missing"
    if isinstance(value, str) and value.strip().startswith("["):
        import ast

        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            return [], "unreadable list literal in"
    if not isinstance(value, list | tuple):
        return [], "no list in"
    items = [item.strip() for item in value if isinstance(item, str) and item.strip()]
    return (items, "") if items else ([], "empty")


def _bad(result: PairSet, problem: str) -> None:
    result.bad_rows += 1
    if len(result.problems) < MAX_PROBLEMS:
        result.problems.append(problem)


def _cell(record: dict[str, Any], column: str) -> tuple[str, str]:
    """``(stripped text, "")`` or ``("", reason)``."""
    value = record.get(column, _NO_COLUMN)
    if value is _NO_COLUMN:
        return "", "no"
    if value is None:
        return "", "missing"
    if not isinstance(value, str):
        return "", f"{type(value).__name__} (not text) in"
    return (value.strip(), "") if value.strip() else ("", "empty")


def _check_columns(name: str, columns: list[str], required: tuple[str, str], found_pairs: bool) -> None:
    missing = [column for column in required if column not in columns]
    if missing and not found_pairs:
        have = ", ".join(map(repr, columns)) if columns else "(none: no readable rows)"
        raise DataError(f"{name} has no column {' or '.join(map(repr, missing))}; its columns are {have}")


Records = Iterator[tuple[str, dict[str, Any] | str]]  # (where, record or the reason it is bad)


def _delimited(path: Path, columns: tuple[str, str], fmt: str) -> Records:
    header = columns_of(path, fmt)
    if not header:
        raise DataError(f"{path} is empty (expected a header row with {columns[0]!r} and {columns[1]!r})")
    _check_columns(str(path), header, columns, False)
    for _, line, record in records(path, fmt):
        if isinstance(record, Bad) and record.cells is not None:
            yield f"line {line}", f"{len(record.cells)} cells but the header has {len(header)}"
        else:
            yield f"line {line}", record.message if isinstance(record, Bad) else record


def _jsonl(path: Path, columns: tuple[str, str]) -> Records:
    for _, line, record in records(path, "jsonl"):
        yield f"line {line}", record.message if isinstance(record, Bad) else record


def _json(path: Path, columns: tuple[str, str]) -> Records:
    try:
        records = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise DataError(
            f"{path} is not valid JSON ({error}); a file with one object per line should be .jsonl"
        ) from None
    if not isinstance(records, list):
        raise DataError(f"{path} holds a JSON {type(records).__name__}; expected a list of objects")
    for number, record in enumerate(records, 1):
        yield f"row {number}", record if isinstance(record, dict) else f"a JSON {type(record).__name__}, not an object"


def _parquet(path: Path, columns: tuple[str, str]) -> Records:
    try:
        _check_columns(str(path), columns_of(path, "parquet"), columns, False)
        for row, _, record in records(path, "parquet", columns=list(dict.fromkeys(columns))):
            yield f"row {row}", record
    except TableError as error:
        raise DataError(str(error)) from None


_READERS: dict[str, Callable[[Path, tuple[str, str]], Records]] = {
    "csv": lambda path, columns: _delimited(path, columns, "csv"),
    "tsv": lambda path, columns: _delimited(path, columns, "tsv"),
    "jsonl": _jsonl,
    "json": _json,
    "parquet": _parquet,
}


def _hub_records(dataset_id: str, split: str, columns: tuple[str, str]) -> Records:
    try:
        import datasets
    except ImportError as error:  # pragma: no cover - the train extra installs it
        raise DataError("loading a Hub dataset needs `datasets`: pip install 'labor-encoders[train]'") from error
    local = f"or use a local file instead: read_pairs('pairs.csv', {columns[0]!r}, {columns[1]!r}) (CSV, TSV, JSONL, "
    local += "JSON or Parquet)"
    try:
        dataset = datasets.load_dataset(dataset_id, split=split)
    except Exception as error:  # datasets raises many types: connection, missing split, missing repo
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        if datasets.config.HF_HUB_OFFLINE or "OfflineModeIsEnabled" in first:
            raise DataError(
                f"the dataset {dataset_id!r} (split {split!r}) is not in the local Hugging Face Hub cache and the Hub "
                f"is offline (HF_HUB_OFFLINE=1). Load it once online to cache it, {local}."
            ) from error
        raise DataError(f"could not load the dataset {dataset_id!r} (split {split!r}) ({first}); {local}.") from error
    _check_columns(f"{dataset_id} ({split} split)", list(dataset.column_names), columns, False)
    for number, record in enumerate(dataset.select_columns(list(dict.fromkeys(columns))), 1):
        yield f"row {number}", record


def esco_skill_pairs(taxonomy: Taxonomy, max_description_sentences: int = 2, seed: int = 0) -> list[Pair]:
    """The offline ConTeXT-match training set: (text, preferred label) pairs from the taxonomy alone.

    What goes in, per skill (label ``L``):

    - ``(alt, L)`` for each alternative label ``alt`` (stripped, non-empty);
    - ``(D, L)`` where ``D`` is the description's first ``max_description_sentences`` sentences (as
      :func:`labor_encoders.modeling.modeling_contextmatch.split_sentences` splits them), joined by one space; none
      for ``0`` or an
      empty description.

    A pair whose text equals its own label ignoring case is dropped, and so is any exact repeat of an earlier pair.
    A text that is an alternative label of two skills gives two pairs (ESCO has such shared labels). The pairs are
    then shuffled with ``random.Random(seed)``: the same taxonomy and seed always give the same list.

    >>> toy = Taxonomy(["use python"], ["s1"], [["Python", "use Python"]], ["Write code. In Python. Often."], "toy")
    >>> sorted(esco_skill_pairs(toy))
    [('Python', 'use python'), ('Write code. In Python.', 'use python')]
    """
    if max_description_sentences < 0:
        raise ValueError(f"max_description_sentences must be >= 0, got {max_description_sentences}")
    pairs: dict[Pair, None] = {}
    for label, alternatives, description in zip(
        taxonomy.labels, taxonomy.alt_labels, taxonomy.descriptions, strict=True
    ):
        label = label.strip()
        texts = [alternative.strip() for alternative in alternatives]
        description = description or ""
        if max_description_sentences:
            spans = split_sentences(description)[:max_description_sentences]
            texts.append(" ".join(description[start:end] for start, end in spans))
        for text in texts:
            if text and text.casefold() != label.casefold():
                pairs.setdefault((text, label))
    result = list(pairs)
    random.Random(seed).shuffle(result)
    return result


Extract = Callable[[list[str]], list[dict[str, Any]]]


def jobbert_pairs_from_ads(
    ads: Iterable[tuple[str, str]], extract: Extract, min_skills: int = 1, batch_size: int = 32
) -> tuple[list[Pair], dict[str, int]]:
    """JobBERT V2's training pairs: (job title, the ad's skills as ``"skill a, skill b, ..."``).

    Each ad's text goes through ``extract`` (a ConTeXT-match model's ``extract``, e.g.
    ``functools.partial(model.extract, threshold=0.5)``, or any callable with its output: one
    ``{"skills": [{"label", "score", ...}]}`` per text). The skills' labels, best score first and each once, are
    joined with ``", "``. Ads with an empty title or text, or with fewer than ``min_skills`` skills (at least one is
    always needed), are skipped.
    A file of ads: ``jobbert_pairs_from_ads(read_pairs("ads.csv", "title", "description").pairs, model.extract)``.

    Returns:
        The pairs in ad order, and counts ``{"ads", "pairs", "empty_title", "empty_text", "too_few_skills"}``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    stats = dict.fromkeys(("ads", "pairs", "empty_title", "empty_text", "too_few_skills"), 0)
    pairs: list[Pair] = []
    batch: list[Pair] = []

    def flush() -> None:
        results = extract([text for _, text in batch])
        if len(results) != len(batch):
            raise ValueError(f"extract returned {len(results)} results for {len(batch)} texts")
        for (title, _), result in zip(batch, results, strict=True):
            ranked = sorted(result["skills"], key=lambda skill: -float(skill["score"]))  # stable for ties
            labels = list(dict.fromkeys(str(skill["label"]).strip() for skill in ranked))
            if len(labels) < max(min_skills, 1):
                stats["too_few_skills"] += 1
            else:
                pairs.append((title, ", ".join(labels)))
        batch.clear()

    for title, text in ads:
        stats["ads"] += 1
        title, text = (title or "").strip(), (text or "").strip()
        if not title:
            stats["empty_title"] += 1
        elif not text:
            stats["empty_text"] += 1
        else:
            batch.append((title, text))
            if len(batch) >= batch_size:
                flush()
    if batch:
        flush()
    stats["pairs"] = len(pairs)
    return pairs, stats


class PairDataset(Dataset):
    """A map-style dataset over (first, second) text pairs.

    >>> PairDataset([("python developer", "python, sql")])[0]
    ('python developer', 'python, sql')
    """

    def __init__(self, pairs: Sequence[Pair]) -> None:
        self.pairs = [(str(first), str(second)) for first, second in pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Pair:
        return self.pairs[index]


class PairCollator:
    """Batch pairs into ``(first_features, second_features, keys)`` for an in-batch-negatives loss.

    The features are the tokenizer's padded, truncated ``"pt"`` tensors for each side; ``keys`` are the second texts,
    so a loss can tell that two rows share their positive (the same skill twice) and not treat it as a negative.
    """

    def __init__(self, tokenizer: Any, max_length_first: int = 128, max_length_second: int = 128) -> None:
        self.tokenizer = tokenizer
        self.max_length_first = max_length_first
        self.max_length_second = max_length_second

    def __call__(self, batch: Sequence[Pair]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        firsts, seconds = [first for first, _ in batch], [second for _, second in batch]
        return self._tokenize(firsts, self.max_length_first), self._tokenize(seconds, self.max_length_second), seconds

    def _tokenize(self, texts: list[str], max_length: int) -> dict[str, Any]:
        return dict(self.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"))
