"""Train ConTeXT-match: InfoNCE over the token-attention score of (sentence, skill) pairs.

    accelerate launch -m labor_encoders.training.train_contextmatch --output_dir runs/cm [--config
    training/configs/...yaml]
    torchrun --nproc_per_node 2 -m labor_encoders.training.train_contextmatch ...      # two CPU processes (gloo)

Data: ``--data`` (a local CSV/TSV/JSONL/JSON/Parquet file or a Hub dataset id such as
``TechWolf/Synthetic-ESCO-skill-sentences``, columns ``--sentence_column`` / ``--skill_column``), or without
``--data`` the offline ESCO set (``labor_encoders.training.data.esco_skill_pairs``: alternative labels and description
sentences
of each ESCO v1.2 skill, paired with its preferred label). The model starts from all-mpnet-base-v2, another
sentence-transformers folder, or a ConTeXT-match folder / Hub repo (to fine-tune it on your data); the result is a
ConTeXT-match folder with its skill index encoded by the trained weights.
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
    from labor_encoders.build import build_contextmatch, load_contextmatch

    from .models import starting_point

    source, ours = starting_point(args.model, "contextmatch")
    model = load_contextmatch(source) if ours else build_contextmatch(source, None)
    model._start_index = (list(model.skill_labels), list(model.skill_ids), model.config.taxonomy) if ours else None
    if args.max_seq_length:
        model.config.max_seq_length = args.max_seq_length
    return model


def load_pairs(args: argparse.Namespace):
    """Every ``--data`` source (with ``--skill_list``, each skill cell a list), plus ``--esco_pairs`` pairs of the
    offline ESCO set (all of it without ``--data``), shuffled together with ``--seed``."""
    import random

    from .data import PairSet, esco_skill_pairs, read_pairs

    result = PairSet([], source="")
    sources = []
    for source in [args.data] if isinstance(args.data, str) else args.data or []:  # a YAML recipe may list several
        found = read_pairs(
            source, args.sentence_column, args.skill_column, split=args.split, second_is_list=args.skill_list
        )
        result.pairs += found.pairs
        result.bad_rows += found.bad_rows
        result.problems += found.problems
        sources.append(f"{found.source} ({len(found.pairs):,})")
    if not args.data or args.esco_pairs:
        from labor_encoders.taxonomy import load_esco_skills

        taxonomy = load_esco_skills()
        esco = esco_skill_pairs(taxonomy, seed=args.seed)[: args.esco_pairs or None]
        result.pairs += esco
        sources.append(f"the offline ESCO set of {taxonomy.name} ({len(esco):,})")
    if len(sources) > 1:
        random.Random(args.seed).shuffle(result.pairs)
    result.pairs = result.pairs[: args.limit]
    result.source = " + ".join(sources)
    return result


def make_loss(model, args: argparse.Namespace) -> nn.Module:
    from .gradcache import CachedContextMatchInfoNCE
    from .losses import ContextMatchInfoNCE

    loss = ContextMatchInfoNCE(model, scale=args.scale, symmetric=args.symmetric)
    return CachedContextMatchInfoNCE(loss, args.mini_batch_size) if args.mini_batch_size else loss


def validate(model, args: argparse.Namespace) -> dict[str, float]:
    """MRR / RP@5 / RP@10 on SkillSpan-style validation files, ranking the ``--validation_labels`` list."""
    if not args.validation:
        return {}
    from labor_encoders.evaluation.benchmarks import skill_extraction
    from labor_encoders.evaluation.skillspan import read_labels

    if not args.validation_labels:
        raise ValueError("--validation needs --validation_labels (the benchmark's skill labels, one a line)")
    model.set_skill_index(read_labels(args.validation_labels), taxonomy=Path(args.validation_labels).name)
    results = skill_extraction(model, args.validation, ["contextmatch"])
    return {
        f"{split}/{metric}": scores["contextmatch"][metric]
        for split, scores in results.items()
        for metric in ("mrr", "rp@5", "rp@10")
    }


def calibrate(model, args: argparse.Namespace) -> float:
    """τ with the best F1 after the redundancy filter on the ``--validation`` files, ranking ``--validation_labels``
    (what ``labor-encoders calibrate`` does); the model's index is left as the benchmark's."""
    from labor_encoders.evaluation import benchmarks

    if not args.validation or not args.validation_labels:
        raise ValueError("--calibrate needs --validation files and --validation_labels")
    benchmarks.with_benchmark_index(model, args.validation_labels)
    sentences, references = benchmarks.skillspan_references(args.validation, model.skill_labels)
    best = benchmarks.calibrate(model, sentences, references)["best"]
    logger.info("calibrated τ = %.2f (F1 %.4f after the redundancy filter)", best["tau"], best["after_filter"]["f1"])
    return float(best["tau"])


def finalize(model, args: argparse.Namespace) -> Path:
    """Encode the skill index with the trained weights and save a remote-code folder to ``OUTPUT_DIR/model``
    (with ``--calibrate``, first set its τ on the validation files; the adapter's record keeps it too)."""
    from labor_encoders.build import save_model
    from labor_encoders.taxonomy import load_esco_skills, load_taxonomy

    if args.calibrate:
        model.config.threshold = calibrate(model, args)

    if args.taxonomy:
        taxonomy = load_taxonomy(args.taxonomy)
        labels, ids, name = taxonomy.labels, taxonomy.ids, taxonomy.name
    elif model._start_index is not None:
        labels, ids, name = model._start_index
    else:
        taxonomy = load_esco_skills()
        labels, ids, name = taxonomy.labels, taxonomy.ids, taxonomy.name
    logger.info("encoding the skill index (%d labels) with the trained weights", len(labels))
    model.set_skill_index(labels, ids, taxonomy=name)
    model.config.trained = True
    return save_model(model, Path(args.output_dir) / "model")


def task() -> Task:
    return Task(
        name="contextmatch",
        load_model=load_model,
        load_pairs=load_pairs,
        make_loss=make_loss,
        validate=validate,
        finalize=finalize,
        max_lengths=lambda model, args: (model.config.max_seq_length, model.config.label_max_seq_length),
    )


def parser() -> argparse.ArgumentParser:
    parser = common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--sentence_column", default="sentence", help="column of --data with the text (sentence)")
    parser.add_argument("--skill_column", default="skill", help="column of --data with the skill label (skill)")
    parser.add_argument(
        "--skill_list", action="store_true", help="each --skill_column cell is a list of skills (SkillSkape's format)"
    )
    parser.add_argument(
        "--esco_pairs", type=int, default=0, help="also this many pairs of the offline ESCO set next to --data"
    )
    parser.add_argument(
        "--taxonomy", help="skill taxonomy file for the final index (default: the start model's or ESCO)"
    )
    parser.add_argument("--validation", nargs="*", default=[], help="SkillSpan-style annotation CSVs to validate on")
    parser.add_argument("--validation_labels", help="the benchmark's skill labels, one a line")
    parser.add_argument(
        "--calibrate", action="store_true", help="set the saved model's τ to the best F1 on the --validation files"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> Path:
    return train(task(), parse_with_config(parser(), argv))


if __name__ == "__main__":
    main()
