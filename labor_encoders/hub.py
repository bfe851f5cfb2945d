"""The one test of "is this a Hugging Face Hub repository id?", used wherever a path or a Hub id is accepted.

A model, dataset or table argument is a Hub id when it is not an existing local path, does not end like a data file
and has the form ``ORG/NAME`` that ``huggingface_hub`` accepts (letters, digits, ``-``, ``_``, ``.``; no ``--`` or
``..``; at most 96 characters).

    >>> [is_hub_id(s) for s in ("TechWolf/JobBERT-v2", "org/data.csv", "./org/name", "org/name/x", "a/b c")]
    [True, False, False, False, False]
"""

from __future__ import annotations

from pathlib import Path

DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson", ".parquet", ".zip")


def repo_id_problem(name: str) -> str | None:
    """Why ``name`` is not a valid ``ORG/NAME`` Hub id, or None when it is one."""
    if name.count("/") != 1 or not all(name.split("/")):
        return "it must be ORG/NAME (your user or organisation, then the name)"
    if name.startswith((".", "~")) or "\\" in name:
        return "it looks like a local path"
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError as error:
        return str(error)
    return None


def is_hub_id(source: str | Path) -> bool:
    """``ORG/NAME`` that is not an existing local path nor a data file's name."""
    text = str(source)
    if Path(text).exists() or Path(text).suffix.lower() in DATA_SUFFIXES:
        return False
    return repo_id_problem(text) is None
