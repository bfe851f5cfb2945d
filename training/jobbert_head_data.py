"""Training pairs for JobBERT's heads, from real data: ESCO occupations with their skills, and vacancy (title,
skills) pairs.

* **ESCO** (official CSV downloads): every preferred and alternative label of an occupation is paired with a
  comma-joined list of that occupation's essential and optional skills (``occupationSkillRelations.csv``), as the
  JobBERT V2 paper joins an ad's skills. Each occupation gets ``variants`` skill lists that differ in which skills
  they sample and in their order, so a label never sees one fixed string. The same download gives title-to-title
  pairs (every ordered pair of two labels of one occupation: alternative -> preferred, preferred -> alternative,
  alternative -> alternative) for an auxiliary loss.
* **Vacancies** (``title``, ``skill_name`` list, best-scored skills first): split by sorted distinct title, every
  fifth title held apart for the skills-head metric (title -> skill-list retrieval), the rest for training.

Everything is seeded: the same files and arguments give the same pairs, in the same order.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labor_encoders.insights.esco import read_esco_table


@dataclass
class HeadPairs:
    """(title, skill list) pairs; ``groups[i]`` names the occupation or vacancy of pair i (same group: not a
    negative)."""

    titles: list[str] = field(default_factory=list)
    skills: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.titles)

    def extend(self, other: HeadPairs) -> HeadPairs:
        return HeadPairs(self.titles + other.titles, self.skills + other.skills, self.groups + other.groups)


@dataclass
class EscoPairs:
    """What the ESCO download gives: title->skills pairs and alternative->preferred label pairs."""

    skills: HeadPairs
    titles: HeadPairs  # ``titles`` and ``skills`` = two labels (preferred or alternative) of one occupation
    occupations: int


def _labels(cell: str) -> list[str]:
    return [label.strip() for label in str(cell or "").split("\n") if label.strip()]


def esco_pairs(
    downloads: Sequence[str | Path],
    *,
    variants: int = 2,
    skills_per_list: int = 8,
    max_alt_labels: int = 6,
    seed: int = 0,
) -> EscoPairs:
    """Pairs from ESCO downloads (zips, folders or CSV files; the first ``occupations_en.csv`` found gives the
    preferred labels, every one found adds alternative labels; ``occupationSkillRelations.csv`` gives the skills).

    Each occupation keeps at most ``max_alt_labels`` alternative labels (a seeded sample) and gets ``variants`` skill
    lists of at most ``skills_per_list`` skills: essential skills sampled first, then optional ones, then shuffled.
    """
    rng = random.Random(seed)
    occupations = read_esco_table(downloads, "occupations_en.csv", every=True)
    preferred: dict[str, str] = {}
    alternatives: dict[str, list[str]] = {}
    for table in occupations:
        for uri, label, alts in zip(table["conceptUri"], table["preferredLabel"], table["altLabels"], strict=True):
            preferred.setdefault(uri, label.strip())
            known = alternatives.setdefault(uri, [])
            known += [alt for alt in _labels(alts) if alt not in known and alt != preferred[uri]]
    skills = read_esco_table(downloads, "skills_en.csv")[0]
    skill_label = dict(zip(skills["conceptUri"], skills["preferredLabel"].str.strip(), strict=True))
    relations = read_esco_table(downloads, "occupationSkillRelations.csv")[0]
    needs: dict[str, dict[str, list[str]]] = {}
    for occupation, kind, skill in zip(
        relations["occupationUri"], relations["relationType"], relations["skillUri"], strict=True
    ):
        if skill in skill_label:
            needs.setdefault(occupation, {"essential": [], "optional": []})[kind].append(skill_label[skill])
    pairs, aux = HeadPairs(), HeadPairs()
    kept = 0
    for uri in sorted(preferred):
        if uri not in needs:
            continue
        kept += 1
        lists = [_sample_skills(needs[uri], skills_per_list, rng) for _ in range(variants)]
        alts = sorted(alternatives[uri])
        alts = sorted(rng.sample(alts, max_alt_labels)) if len(alts) > max_alt_labels else alts
        for n, title in enumerate([preferred[uri], *alts]):
            pairs.titles.append(title)
            pairs.skills.append(lists[n % variants])
            pairs.groups.append(uri)
        for first, second in itertools.permutations([preferred[uri], *alts], 2):
            aux.titles.append(first)
            aux.skills.append(second)
            aux.groups.append(uri)
    return EscoPairs(skills=pairs, titles=aux, occupations=kept)


def _sample_skills(need: dict[str, list[str]], size: int, rng: random.Random) -> str:
    essential, optional = sorted(set(need["essential"])), sorted(set(need["optional"]) - set(need["essential"]))
    chosen = rng.sample(essential, min(size, len(essential)))
    chosen += rng.sample(optional, min(size - len(chosen), len(optional)))
    rng.shuffle(chosen)
    return ", ".join(chosen)


def vacancy_split(path: str | Path, held_apart_every: int = 5) -> tuple[list[int], list[int]]:
    """Row numbers of the training and held-apart parts: distinct titles sorted, every ``held_apart_every``-th held
    apart (all rows of a title go to the same part)."""
    import pandas as pd

    titles = pd.read_parquet(path, columns=["title"])["title"].astype(str).str.strip().tolist()
    held = {title for n, title in enumerate(sorted(set(titles))) if n % held_apart_every == held_apart_every - 1}
    train = [i for i, title in enumerate(titles) if title not in held]
    return train, [i for i, title in enumerate(titles) if title in held]


def vacancy_pairs(
    path: str | Path, rows: Iterable[int], *, skills_per_list: int = 8, sample: bool = False, seed: int = 0
) -> HeadPairs:
    """(title, skills) pairs of the given rows of a vacancy Parquet file (``title``, ``skill_name``).

    The skill list is the ``skills_per_list`` best-scored skills in the file's order, or, with ``sample``, a seeded
    sample of that many from the best ``3 * skills_per_list``, shuffled.
    """
    import pandas as pd

    table = pd.read_parquet(path, columns=["title", "skill_name"])
    rng = random.Random(seed)
    pairs = HeadPairs()
    for row in rows:
        title = str(table["title"].iat[row]).strip()
        skills = [str(s).strip() for s in table["skill_name"].iat[row] if str(s).strip()]
        if not title or not skills:
            continue
        if sample:
            pool = skills[: 3 * skills_per_list]
            skills = rng.sample(pool, min(skills_per_list, len(pool)))
        pairs.titles.append(title)
        pairs.skills.append(", ".join(skills[:skills_per_list]))
        pairs.groups.append(f"vacancy:{row}")
    return pairs


def file_sha256(paths: Iterable[str | Path]) -> dict[str, str]:
    """``{file name: sha256}`` of every training or validation file (the record names what a model was made from)."""
    from labor_encoders.assets import sha256_file

    return {Path(path).name: sha256_file(path) for path in paths}
