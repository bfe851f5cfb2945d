"""Commands that run the models on text: ``extract`` (skills of job ads) and ``normalize`` (job titles)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .common import (
    UsageError,
    add_json_flag,
    add_model_flag,
    add_threshold_flag,
    read_texts,
    read_titles,
)

logger = logging.getLogger("labor_encoders")


def register(commands) -> None:
    """Add ``extract``, ``normalize`` to the ``labor-encoders`` sub-commands."""
    from ..backends import BACKENDS

    extract = commands.add_parser("extract", help="extract skills (with their evidence) from job ads")
    extract.add_argument("texts", nargs="*", metavar="TEXT", help="job ad texts; '-' reads one from standard input")
    extract.add_argument(
        "--file", action="append", type=Path, default=[], help="a file holding one job ad (repeatable)"
    )
    add_model_flag(extract, "model folder (default: the embedded default model)")
    add_threshold_flag(extract, "decision threshold (default: the model's calibrated tau)")
    extract.add_argument("--top-k", type=int, help="at most K skills per text")
    extract.add_argument("--no-redundancy-filter", action="store_true", help="keep every skill above the threshold")
    extract.add_argument("--batch-size", type=int, default=32)
    add_json_flag(extract, "print one JSON list, an object per text")
    extract.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="inference engine (default torch); onnx and onnx-int8 need `labor-encoders export-onnx` first",
    )
    extract.set_defaults(handler=_cmd_extract)
    normalize = commands.add_parser("normalize", help="map job titles onto the closest occupations (ESCO by default)")
    normalize.add_argument("titles", nargs="*", metavar="TITLE", help="job titles; '-' reads one title per line")
    normalize.add_argument("--file", type=Path, help="titles, one per line (.txt) or in a column (.csv/.tsv)")
    normalize.add_argument("--column", help="column of --file that holds the titles (default: detected)")
    add_model_flag(normalize, "JobBERT model folder (default: the embedded default model)")
    normalize.add_argument("--top-k", type=int, default=5, help="occupations per title (default 5)")
    normalize.add_argument("--batch-size", type=int, default=64)
    add_json_flag(normalize, "print one JSON list, an object per title")
    normalize.set_defaults(handler=_cmd_normalize)


def _cmd_extract(args: argparse.Namespace) -> int:
    texts = read_texts(args)
    if args.top_k is not None and args.top_k < 1:
        raise UsageError("--top-k must be at least 1")
    from ..backends import BackendError, load_extractor

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


def _cmd_normalize(args: argparse.Namespace) -> int:
    titles = read_titles(args)
    if args.top_k < 1:
        raise UsageError("--top-k must be at least 1")
    from ..jobbert import load_jobbert, resolve_jobbert_dir

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
