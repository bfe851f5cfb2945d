"""Starting points for training: a sentence-transformers backbone, or a model folder / Hub repo of this project."""

from __future__ import annotations

import json
from pathlib import Path


def project_model_type(source: str) -> str | None:
    """``contextmatch`` / ``jobbert`` for a folder of this project, None for anything else (a backbone folder).

    A name that is not a local path is taken for a Hub repository of this project (``org/name``).
    """
    from labor_encoders.hub import is_hub_id

    config = Path(source) / "config.json"
    if config.is_file():
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
        return model_type if model_type in ("contextmatch", "jobbert") else None
    if is_hub_id(source):
        return "hub"
    return None


def starting_point(source: str | None, wanted: str) -> tuple[str, bool]:
    """(the source to load, whether it is a model of this project); the default is all-mpnet-base-v2, and the
    names of the setup's backbones (``all-mpnet-base-v2``, ``all-MiniLM-L6-v2``) stand for their installed folders."""
    from labor_encoders import assets

    if source is None:
        return str(assets.ensure_mpnet()), False
    if source in (assets.MPNET, assets.MINILM) and not Path(source).exists():
        return str(assets.ensure_assets([source])[source]), False
    kind = project_model_type(source)
    if kind in (wanted, "hub"):
        return source, True
    if kind is not None:
        raise ValueError(f"{source} is a {kind} model; this script trains {wanted} models")
    if not Path(source).is_dir():
        raise FileNotFoundError(f"--model {source}: no such folder (a sentence-transformers folder or a model folder)")
    return source, False
