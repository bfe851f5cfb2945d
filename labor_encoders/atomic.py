"""Atomic writes: a reader (or a rerun after a crash) sees a whole file or folder, or the old one, never half of it.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_file(folder / "a.txt", lambda tmp: tmp.write_text("whole"))
>>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
('whole', ['a.txt'])
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any


def write_file(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> None:
    """``write(tmp)`` beside ``path``, flushed to disk, then renamed over it; on any error the temporary file goes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        write(tmp)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):  # give the space back at once (a rerun would delete it anyway)
            tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """``data`` as indented JSON (UTF-8, final newline), atomically."""
    text = json.dumps(data, indent=2) + "\n"
    write_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_folder(output: str | os.PathLike[str], write: Callable[[Path], Any]) -> Path:
    """Let ``write(staging_dir)`` fill a folder beside ``output``, then put it in place of ``output``."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:
        write(staging)
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output
