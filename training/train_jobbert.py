"""Train JobBERT V2: InfoNCE between job titles (title head) and their skill lists (skills head).

    accelerate launch -m labor_encoders.training.train_jobbert --data pairs.csv --output_dir runs/jobbert [--config
    ...yaml]

Data: ``--data``, (title, comma-separated skills) pairs in a local CSV/TSV/JSONL/JSON/Parquet file or a Hub
dataset id, columns ``--title_column`` / ``--skills_column``. Make them from job ads with the paper's pipeline:
``labor-encoders jobbert-pairs ads.csv --output pairs.csv`` (titles kept, skills extracted by ConTeXT-match).
Identical skill lists in one batch are not negatives of each other. The model starts from all-mpnet-base-v2
(identity heads), another sentence-transformers folder (the ``TechWolf/JobBERT-v2`` layout keeps its heads), or a
JobBERT folder / Hub repo of this project; the result is a JobBERT folder with its title index re-encoded.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from .loop import Task, common_arguments, parse_with_config, train

logger = logging.getLogger("training")


def load_model(args: argparse.Namespace):
    from labor_encoders.jobbert import build_jobbert, load_jobbert

    from .models import starting_point

    source, ours = starting_point(args.model, "jobbert")
    model = load_jobbert(source) if ours else build_jobbert(source, None)
    model._start_index = None
    if ours and model.config.num_titles:
        model._start_index = (list(model.title_labels), list(model.title_ids), dict(model.title_names))
    if args.max_seq_length:
        model.config.max_seq_length = args.max_seq_length
    return model


def load_pairs(args: argparse.Namespace):
    from .data import read_pairs

    if not args.data:
        raise SystemExit(
            "JobBERT trains on (job title, skills) pairs: pass --data FILE or a dataset id. Make pairs from job ads"
            " with `labor-encoders jobbert-pairs ads.csv --output pairs.csv`."
        )
    return read_pairs(args.data, args.title_column, args.skills_column, split=args.split, limit=args.limit)


def make_loss(model, args: argparse.Namespace) -> nn.Module:
    from .gradcache import CachedJobBERTInfoNCE
    from .losses import JobBERTInfoNCE

    loss = JobBERTInfoNCE(model, scale=args.scale, symmetric=args.symmetric)
    return CachedJobBERTInfoNCE(loss, args.mini_batch_size) if args.mini_batch_size else loss


def validate(model, args: argparse.Namespace) -> dict[str, float]:
    """MRR / R@5 / R@10 of the validation titles against the ``--validation_occupations`` preferred labels."""
    if not args.validation:
        return {}
    from labor_encoders.evaluation.jobbert_titles import evaluate_titles, load_preferred_labels, load_title_benchmark

    if not args.validation_occupations:
        raise ValueError("--validation needs --validation_occupations (ESCO occupations CSV of the benchmark)")
    labels, ids = load_preferred_labels(args.validation_occupations)
    pairs = load_title_benchmark(args.validation)[: args.validation_limit]
    result = evaluate_titles(model, pairs, labels=labels, ids=ids)
    return {key: result[key] for key in ("mrr", "r@5", "r@10")}


def finalize(model, args: argparse.Namespace) -> Path:
    """Encode the title index with the trained weights and save a remote-code folder to ``OUTPUT_DIR/model``."""
    from labor_encoders.build import save_model
    from labor_encoders.jobbert import set_title_taxonomy
    from labor_encoders.taxonomy import load_esco_occupations, load_taxonomy

    if args.titles:
        set_title_taxonomy(model, load_taxonomy(args.titles))
    elif model._start_index is not None:
        labels, ids, names = model._start_index
        model.set_title_index(labels, ids, names)
    else:
        set_title_taxonomy(model, load_esco_occupations())
    model.config.trained = True
    return save_model(model, Path(args.output_dir) / "model")


def task() -> Task:
    return Task(
        name="jobbert",
        load_model=load_model,
        load_pairs=load_pairs,
        make_loss=make_loss,
        validate=validate,
        finalize=finalize,
        max_lengths=lambda model, args: (model.config.max_seq_length, model.config.max_seq_length),
    )


def parser() -> argparse.ArgumentParser:
    parser = common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--title_column", default="title", help="column of --data with the job title (title)")
    parser.add_argument("--skills_column", default="skills", help="column with the comma-separated skills (skills)")
    parser.add_argument("--titles", help="title taxonomy file for the final index (default: the start model's or ESCO)")
    parser.add_argument("--validation", help="JobBERT titles benchmark CSV to validate on")
    parser.add_argument("--validation_occupations", help="ESCO occupations CSV (preferredLabel, conceptUri)")
    parser.add_argument("--validation_limit", type=int, help="validate on the first N titles only")
    return parser


def main(argv: Sequence[str] | None = None) -> Path:
    return train(task(), parse_with_config(parser(), argv))


if __name__ == "__main__":
    main()
