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


def evaluate_ranking(model, examples: Sequence[RankingExample], scoring: str = "contextmatch") -> dict:
    """Rank the model's whole index for every example sentence and score the rankings.

    The whole ranking counts: a first relevant label at rank 150 still adds 1/150 to the MRR.
    """
    ranking = model.rank([e.sentence for e in examples], scoring=scoring)
    ranked = [[model.skill_labels[i] for i in row] for row in ranking.indices.tolist()]
    return ranking_scores(ranked, [e.gold for e in examples])


def main(argv: list[str] | None = None) -> int:
    """``python -m evaluation.skillspan``: MRR and RP@k of a model folder on SkillSpan-ESCO annotation files."""
    import argparse
    import json

    from labor_encoders.build import load_contextmatch, resolve_model_dir
    from labor_encoders.index_cache import set_cached_skill_index

    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "skillspan-esco"
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--model", type=Path, help="model folder (default: the embedded default model)")
    parser.add_argument(
        "--annotations", type=Path, nargs="+", help="annotation CSVs (default: HOUSE and TECH validation)"
    )
    parser.add_argument("--labels", type=Path, default=data / "skills_en_label.txt", help="ranking vocabulary")
    parser.add_argument(
        "--scoring", choices=["contextmatch", "mean-pool"], nargs="+", default=["mean-pool", "contextmatch"]
    )
    args = parser.parse_args(argv)
    annotations = args.annotations or [data / f"{s}_validation_annotations.csv" for s in ("house", "tech")]
    model = load_contextmatch(resolve_model_dir(args.model))
    labels = read_labels(args.labels)
    set_cached_skill_index(model, labels, taxonomy=args.labels.name)
    results = {}
    for path in annotations:
        examples = load_skillspan([path], labels)
        results[path.name] = {scoring: evaluate_ranking(model, examples, scoring) for scoring in args.scoring}
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
