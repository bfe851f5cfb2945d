"""``train`` (the training scripts in one process) and ``jobbert-pairs`` (ads -> (title, skills) pairs)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .common import (
    UsageError,
    add_model_flag,
    add_threshold_flag,
)

logger = logging.getLogger("labor_encoders")


def register(commands) -> None:
    """Add ``train``, ``jobbert-pairs`` to the ``labor-encoders`` sub-commands."""
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
    add_model_flag(pairs, "ConTeXT-match folder (default: the embedded default model)")
    add_threshold_flag(pairs, "skill threshold (default: the model's calibrated tau)")
    pairs.add_argument("--min-skills", type=int, default=1, help="skip ads with fewer skills (default 1)")
    pairs.add_argument("--limit", type=int, help="use at most this many ads")
    pairs.set_defaults(handler=_cmd_jobbert_pairs)


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

    from ..build import load_contextmatch, resolve_model_dir

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

    from ..atomic import write_file

    write_file(args.output, write)
    print(
        f"wrote {stats['pairs']} pairs to {args.output} from {stats['ads']} ads; skipped: "
        f"{stats['empty_title']} without a title, {stats['empty_text']} without text, "
        f"{stats['too_few_skills']} with fewer than {args.min_skills} skills",
        file=sys.stderr,
    )
    return 0
