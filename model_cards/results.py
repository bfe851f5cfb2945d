"""Evaluation results for a model card, read from the JSON files the project's runners write.

``labor-encoders evaluate BENCHMARK --output DIR`` writes ``DIR/<benchmark>.json`` and ``labor-encoders calibrate``
writes ``calibration.json``, both as ``{"kind": ..., "results": ...}``. Each file becomes one or more
:class:`Evaluation` entries: a benchmark dataset, the split it was measured on (when the file or the caller says),
and every metric in it. Nothing here computes a number: a card states only what a runner measured.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labor_encoders.errors import LaborEncodersError
from labor_encoders.evaluation.data import HUB_SPLITS

# Which model kind (config ``model_type``) each kind of results file belongs to.
RESULT_MODEL = {
    "skill-extraction": "contextmatch",
    "skill-xl": "contextmatch",
    "calibration": "contextmatch",
    "job-normalization": "jobbert",
}
# Benchmark -> (Hugging Face dataset id, readable name).
DATASETS = {
    "house": ("TechWolf/skill-extraction-house", "SkillSpan-ESCO HOUSE"),
    "tech": ("TechWolf/skill-extraction-tech", "SkillSpan-ESCO TECH"),
    "techwolf": ("TechWolf/skill-extraction-techwolf", "SkillSpan-ESCO TECHWOLF"),
    "skill-xl": ("TechWolf/Skill-XL", "Skill-XL"),
    "job-normalization": ("TechWolf/JobBERT-evaluation-dataset", "JobBERT job titles"),
}
STAGES = {"before_filter": "before the redundancy filter", "after_filter": "after the redundancy filter"}
SPLITS = ("validation", "development", "test", "train")
SCORING_NAMES = {"contextmatch": "ConTeXT-match (token attention)", "mean-pool": "mean pooling (bi-encoder baseline)"}
_RANKING_KEY = re.compile(r"^(mrr|map|(rp|recall|ndcg|r)@\d+)$")
_EXTRACTION_KEYS = (
    "precision",
    "recall",
    "f1",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "redundancy",
    "redundancy_among_correct",
)


class CardError(LaborEncodersError):
    """A model folder or results file that cannot go into a card, with the reason and the fix."""


@dataclass
class Metric:
    """One reported number: ``key`` as the runner wrote it (``mrr``, ``rp@5``, ``f1``), ``config`` the setting."""

    key: str
    value: float
    config: str | None = None
    args: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """A readable name with the unit (``RP@5 (%)``, ``F1``)."""
        base = self.key.replace("macro_", "macro ").replace("_among_correct", " among correct")
        base = {"mrr": "MRR", "map": "MAP", "f1": "F1", "macro f1": "macro F1"}.get(base, base)
        base = re.sub(r"^(rp|r|ndcg)@", lambda m: {"rp": "RP@", "r": "R@", "ndcg": "nDCG@"}[m.group(1)], base)
        percent = re.match(r"^(rp|recall|r)@", self.key) is not None
        return f"{base} (%)" if percent else base


@dataclass
class Evaluation:
    """The metrics of one benchmark dataset (and split) from one results file."""

    benchmark: str  # skill-extraction, skill-xl, job-normalization, calibration
    task_name: str
    dataset_id: str
    dataset_name: str
    split: str | None
    source: str  # the results file's name
    sentences: int | None = None
    metrics: list[Metric] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # metric keys shown in the card's table
    note: str = ""

    @property
    def task_type(self) -> str:
        return "sentence-similarity" if self.benchmark == "job-normalization" else "text-classification"

    def table(self) -> dict[str, Any]:
        """Header and rows of this evaluation's Markdown table: one row per setting, one column per metric."""
        by_config: dict[str | None, dict[str, Metric]] = {}
        for metric in self.metrics:
            by_config.setdefault(metric.config, {})[metric.key] = metric
        header = ["setting", *[self._column_name(key) for key in self.columns]]
        rows = []
        for config, metrics in by_config.items():
            cells = [_format(metrics[key]) if key in metrics else "" for key in self.columns]
            rows.append([config or "", *cells])
        return {"header": header, "rows": rows}

    def _column_name(self, key: str) -> str:
        return next((m.name for m in self.metrics if m.key == key), key)


def _format(metric: Metric) -> str:
    if metric.key.startswith("redundancy"):
        return f"{100 * metric.value:.2f} %"
    if metric.name.endswith("(%)"):
        return f"{metric.value:.2f}"
    return f"{metric.value:.3f}" if metric.key == "mrr" else f"{metric.value:.4f}"


def load_results(path: str | Path, model_type: str, split: str | None = None) -> list[Evaluation]:
    """The evaluations in one results JSON, checked against the model kind (``contextmatch`` or ``jobbert``).

    ``split`` names the split the numbers were measured on when the file does not record it (the runners record the
    data of a calibration, and a Hub dataset id implies its validation split; file names such as
    ``house_validation_annotations.csv`` say it too).
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CardError(f"results file not found: {path}") from None
    except (OSError, ValueError) as error:
        raise CardError(f"cannot read {path} as JSON ({error})") from None
    if not isinstance(payload, dict) or "kind" not in payload or not isinstance(payload.get("results"), dict):
        raise CardError(
            f"{path} is not a results file of this project: write one with `labor-encoders evaluate BENCHMARK "
            '--output DIR` (or `labor-encoders calibrate`), which stores {"kind": ..., "results": ...}'
        )
    kind, results = payload["kind"], payload["results"]
    if kind not in RESULT_MODEL:
        raise CardError(f"{path}: unknown results kind {kind!r} (known: {', '.join(RESULT_MODEL)})")
    if RESULT_MODEL[kind] != model_type:
        raise CardError(
            f"{path} holds {kind} results, which measure a {RESULT_MODEL[kind]} model; this is a {model_type} model"
        )
    sources = payload.get("data") or results.get("data") or []
    try:
        reader = {"skill-extraction": _skill_extraction, "skill-xl": _skill_xl}.get(kind)
        reader = reader or {"job-normalization": _job_normalization, "calibration": _calibration}[kind]
        return reader(results, path.name, split, [str(s) for s in sources])
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise CardError(f"{path}: malformed {kind} results ({type(error).__name__}: {error})") from None


def split_of(names: list[str], given: str | None) -> str | None:
    """The split named by the caller, else the one every name mentions (``..._validation_...``), else None.

    >>> split_of(["house_validation_annotations.csv", "tech_validation_annotations.csv"], None)
    'validation'
    >>> split_of(["house"], None) is None
    True
    """
    if given:
        return given
    found = {next((s for s in SPLITS if re.search(rf"(^|[^a-z]){s}([^a-z]|$)", n.lower())), None) for n in names}
    found |= {HUB_SPLITS[n] for n in names if n in HUB_SPLITS}  # a Hub id is read at its validation split
    found.discard(None)
    return found.pop() if len(found) == 1 and names else None


def _benchmark_of(name: str) -> str:
    low = Path(name).name.lower()
    for split in ("techwolf", "house", "tech"):
        if low.startswith(split + "_") or low.endswith("-" + split) or low == split:
            return split
    return low


def _metrics(scores: dict, keys, config: str | None, args: dict | None = None) -> list[Metric]:
    wanted = [k for k in scores if _RANKING_KEY.match(k)] if keys is None else [k for k in keys if k in scores]
    return [Metric(k, float(scores[k]), config, args) for k in wanted if isinstance(scores[k], int | float)]


def _skill_extraction(results: dict, source: str, split: str | None, sources: list[str]) -> list[Evaluation]:
    evaluations = []
    for name, by_scoring in results.items():
        benchmark = _benchmark_of(name)
        dataset_id, dataset_name = DATASETS.get(benchmark, (name, name))
        evaluation = Evaluation(
            "skill-extraction",
            "Skill extraction (ranking the ESCO skills)",
            dataset_id,
            dataset_name,
            split_of([name, *sources], split),
            source,
            columns=["mrr", "rp@1", "rp@5", "rp@10"],
        )
        for scoring, scores in by_scoring.items():
            evaluation.sentences = scores.get("n", evaluation.sentences)
            evaluation.metrics += _metrics(scores, None, SCORING_NAMES.get(scoring, scoring))
        evaluations.append(evaluation)
    return evaluations


def _extraction_metrics(stages: dict, tau: float) -> list[Metric]:
    metrics = []
    for stage in ("before_filter", "after_filter"):
        config = f"τ = {tau:.2f}, {STAGES[stage]}"
        metrics += _metrics(stages[stage], _EXTRACTION_KEYS, config, {"threshold": tau})
    return metrics


def _skill_xl(results: dict, source: str, split: str | None, sources: list[str]) -> list[Evaluation]:
    dataset_id, dataset_name = DATASETS["skill-xl"]
    evaluation = Evaluation(
        "skill-xl",
        "Skill extraction (thresholded, with redundancy)",
        dataset_id,
        dataset_name,
        split_of(sources, split),
        source,
        sentences=results["after_filter"].get("n"),
        columns=["precision", "recall", "f1", "redundancy"],
    )
    evaluation.metrics = _extraction_metrics(results, float(results["threshold"]))
    return [evaluation]


def _job_normalization(results: dict, source: str, split: str | None, sources: list[str]) -> list[Evaluation]:
    dataset_id, dataset_name = DATASETS["job-normalization"]
    evaluation = Evaluation(
        "job-normalization",
        "Job title normalization (ESCO occupations)",
        dataset_id,
        dataset_name,
        split_of(sources, split),
        source,
        columns=["mrr", "r@5", "r@10"],
    )
    for index, scores in results.items():
        if isinstance(scores, dict):
            evaluation.sentences = scores.get("n", evaluation.sentences)
            config = f"ranked against {scores.get('index') or index}"
            evaluation.metrics += _metrics(scores, None, config)
    return [evaluation]


def _calibration(results: dict, source: str, split: str | None, sources: list[str]) -> list[Evaluation]:
    names = [Path(s).name for s in sources]
    benchmarks = sorted({_benchmark_of(n) for n in names})
    known = [DATASETS[b] for b in benchmarks if b in DATASETS]
    if len(known) == 1:
        dataset_id, dataset_name = known[0]
    else:
        dataset_id = "skillspan-esco" if known else "calibration data"
        dataset_name = " + ".join(name for _, name in known) or ", ".join(names) or "calibration data"
    best = results["best"]
    evaluation = Evaluation(
        "calibration",
        "Threshold calibration (best F1 after the redundancy filter)",
        dataset_id,
        dataset_name,
        split_of(names, split),
        source,
        sentences=results.get("sentences"),
        columns=["precision", "recall", "f1", "redundancy"],
        note=f"best τ = {float(best['tau']):.2f} of a 0.01-step sweep",
    )
    evaluation.metrics = _extraction_metrics(best, float(best["tau"]))
    return [evaluation]
