"""Trained weights that ship with the code: small PEFT LoRA adapters (plus any extra tensors) and their records.

A shipped folder, ``labor_encoders/weights/<name>/``, holds safetensors files, the adapter's
``adapter_config.json`` and ``record.json``: the recipe that produced it, the sha256 of every training file,
steps, time, validation scores and the sha256 of every weight file. The setup checks those sums, merges the
adapter onto the backbone it fetched from PyPI and encodes the index; it never trains.

    >>> record = {"files": {"adapter_model.safetensors": "0" * 64}}
    >>> sorted(record["files"])
    ['adapter_model.safetensors']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .assets import sha256_file
from .atomic import write_json
from .errors import LaborEncodersError

WEIGHTS = Path(__file__).parent / "weights"
RECORD = "record.json"
MAX_BYTES = 20 * 1024 * 1024  # every shipped model's weights together stay under 20 MB


class AdapterError(LaborEncodersError):
    """A shipped or user-given adapter folder is missing, incomplete or does not match its record."""


def shipped_dir(name: str) -> Path:
    """The folder of a shipped adapter, for example ``shipped_dir("contextmatch-default")``."""
    return WEIGHTS / name


def read_record(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / RECORD
    if not path.is_file():
        raise AdapterError(f"{folder}: no {RECORD} (an adapter folder written by the training script has one)")
    return json.loads(path.read_text(encoding="utf-8"))


def verify(folder: str | Path) -> dict[str, Any]:
    """Check every file the record lists against its sha256; returns the record.

    Raises :class:`AdapterError` naming the file and the command that reproduces it when a sum differs.
    """
    folder = Path(folder)
    record = read_record(folder)
    files = record.get("files") or {}
    if not files:
        raise AdapterError(f"{folder / RECORD} lists no files: write it with labor_encoders.adapter.write_record")
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise AdapterError(f"{folder}: {name} is missing ({record.get('command', 'see its record.json')})")
        if sha256_file(path) != expected:
            raise AdapterError(
                f"{path}: sha256 differs from {RECORD}; the file is damaged or was replaced. Restore it with "
                f"`git checkout -- {path}` or rebuild it: {record.get('command', 'see its record.json')}"
            )
    return record


def write_record(folder: str | Path, record: dict[str, Any]) -> dict[str, Any]:
    """Write ``record.json`` with the sha256 of every weight and config file in ``folder`` (not the record)."""
    folder = Path(folder)
    files = {
        path.name: sha256_file(path)
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != RECORD and path.suffix in (".safetensors", ".json")
    }
    size = sum((folder / name).stat().st_size for name in files)
    record = {**record, "files": files, "bytes": size}
    write_json(folder / RECORD, record)
    return record


def record_calibration(
    folder: str | Path,
    result: dict[str, Any],
    data: list,
    labels: str | Path | None,
    command: list[str],
) -> dict[str, Any]:
    """Make the calibrated τ of ``result`` (what ``labor-encoders calibrate`` computed on a model merged from the
    adapter in ``folder``) the record's ``threshold``, with what it was measured on: the command, the sha256 of
    every local data file and the scores at τ before and after the redundancy filter. The weight files and their
    sums are untouched; the next setup rebuilds the default with the new τ."""
    import shlex

    record = read_record(folder)
    best = result["best"]
    files = [Path(d) for d in [*data, *([labels] if labels else [])]]
    record["threshold"] = float(best["tau"])
    record.pop("threshold_note", None)
    kept = [a for i, a in enumerate(command) if a != "--output" and (i == 0 or command[i - 1] != "--output")]
    record["calibration"] = {
        "command": shlex.join(kept),  # the report folder (--output) is where it was written, not how
        "data": {path.name: sha256_file(path) if path.is_file() else "hub" for path in files},
        "sentences": result.get("sentences"),
        "tau": float(best["tau"]),
        "before_filter": best["before_filter"],
        "after_filter": best["after_filter"],
    }
    return write_record(folder, record)


def merge_lora(encoder, folder: str | Path):
    """Merge the PEFT LoRA adapter in ``folder`` onto ``encoder`` (a transformers model); returns the merged model."""
    from peft import PeftModel

    folder = Path(folder)
    if not (folder / "adapter_config.json").is_file():
        raise AdapterError(f"{folder}: no adapter_config.json (a PEFT LoRA adapter folder has one)")
    return PeftModel.from_pretrained(encoder, str(folder)).merge_and_unload()
