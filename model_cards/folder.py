"""What a model folder says about itself: its kind, whether (and how) it was trained, what it was built from.

Everything a card states about a model comes from here: ``config.json`` (kind, backbone, threshold, index), and
``training_args.json`` when the project's training scripts wrote one (the flags, steps, time, final loss and
validation scores). A folder without ``training_args.json`` is described as zero-shot (ConTeXT-match) or untrained
(JobBERT) unless its config says ``"trained": true`` (a converted checkpoint, trained elsewhere).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .results import CardError

KINDS = {"contextmatch": "ConTeXT-match", "jobbert": "JobBERT V2"}
# Backbone names as the build records them (the folder name of a sentence-transformers model) -> Hub ids.
KNOWN_BASES = {
    "all-mpnet-base-v2": "sentence-transformers/all-mpnet-base-v2",
    "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "ConTeXT-Skill-Extraction-base": "TechWolf/ConTeXT-Skill-Extraction-base",
    "JobBERT-v2": "TechWolf/JobBERT-v2",
}
TRAINING_RECORD = "training_args.json"
CALIBRATION_RECORD = "calibration.json"
_DROPPED_ARGUMENTS = ("output_dir", "resume_from_checkpoint", "report_to", "logging_steps", "save_steps")


@dataclass
class ModelFolder:
    """A ConTeXT-match or JobBERT folder as a card sees it."""

    path: Path
    kind: str  # the config's model_type: contextmatch or jobbert
    config: dict[str, Any]
    training: dict[str, Any] | None  # training_args.json, with this machine's paths reduced to file names

    @property
    def name(self) -> str:
        return KINDS[self.kind]

    @property
    def status(self) -> str:
        """``trained`` (by this project's scripts), ``trained elsewhere`` (a converted checkpoint) or ``zero-shot``
        / ``untrained`` (the backbone as it is)."""
        if self.training is not None:
            return "trained"
        if self.config.get("trained"):
            return "trained elsewhere"
        return "zero-shot" if self.kind == "contextmatch" else "untrained"

    @property
    def backbone(self) -> str | None:
        """The backbone's name as the build recorded it (``all-mpnet-base-v2``), never a local path."""
        name = (self.config.get("encoder_config") or {}).get("_name_or_path") or self.config.get("_name_or_path")
        return Path(str(name)).name if name else None

    @property
    def base_model(self) -> str | None:
        """The Hub id this model starts from: the training's ``--model`` when it is a Hub id, else the backbone's."""
        start = (self.training or {}).get("arguments", {}).get("model")
        if isinstance(start, str) and looks_like_repo_id(start) and not start.startswith("/"):
            return start
        return KNOWN_BASES.get(self.backbone or "")

    @property
    def calibration(self) -> Path | None:
        """``calibration.json`` that ``labor-encoders calibrate`` left in the folder, if any."""
        path = self.path / CALIBRATION_RECORD
        return path if path.is_file() else None


def read_model_folder(folder: str | Path) -> ModelFolder:
    """Read a model folder's metadata; a folder that is not a ConTeXT-match or JobBERT model is a ``CardError``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CardError(f"{folder} is not a folder; give a model folder (labor-encoders build --output DIR)")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CardError(f"{folder} has no config.json: it is not a model folder") from None
    except ValueError as error:
        raise CardError(f"{folder}/config.json is not valid JSON ({error})") from None
    kind = config.get("model_type") if isinstance(config, dict) else None
    if kind not in KINDS:
        raise CardError(
            f"{folder} holds a {kind!r} model; only ConTeXT-match ('contextmatch') and JobBERT ('jobbert') folders "
            "of this project can be published"
        )
    return ModelFolder(folder, kind, config, read_training_record(folder))


def read_training_record(folder: Path) -> dict[str, Any] | None:
    """``training_args.json`` of a trained folder with machine-dependent values left out (paths become file names,
    the output folder and logging flags are dropped); None when the folder was not trained by this project."""
    path = folder / TRAINING_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise CardError(f"{path} is not valid JSON ({error}); retrain or remove it") from None
    if not isinstance(record, dict):
        raise CardError(f"{path} is not a training record (an object with the training's arguments)")
    arguments = {k: _portable(v) for k, v in (record.get("arguments") or {}).items() if k not in _DROPPED_ARGUMENTS}
    return {**record, "arguments": arguments}


def _portable(value: Any) -> Any:
    """A local path as its file name (``/home/me/data/pairs.csv`` -> ``pairs.csv``); anything else unchanged."""
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, str) and (os.path.isabs(value) or value.startswith(("./", "../", "~"))):
        return Path(value).name
    return value


def looks_like_repo_id(name: str) -> bool:
    """``org/name`` on the Hugging Face Hub (exactly one slash, no path-like start).

    >>> looks_like_repo_id("TechWolf/JobBERT-v2"), looks_like_repo_id("data/pairs.csv"), looks_like_repo_id("x")
    (True, True, False)
    """
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~", "/")) and "\\" not in name
