"""``evaluate``: the paper's benchmarks and WorkRB."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from .common import (
    UsageError,
    add_json_flag,
    add_model_flag,
    add_threshold_flag,
)

logger = logging.getLogger("labor_encoders")


def register(commands) -> None:
    """Add ``evaluate`` to the ``labor-encoders`` sub-commands."""
    evaluate = commands.add_parser("evaluate", help="score a model on the paper's benchmarks")
    kinds = evaluate.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    ranking = kinds.add_parser("skill-extraction", help="SkillSpan-ESCO ranking: MRR and RP@k (paper Table 2)")
    ranking.add_argument(
        "--annotations", nargs="+", required=True, help="annotation CSVs or Hub dataset ids (sentence, label)"
    )
    ranking.add_argument("--labels", type=Path, help="ranking targets, one label a line (default: the model's index)")
    ranking.add_argument(
        "--scoring", nargs="+", choices=["context", "mean-pool"], default=["context"], help="context: ConTeXT-match"
    )
    skill_xl = kinds.add_parser("skill-xl", help="Skill-XL: precision, recall, F1 and redundancy at a threshold")
    skill_xl.add_argument("--data", required=True, help="Skill-XL CSV or Hub dataset id (ID, sentence, cluster, skill)")
    skill_xl.add_argument("--labels", type=Path, help="skill labels, one a line (default: the model's index)")
    add_threshold_flag(skill_xl, "τ (default: the model's calibrated threshold)")
    titles = kinds.add_parser("job-normalization", help="JobBERT title normalisation: MRR, R@5, R@10 (Table 3)")
    titles.add_argument("--titles", required=True, help="CSV or Hub dataset id with vacancyTitle, conceptUri")
    titles.add_argument(
        "--occupations", type=Path, help="occupations CSV (conceptUri, preferredLabel); default: the model's index"
    )
    for sub in (ranking, skill_xl, titles):
        add_model_flag(sub, "model folder (default: the embedded default of that kind)")
        add_json_flag(sub, "print the results as JSON")
        sub.add_argument("--output", type=Path, help="also write <benchmark>.json and a Markdown table here")
    _workrb_flags(kinds)
    evaluate.set_defaults(handler=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from labor_encoders.evaluation import benchmarks

    if args.benchmark == "workrb":
        return _cmd_evaluate_workrb(args)
    if args.benchmark == "job-normalization":
        results = _evaluate_titles(args)
    else:
        from ..build import load_contextmatch, resolve_model_dir

        model = benchmarks.with_benchmark_index(load_contextmatch(resolve_model_dir(args.model)), args.labels)
        if args.benchmark == "skill-extraction":
            scorings = ["contextmatch" if s == "context" else s for s in args.scoring]
            results = benchmarks.skill_extraction(model, args.annotations, scorings)
        else:
            results = benchmarks.skill_xl(model, args.data, args.threshold)
    if args.output is not None:
        data = {"skill-extraction": "annotations", "skill-xl": "data", "job-normalization": "titles"}[args.benchmark]
        sources = getattr(args, data)
        sources = sources if isinstance(sources, list) else [sources]
        for path in benchmarks.write_results(args.benchmark, results, args.output, data=sources):
            logger.info("wrote %s", path)
    if args.json:
        print(json.dumps(_flat(args, results), indent=2))
    else:
        print(benchmarks.markdown_table(args.benchmark, results), end="")
    return 0


def _workrb_flags(kinds) -> None:
    workrb = kinds.add_parser(
        "workrb", help="WorkRB's tasks and metrics on our models (needs the workrb extra; offline: local files)"
    )
    workrb.add_argument(
        "--tasks",
        nargs="+",
        default=["local"],
        help="house, tech, skill-xl, skillskape, job-normalization, techwolf, melo, mels, skill-similarity, "
        "job-similarity, skill-normalization, job2skill, skill2job, a WorkRB class name, or local (default: every "
        "task with local data)",
    )
    add_model_flag(workrb, "ConTeXT-match folder or Hub id (default: the embedded default)", hub_id=True)
    workrb.add_argument("--jobbert-model", help="JobBERT folder or Hub id (default: the embedded default)")
    workrb.add_argument("--output", required=True, type=Path, help="WorkRB's results per model, workrb.json, .md")
    workrb.add_argument("--data", type=Path, help="local benchmark folder (default: ../shared/data)")
    workrb.add_argument("--hub", action="store_true", help="load every task's data as WorkRB does (online)")
    workrb.add_argument("--split", choices=["val", "test"], default="val", help="with --hub (default val)")
    workrb.add_argument(
        "--skill-labels", type=Path, help="skill targets, one a line, instead of WorkRB's ESCO v1.1.0 list (offline)"
    )
    workrb.add_argument(
        "--keep-duplicate-queries",
        action="store_true",
        help="job normalisation: score every title row (the paper) instead of merging equal titles (WorkRB)",
    )
    add_json_flag(workrb, "print the results as JSON")


def _cmd_evaluate_workrb(args: argparse.Namespace) -> int:
    try:
        from ..workrb import tasks as workrb_tasks
    except ImportError as error:
        raise UsageError(f"{error}: install the extra with pip install 'labor-encoders[workrb]'") from error
    from ..workrb.models import ConTeXTMatchWorkRB, JobBERTWorkRB

    workrb_tasks.workrb_logs_to_stderr(logging.WARNING if args.quiet else logging.INFO)
    tasks, skipped = workrb_tasks.build_tasks(
        args.tasks, args.data, args.hub, args.split, args.skill_labels, not args.keep_duplicate_queries
    )
    for key, reason in skipped.items():
        logger.warning("warning: WorkRB task %s not run: %s", key, reason)
    if not tasks:
        raise UsageError("no WorkRB task can run: " + "; ".join(f"{k}: {why}" for k, why in skipped.items()))
    models = {
        "contextmatch": lambda: ConTeXTMatchWorkRB(args.model),
        "jobbert": lambda: JobBERTWorkRB(args.jobbert_model),
    }
    results = workrb_tasks.run(tasks, models, args.output)
    settings = {
        "split": args.split,
        "data": "hub" if args.hub else "local",
        "skill_labels": args.skill_labels.name if args.skill_labels else None,
        "merge_duplicate_queries": not args.keep_duplicate_queries,
    }
    for path in workrb_tasks.write_results(results, skipped, args.output, settings):
        logger.info("wrote %s", path)
    if args.json:
        print(json.dumps({"results": results, "skipped": skipped}, indent=2))
    else:
        print(workrb_tasks.markdown_table(results, skipped), end="")
    return 0


def _flat(args: argparse.Namespace, results: dict) -> dict:
    """One file scored one way prints its scores alone (``{"n", "mrr", ...}``); several print a nested object."""
    if args.benchmark == "job-normalization":
        (only,) = results.values()
        return only
    if args.benchmark == "skill-extraction" and len(results) == 1:
        (by_scoring,) = results.values()
        if len(by_scoring) == 1:
            (only,) = by_scoring.values()
            return only
    return results


def _evaluate_titles(args: argparse.Namespace) -> dict:
    from labor_encoders.evaluation.jobbert_titles import evaluate_titles, load_preferred_labels, load_title_benchmark

    from ..jobbert import load_jobbert, resolve_jobbert_dir

    model = load_jobbert(resolve_jobbert_dir(args.model))
    pairs = load_title_benchmark(args.titles)
    if args.occupations is None:
        return {"model index": evaluate_titles(model, pairs) | {"index": model.config.taxonomy}}
    labels, ids = load_preferred_labels(args.occupations)
    return {"preferred labels": evaluate_titles(model, pairs, labels, ids) | {"index": args.occupations.name}}
