"""SkillSpan-ESCO (Decorte et al. 2022) as the ConTeXT-match paper scores it (Table 2).

Protocol (``shared/data/README.md``): drop rows labelled ``LABEL NOT PRESENT`` or ``UNDERSPECIFIED``, keep labels in
the ranking vocabulary, group rows by stripped sentence into a gold set, drop sentences left without gold. Rank the
whole vocabulary per sentence; report MRR and RP@k = |top-k & gold| / min(k, |gold|) (RP in percent).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

IGNORED_LABELS = frozenset({"LABEL NOT PRESENT", "UNDERSPECIFIED"})


@dataclass(frozen=True)
class RankingExample:
    """One benchmark sentence and its set of gold labels."""

    sentence: str
    gold: frozenset[str]


def read_labels(path: str | Path) -> list[str]:
    """The ranking vocabulary: one label a line (the 13,896 ESCO v1.1.0 skills for SkillSpan-ESCO)."""
    labels = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    return list(dict.fromkeys(label for label in labels if label))


def load_skillspan(annotation_files: Sequence[str | Path], vocabulary: Sequence[str]) -> list[RankingExample]:
    """Sentences with their gold skill sets, in first-seen order, from one or more annotation CSV files."""
    known = set(vocabulary)
    gold: dict[str, set[str]] = {}
    for path in annotation_files:
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                sentence, label = row["sentence"].strip(), row["label"].strip()
                if label in IGNORED_LABELS or label not in known:
                    continue
                gold.setdefault(sentence, set()).add(label)
    return [RankingExample(sentence, frozenset(labels)) for sentence, labels in gold.items() if labels]


def ranking_scores(ranked: Sequence[Sequence[str]], gold: Sequence[frozenset[str]], ks=(1, 5, 10)) -> dict:
    """MRR (first relevant hit) and RP@k in percent, averaged over examples.

    >>> ranking_scores([["a", "b", "c"], ["x", "y", "z"]], [frozenset({"b"}), frozenset({"x", "z"})], ks=(1, 2))
    {'n': 2, 'mrr': 0.75, 'rp@1': 50.0, 'rp@2': 75.0}
    """
    if len(ranked) != len(gold):
        raise ValueError(f"{len(ranked)} rankings for {len(gold)} gold sets")
    totals = {"mrr": 0.0, **{f"rp@{k}": 0.0 for k in ks}}
    for labels, relevant in zip(ranked, gold, strict=True):
        rank = next((i + 1 for i, label in enumerate(labels) if label in relevant), None)
        totals["mrr"] += 1.0 / rank if rank else 0.0
        for k in ks:
            hits = len(set(labels[:k]) & relevant)
            totals[f"rp@{k}"] += 100.0 * hits / min(k, len(relevant))
    n = len(gold)
    return {"n": n, **{key: round(value / n, 4) if n else 0.0 for key, value in totals.items()}}
