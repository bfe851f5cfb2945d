"""Corpus-scale commands: ``batch`` (millions of ads to Parquet) and ``analyze`` (tables, charts, report)."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from .common import (
    UsageError,
    add_model_flag,
    add_threshold_flag,
)

logger = logging.getLogger("labor_encoders")


def register(commands) -> None:
    """Add ``batch``, ``analyze`` to the ``labor-encoders`` sub-commands."""
    _add_batch_command(commands)
    _add_analyze_command(commands)


def _add_batch_command(commands) -> None:
    from ..backends import BACKENDS

    batch = commands.add_parser(
        "batch",
        help="job ads (CSV/TSV/JSONL/Parquet files, folders or globs) -> skills and occupations per ad, as Parquet "
        "parts; streaming and resumable",
        description="Annotates every ad with ConTeXT-match skills (scores, evidence) and the JobBERT occupation of "
        "its title. Run the same command again to resume an interrupted run.",
    )
    batch.add_argument("inputs", nargs="+", metavar="INPUT", help="a file, a folder (all its files) or a glob")
    batch.add_argument("--output", required=True, type=Path, help="output folder (parquet/, rejects.jsonl, ...)")
    batch.add_argument("--text-column", default="text", help="column with the ad text (default text)")
    batch.add_argument("--title-column", help="column with the job title (default: title, when the file has one)")
    batch.add_argument("--id-column", help="column with your ad id, copied to the output's id column")
    batch.add_argument(
        "--keep-columns",
        metavar="COLUMNS",
        help="input columns to carry through to the output, comma-separated (date,region,...), or 'all' (every "
        "column but the text); kept as text, for `labor-encoders analyze`",
    )
    batch.add_argument("--format", choices=["csv", "tsv", "jsonl", "parquet"], help="file format (default: suffix)")
    batch.add_argument("--csv", action="store_true", help="also write each part as CSV (OUT/csv/)")
    batch.add_argument("--part-size", type=int, default=10_000, help="ads per output part (default 10,000)")
    batch.add_argument(
        "--max-chars", type=int, default=1_000_000, help="longer texts are rejected (default 1,000,000 characters)"
    )
    batch.add_argument("--limit", type=int, help="stop after this many input rows (a later run can continue)")
    batch.add_argument("--overwrite", action="store_true", help="start again, deleting an earlier run in --output")
    add_model_flag(batch, "ConTeXT-match folder or Hub repo id (default: the embedded default)", hub_id=True)
    batch.add_argument("--jobbert-model", help="JobBERT folder or Hub repo id (default: the embedded default)")
    batch.add_argument("--no-titles", action="store_true", help="skip the occupations (no JobBERT)")
    add_threshold_flag(batch, "decision threshold (default: the model's calibrated tau)")
    batch.add_argument("--top-k", type=int, help="at most K skills per ad")
    batch.add_argument("--no-redundancy-filter", action="store_true", help="keep every skill above the threshold")
    batch.add_argument("--batch-size", type=int, default=32, help="sentences per forward pass (default 32)")
    batch.add_argument("--backend", choices=BACKENDS, default="torch", help="inference backend (default torch)")
    batch.add_argument("--engine", choices=["local", "ray"], default="local", help="this process, or Ray Data")
    batch.add_argument("--workers", type=int, default=2, help="Ray: model actors (default 2)")
    batch.add_argument("--gpus-per-worker", type=float, default=0.0, help="Ray: GPUs per actor (default 0: CPU)")
    batch.add_argument("--cpus-per-worker", type=float, default=1.0, help="Ray: CPUs per actor (default 1)")
    batch.add_argument("--address", help="Ray: cluster address (default: start Ray on this machine)")
    batch.set_defaults(handler=_cmd_batch)


def _cmd_batch(args: argparse.Namespace) -> int:
    from ..backends import BackendError
    from ..batch.inputs import BatchError, Columns, check_columns, find_inputs, keep_all
    from ..batch.runner import BatchJob, ModelOptions, run_local

    for flag, value, least in [("--part-size", args.part_size, 1), ("--max-chars", args.max_chars, 1)]:
        if value < least:
            raise UsageError(f"{flag} must be at least {least}")
    for flag, value in [("--top-k", args.top_k), ("--limit", args.limit), ("--workers", args.workers)]:
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1")
    if args.engine == "local" and (args.address or args.gpus_per_worker):
        raise UsageError("--address and --gpus-per-worker are for --engine ray")
    options = ModelOptions(
        model=args.model,
        jobbert_model=None if args.no_titles else args.jobbert_model,
        titles=not args.no_titles,
        backend=args.backend,
        threshold=args.threshold,
        top_k=args.top_k,
        redundancy_filter=False if args.no_redundancy_filter else None,
        batch_size=args.batch_size,
    )
    columns = Columns(
        text=args.text_column,
        title=args.title_column or "title",
        id=args.id_column,
        title_required=args.title_column is not None,
    )
    keep = [c.strip() for c in (args.keep_columns or "").split(",") if c.strip()]
    if "all" in keep and len(keep) > 1:
        raise UsageError("--keep-columns takes 'all' or a list of columns, not both")
    try:
        files = find_inputs(args.inputs, args.format)
        keep = keep_all(files, columns, args.format) if keep == ["all"] else tuple(keep)
        columns = replace(columns, keep=keep)
        check_columns(files, columns, args.format)
        job = BatchJob(
            files=files,
            output=args.output,
            columns=columns,
            options=options,
            format=args.format,
            max_chars=args.max_chars,
            part_size=args.part_size,
            write_csv=args.csv,
            limit=args.limit,
        )
        if args.engine == "ray":
            from ..batch.ray_data import run_ray

            result = run_ray(
                job,
                workers=args.workers,
                gpus_per_worker=args.gpus_per_worker,
                cpus_per_worker=args.cpus_per_worker,
                address=args.address,
                overwrite=args.overwrite,
                progress=not args.quiet,
            )
        else:
            result = run_local(job, overwrite=args.overwrite, progress=not args.quiet)
    except (BatchError, BackendError) as error:
        raise UsageError(str(error)) from None
    except KeyboardInterrupt:
        message = f"interrupted: run the same command again to continue after the last part in {args.output}"
        print(message, file=sys.stderr)
        raise
    state = "complete" if result["complete"] else "not complete (run the same command again to continue)"
    rate = f" at {result['ads_per_s']:,} ads/s" if result["ads_per_s"] else ""
    parts = f"{result['parts']} part{'s' * (result['parts'] != 1)}"
    print(
        f"{result['ads']:,} ads in {parts} under {args.output / 'parquet'}, {result['rejected']:,} rejected (see "
        f"{args.output / 'rejects.jsonl'}); {result['records_this_run']:,} rows read in this run{rate}; {state}",
        file=sys.stderr,
    )
    return 0


def _add_analyze_command(commands) -> None:
    analyze = commands.add_parser(
        "analyze",
        help="batch output -> skill demand by occupation, ISCO group, period and region, movers, occupation "
        "profiles, ESCO skill groups and collections: tables, charts and an HTML report (DuckDB)",
        description="Reads the committed Parquet parts of labor-encoders batch outputs (or any Parquet files with "
        "their columns) and answers which skills are asked for, for which jobs, where and when.",
    )
    analyze.add_argument("inputs", nargs="+", metavar="INPUT", help="a batch output folder, Parquet files or globs")
    analyze.add_argument("--output", required=True, type=Path, help="folder for tables/, charts/, report.html")
    analyze.add_argument(
        "--by",
        action="append",
        default=[],
        metavar="COLUMNS",
        help="a grouping (repeatable): a kept column, occupation, month/quarter/year (with --date-column), "
        "isco1..isco4 (with --esco); several columns joined by commas form one grouping (region,quarter)",
    )
    analyze.add_argument("--date-column", help="the column with the ads' dates (read leniently; day before month)")
    analyze.add_argument("--date-format", help="the dates' strftime format when they are not ISO (e.g. %%d/%%m/%%Y)")
    analyze.add_argument(
        "--compare", metavar="COLUMN:A,B", help="movers from group A to group B (default: first and last month)"
    )
    analyze.add_argument(
        "--esco",
        nargs="+",
        metavar="PATH",
        help="the official ESCO CSV download (classification and relations zips, or a folder): ISCO groups, skill "
        "hierarchy, collections, essential and optional skills",
    )
    analyze.add_argument("--min-ads", type=int, default=30, help="leave out groups with fewer ads (default 30)")
    analyze.add_argument("--top", type=int, default=20, help="rows shown per chart and report table (default 20)")
    analyze.add_argument("--partial", action="store_true", help="analyse an unfinished batch run's committed parts")
    analyze.add_argument("--memory-limit", help="DuckDB's memory limit (e.g. 4GB); it spills to disk beyond it")
    analyze.set_defaults(handler=_cmd_analyze)


def _cmd_analyze(args: argparse.Namespace) -> int:
    from ..insights import AnalysisError, EscoError, analyze, load_esco

    if args.top < 1:
        raise UsageError("--top must be at least 1")

    def progress(fraction: float, text: str) -> None:
        if not args.quiet:
            print(f"[{fraction:4.0%}] {text}", file=sys.stderr)

    try:
        esco = load_esco(args.esco) if args.esco else None
        result = analyze(
            args.inputs,
            args.output,
            by=args.by,
            date_column=args.date_column,
            date_format=args.date_format,
            compare=args.compare,
            esco=esco,
            min_ads=args.min_ads,
            top=args.top,
            partial=args.partial,
            memory_limit=args.memory_limit,
            progress=progress,
        )
    except (AnalysisError, EscoError) as error:
        raise UsageError(str(error)) from None
    summary = result.summary
    for note in summary["notes"]:
        print(f"note: {note}", file=sys.stderr)
    for name, reason in summary["skipped"].items():
        print(f"not computed: {name}: {reason}", file=sys.stderr)
    state = "" if summary["complete"] else " PARTIAL (the batch run is not finished);"
    print(
        f"{summary['ads']:,} ads analysed;{state} {len(summary['tables'])} tables in {args.output / 'tables'}, "
        f"{len(result.charts)} charts, report: {result.report}",
        file=sys.stderr,
    )
    return 0
