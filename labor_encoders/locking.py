"""One writer per output folder: an OS lock taken by every command that writes one.

:func:`output_lock` takes an exclusive, non-blocking ``flock`` on ``.<name>.lock`` *beside* the folder (``runs/out``
is guarded by ``runs/.out.lock``), writes the holder's PID and command into it, and removes it on release. A
second writer fails at once with :class:`OutputLocked`, which names the folder and the holder. The kernel drops the
lock when its process ends however it ends (SIGKILL, a lost session), so a lock file left by a killed run is only a
stale note: the next run takes it over.

Beside the folder, not inside it, because the folders are also artefacts: a model folder is loaded and pushed to the
Hub as it is, is replaced wholesale by an atomic rename when rebuilt, and a batch output folder must hold only what
a batch run wrote. The parent folder must therefore be writable (it is for every command that creates the folder).
"""

from __future__ import annotations

import fcntl
import os
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .errors import LaborEncodersError


class OutputLocked(LaborEncodersError):
    """Another process is writing the same output folder: names it, its holder and what to do."""


def lock_path(folder: str | Path) -> Path:
    """The lock file that guards ``folder``: ``.<name>.lock`` beside it (symlinks and ``..`` resolved)."""
    folder = Path(folder).resolve()
    return folder.with_name(f".{folder.name}.lock")


@contextmanager
def output_lock(folder: str | Path, what: str) -> Iterator[Path]:
    """Hold the write lock on ``folder`` for the ``with`` block; ``what`` names the writer (e.g. "batch").

    Raises :class:`OutputLocked` at once when another process holds it. Locks are per process and per open file:
    do not nest two locks on the same folder in one process.
    """
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise OutputLocked(
                f"cannot create the lock file {path} for {Path(folder)} ({error.strerror or error}); "
                "the folder holding the output must be writable"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise OutputLocked(
                f"{Path(folder)} is being written by another process ({holder}); wait for it to finish or stop "
                f"it, or choose another output folder (the lock is {path})"
            ) from None
        # the previous holder may have removed the file between our open and our lock: then lock the new one
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        note = f"pid {os.getpid()}: {what}: {shlex.join(sys.argv)} (since {time.strftime('%Y-%m-%d %H:%M:%S')})\n"
        with suppress(OSError):  # the note only informs (a full disk may refuse it); the lock is what counts
            os.ftruncate(fd, 0)
            os.pwrite(fd, note.encode("utf-8", "backslashreplace"), 0)
        yield path
    finally:
        with suppress(OSError):  # while still locked, so no one locks a file that is going away
            path.unlink(missing_ok=True)
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        note = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        note = ""
    return note or "its PID is not written yet"
