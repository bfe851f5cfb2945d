"""What ``labor-encoders analyze`` reads: the committed Parquet parts of ``labor-encoders batch`` outputs, or any
Parquet files with the batch output's columns.

A batch output folder is read through its ``state.json``: only the parts it lists as committed, so a run that is
still going, or was stopped, never contributes a half-written part. An unfinished run is refused unless the caller
accepts a partial analysis, which then says so everywhere it is shown.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass, field
from pathlib import Path

try:
    from ..errors import LaborEncodersError
except ImportError:  # the copy beside a Space's app.py, which runs without the package
    LaborEncodersError = ValueError

try:
    from ..batch.runner import STATE_VERSION
except ImportError:  # the copy beside a Space's app.py, which only reads the Parquet files it writes itself
    STATE_VERSION = None

REQUIRED_COLUMNS = ("skill_ids", "skill_labels")
PERIODS = ("month", "quarter", "year")
ISCO_LEVELS = ("isco1", "isco2", "isco3", "isco4")
MISSING = "(missing)"  # the group of ads without a value in a grouping column


class AnalysisError(LaborEncodersError):
    """Input or options that an analysis cannot use: says what is wrong and how to fix it."""


@dataclass
class Sources:
    """The Parquet files to analyse and what is known of their completeness."""

    files: list[Path] = field(default_factory=list)
    ads_expected: int = 0  # ads the batch outputs' states list as committed
    complete: bool = True
    notes: list[str] = field(default_factory=list)


def find_sources(inputs: list[str | Path], partial: bool = False) -> Sources:
    """The committed parts of batch output folders, Parquet files and globs in ``inputs``.

    An unfinished batch run is an :class:`AnalysisError` unless ``partial``; then ``complete`` is False.
    """
    sources = Sources()
    for given in map(str, inputs):
        path = Path(given)
        if path.is_dir():
            _add_folder(sources, path, partial)
        elif path.is_file():
            if path.suffix.lower() != ".parquet":
                raise AnalysisError(f"{path} is not a Parquet file: give the output folder of labor-encoders batch")
            sources.files.append(path)
        else:
            matches = sorted(Path(p) for p in glob.glob(given, recursive=True) if p.lower().endswith(".parquet"))
            if not matches:
                raise AnalysisError(f"no such folder, Parquet file or matching files: {given}")
            sources.files.extend(matches)
    if not sources.files:
        raise AnalysisError("no ads to analyse: the inputs hold no committed Parquet part yet")
    sources.files = list(dict.fromkeys(sources.files))
    return sources


def _add_folder(sources: Sources, folder: Path, partial: bool) -> None:
    state_path = folder / "state.json"
    if not state_path.is_file():
        parts = sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith((".", "_")))
        if not parts:
            raise AnalysisError(
                f"{folder} is neither a batch output folder (no state.json) nor a folder of Parquet files"
            )
        sources.files.extend(parts)
        sources.notes.append(f"{folder}: no state.json, so every Parquet file in it was read")
        return
    try:
        state = json.loads(state_path.read_text())
    except ValueError as error:
        raise AnalysisError(f"{state_path} is unreadable ({error}); rerun the batch command to repair it") from None
    if STATE_VERSION is not None and state.get("version") != STATE_VERSION:
        raise AnalysisError(
            f"{folder} was written by another version of labor-encoders batch (state version "
            f"{state.get('version')!r}, this version reads {STATE_VERSION}); run batch again with --overwrite"
        )
    parts = [folder / "parquet" / f"{name}.parquet" for name in state["parts"]]
    lost = [str(p) for p in parts if not p.is_file()]
    if lost:
        raise AnalysisError(
            f"{folder} lists parts that are missing: {', '.join(lost[:3])}; rerun batch with --overwrite"
        )
    if not state.get("complete"):
        message = (
            f"{folder} holds an unfinished batch run ({state.get('ads', 0):,} ads committed in {len(parts)} parts): "
            "run the same batch command again to finish it"
        )
        if not partial:
            raise AnalysisError(message + ", or pass --partial to analyse the committed ads only")
        sources.complete = False
        sources.notes.append(message.split(": run")[0] + "; only its committed parts were read")
    sources.files.extend(parts)
    sources.ads_expected += int(state.get("ads", 0))
