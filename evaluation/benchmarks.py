"""The paper's benchmarks as functions the CLI calls: SkillSpan-ESCO ranking (Table 2), Skill-XL extraction F1 and
redundancy, JobBERT title normalisation (Table 3), and the threshold calibration. Each takes local files or Hugging
Face dataset ids, and writes JSON plus a Markdown table (with the published numbers beside ours) when asked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

# Published test-split figures (DESIGN.md): ConTeXT-match and JobBERT V2 from Decorte et al. 2025.
PUBLISHED = {
    "house": {"mrr": 0.530, "rp@5": 51.09, "rp@10": 65.84},
    "tech": {"mrr": 0.632, "rp@5": 63.98, "rp@10": 73.99},
    "techwolf": {"mrr": 0.562, "rp@5": 57.69, "rp@10": 66.08},
    "skill-xl": {"f1": 0.4389, "redundancy": 0.1346},
    "job-normalization": {"mrr": 0.390, "r@5": 50.08, "r@10": 58.47},
}


def split_name(source: str | Path) -> str:
    """``house`` for ``house_validation_annotations.csv`` or ``TechWolf/skill-extraction-house``."""
    name = Path(str(source)).name.lower()
    for split in ("house", "tech", "techwolf"):
        if name.startswith(split + "_") or name.endswith("-" + split) or name == split:
            return split
    return Path(str(source)).stem


def with_benchmark_index(model, labels: str | Path | None):
    """``model`` with the label file's labels as its skill index (encoded once per model and file, then cached)."""
    if labels is None:
        return model
    from labor_encoders.evaluation.data import DataError
    from labor_encoders.evaluation.skillspan import read_labels
    from labor_encoders.index_cache import set_cached_skill_index

    if not Path(labels).is_file():
        raise DataError(f"labels file not found: {labels} (one skill label a line)")
    vocabulary = read_labels(labels)
    if not vocabulary:
        raise DataError(f"{labels} holds no labels (one skill label a line)")
    set_cached_skill_index(model, vocabulary, taxonomy=Path(labels).name)
    return model


def skill_extraction(model, annotations: Sequence[str | Path], scorings: Sequence[str]) -> dict:
    """MRR and RP@k per annotation source and scoring (``contextmatch`` or ``mean-pool``)."""
    from labor_encoders.evaluation.data import DataError
    from labor_encoders.evaluation.skillspan import evaluate_ranking, load_skillspan

    splits = [split_name(source) for source in annotations]
    names = [
        name if splits.count(name) == 1 else Path(str(source)).stem
        for name, source in zip(splits, annotations, strict=True)
    ]
    results = {}
    for name, source in zip(names, annotations, strict=True):
        examples = load_skillspan([source], model.skill_labels)
        if not examples:
            raise DataError(f"{source}: no sentence has a gold label among the model's (or --labels) skill labels")
        results[name] = {scoring: evaluate_ranking(model, examples, scoring) for scoring in scorings}
    return results


def skill_xl_references(source: str | Path) -> tuple[list[str], list[list[list[str]]]]:
    """Sentences and their gold clusters from Skill-XL rows (``ID, sentence, cluster, skill``)."""
    from labor_encoders.evaluation.data import read_rows
    from labor_encoders.evaluation.metrics.skill_extraction.skill_extraction import clusters_from_skill_xl_rows

    rows = read_rows(source, required=("ID", "sentence", "cluster", "skill"))
    clusters = clusters_from_skill_xl_rows(rows)
    return [sentence for _, sentence in clusters], list(clusters.values())


def skill_xl(model, source: str | Path, threshold: float | None = None) -> dict:
    """Skill-XL precision, recall, F1 and redundancy at one τ (default: the model's), before and after the filter."""
    from labor_encoders.evaluation.thresholds import score_tables, sweep

    tau = model.config.threshold if threshold is None else threshold
    sentences, references = skill_xl_references(source)
    tables = score_tables(model, sentences, taus=[tau])
    (row,) = sweep(tables, model.skill_labels, references, taus=[tau])
    return {"threshold": tau, **{stage: _rounded(row[stage]) for stage in ("before_filter", "after_filter")}}


def calibrate(model, sentences: Sequence[str], references, taus=None) -> dict:
    """Sweep τ over [0, 1] in 0.01 steps; the best τ is the one with the highest micro F1 after the redundancy
    filter (as ``extract`` predicts), ties going to the lowest τ."""
    from labor_encoders.evaluation.thresholds import TAUS, best_threshold, score_tables, sweep

    taus = TAUS if taus is None else taus
    rows = sweep(score_tables(model, sentences, taus), model.skill_labels, references, taus)
    rows = [{"tau": row["tau"], **{k: _rounded(v) for k, v in row.items() if k != "tau"}} for row in rows]
    return {"best": best_threshold(rows), "sweep": rows, "sentences": len(sentences)}


def skillspan_references(annotations: Sequence[str | Path], vocabulary: Sequence[str]):
    """Sentences of SkillSpan annotation files with their gold sets as one-label clusters (the ranking protocol's
    sentences: those with at least one gold label in the vocabulary)."""
    from labor_encoders.evaluation.skillspan import load_skillspan

    examples = load_skillspan(annotations, vocabulary)
    return [e.sentence for e in examples], [[[label] for label in sorted(e.gold)] for e in examples]


def _rounded(metrics: dict) -> dict:
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in metrics.items()}


def markdown_table(kind: str, results: dict) -> str:
    """A paper-style Markdown table of ``results`` with the published figures beside ours."""
    lines = []
    if kind == "skill-extraction":
        lines += [
            "| split | scoring | MRR | RP@1 | RP@5 | RP@10 | published (test) MRR / RP@5 / RP@10 |",
            "|---|---|---|---|---|---|---|",
        ]
        for split, by_scoring in results.items():
            paper = PUBLISHED.get(split)
            published = f"{paper['mrr']:.3f} / {paper['rp@5']:.2f} / {paper['rp@10']:.2f}" if paper else "n/a"
            for scoring, r in by_scoring.items():
                scores = f"{r['mrr']:.3f} | {r['rp@1']:.2f} | {r['rp@5']:.2f} | {r['rp@10']:.2f}"
                lines.append(f"| {split} | {scoring} | {scores} | {published} |")
    elif kind == "skill-xl":
        paper = PUBLISHED["skill-xl"]
        lines += [
            "| stage | τ | precision | recall | F1 | redundancy | published F1 / redundancy |",
            "|---|---|---|---|---|---|---|",
        ]
        for stage in ("before_filter", "after_filter"):
            r = results[stage]
            ours = f"{r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} | {100 * r['redundancy']:.2f} %"
            published = f"{paper['f1']:.4f} / {100 * paper['redundancy']:.2f} %"
            lines.append(f"| {stage.replace('_', ' ')} | {results['threshold']:.2f} | {ours} | {published} |")
    elif kind == "job-normalization":
        paper = PUBLISHED["job-normalization"]
        lines += ["| index | MRR | R@5 | R@10 | published JobBERT V2 (test) |", "|---|---|---|---|---|"]
        for index, r in results.items():
            if isinstance(r, dict):
                lines.append(
                    f"| {index} | {r['mrr']:.3f} | {r['r@5']:.2f} | {r['r@10']:.2f} | "
                    f"{paper['mrr']:.3f} / {paper['r@5']:.2f} / {paper['r@10']:.2f} |"
                )
    elif kind == "calibration":
        best = results["best"]
        lines += ["| τ | stage | precision | recall | F1 | redundancy |", "|---|---|---|---|---|---|"]
        for stage in ("before_filter", "after_filter"):
            r = best[stage]
            lines.append(
                f"| {best['tau']:.2f} | {stage.replace('_', ' ')} | {r['precision']:.4f} | {r['recall']:.4f} | "
                f"{r['f1']:.4f} | {100 * r['redundancy']:.2f} % |"
            )
    else:
        raise ValueError(f"unknown result kind {kind!r}")
    return "\n".join(lines) + "\n"


def write_results(
    kind: str, results: dict, output: str | Path, stem: str | None = None, data: Sequence[str | Path] = ()
) -> list[Path]:
    """``<stem>.json`` and ``<stem>.md`` (the table) in ``output``; returns the paths.

    ``data`` names the benchmark files or Hub dataset ids that were scored (file names only, no local folders), so a
    model card built from the JSON can say which split its numbers come from.
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    stem = stem or kind
    json_path, md_path = output / f"{stem}.json", output / f"{stem}.md"
    payload = {"kind": kind, "results": results}
    if data:
        payload["data"] = [source_name(source) for source in data]
    json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown_table(kind, results), encoding="utf-8")
    return [json_path, md_path]


def source_name(source: str | Path) -> str:
    """A benchmark file's name, or a Hub dataset id as it is (``org/name``)."""
    text = str(source)
    return text if not Path(text).exists() and text.count("/") == 1 else Path(text).name
