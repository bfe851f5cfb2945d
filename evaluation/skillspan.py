"""SkillSpan-ESCO (Decorte et al. 2022) as the ConTeXT-match paper scores it (Table 2).

Protocol (``shared/data/README.md``): drop rows labelled ``LABEL NOT PRESENT`` or ``UNDERSPECIFIED``, keep labels in
the ranking vocabulary, group rows by stripped sentence into a gold set, drop sentences left without gold. Rank the
whole vocabulary per sentence; report MRR and RP@k = |top-k & gold| / min(k, |gold|) (RP in percent).
"""

from __future__ import annotations

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
    """Sentences with their gold skill sets, in first-seen order, from annotation CSVs or Hub dataset ids."""
    from labor_encoders.evaluation.data import read_rows

    known = set(vocabulary)
    gold: dict[str, set[str]] = {}
    for source in annotation_files:
        for row in read_rows(source, required=("sentence", "label")):
            sentence, label = str(row["sentence"]).strip(), str(row["label"] or "").strip()
            if label in IGNORED_LABELS or label not in known:
                continue
            gold.setdefault(sentence, set()).add(label)
    return [RankingExample(sentence, frozenset(labels)) for sentence, labels in gold.items() if labels]


def evaluate_ranking(model, examples: Sequence[RankingExample], scoring: str = "contextmatch", k=(1, 5, 10)) -> dict:
    """Rank the model's whole index for every example sentence and score the rankings (MRR, RP@k, recall@k, MAP,
    nDCG@k; RP and recall in percent), rounded to 4 decimals.

    The whole ranking counts: a first relevant label at rank 150 still adds 1/150 to the MRR.
    """
    from labor_encoders.evaluation.metrics.ranking.ranking import ranking_metrics

    ranking = model.rank([e.sentence for e in examples], scoring=scoring)
    ranked = [[model.skill_labels[i] for i in row] for row in ranking.indices.tolist()]
    scores = ranking_metrics(ranked, [sorted(e.gold) for e in examples], k=k)
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in scores.items()}


def main(argv: list[str] | None = None) -> int:
    """``python -m labor_encoders.evaluation.skillspan``: MRR and RP@k of a model folder on SkillSpan-ESCO annotation
    files."""
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
