"""Train JobBERT V2's two heads on a frozen backbone, from cached mean-pooled vectors.

    python -m labor_encoders.training.train_jobbert_heads --output labor_encoders/weights/jobbert-default

Why the heads only: a full JobBERT V2 run fine-tunes the encoder on millions of (title, skills) pairs, far beyond a
small CPU budget. With the backbone (all-mpnet-base-v2) frozen, every title and skill list is encoded once, its
mean-pooled vector cached on disk, and the two linear heads (title head and skills head, 768 -> 1024, started as
identities) train with InfoNCE on those vectors in seconds per epoch. The result is small (two matrices), checked
into the package as safetensors with a ``record.json``, and the setup puts it on the backbone without training.

Data (all real, see :mod:`labor_encoders.training.jobbert_head_data`): ESCO occupation labels with their skills,
vacancy (title,
skills) pairs, and ESCO alternative -> preferred label pairs for an auxiliary title-to-title loss. The JobBERT
titles validation split selects the epoch (and was used to choose the recipe); it is never training data.
Everything is seeded and runs on one thread: rerunning with the same cache writes the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .jobbert_head_data import HeadPairs, esco_pairs, file_sha256, vacancy_pairs, vacancy_split
from .losses import duplicate_mask, info_nce

logger = logging.getLogger("training")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
HEADS_FILE = "heads.safetensors"
HEADS_CONFIG = "heads_config.json"
SOURCES = ("esco", "vacancies", "titles")


# ------------------------------------------------------------------------------------------------ cached vectors
class PooledCache:
    """Mean-pooled backbone vectors of text lists, computed once and kept in ``folder`` (one file per list).

    The backbone is wrapped in a JobBERT model with identity heads, so the vectors are exactly what
    ``model.encode`` pools (same tokenizer, truncation and pooling) before any head.
    """

    def __init__(self, backbone: str | Path, folder: str | Path, batch_size: int = 64) -> None:
        self.backbone, self.folder, self.batch_size = Path(backbone), Path(folder), batch_size
        self._model = None
        self.seconds: dict[str, float] = {}  # encoding seconds of each list, as measured when it was encoded
        self.seconds_now: dict[str, float] = {}  # those encoded by this run

    def model(self):
        if self._model is None:
            from labor_encoders.jobbert import build_jobbert

            self._model = build_jobbert(self.backbone, None)
        return self._model

    def key(self, texts: Sequence[str]) -> str:
        weights = self.backbone / "model.safetensors"
        stamp = f"{self.backbone.name}:{weights.stat().st_size if weights.is_file() else 0}"
        return hashlib.sha256(json.dumps([stamp, list(texts)]).encode()).hexdigest()[:20]

    def __call__(self, name: str, texts: Sequence[str]) -> torch.Tensor:
        from safetensors import safe_open
        from safetensors.torch import load_file, save_file

        path = self.folder / f"{name}-{self.key(texts)}.safetensors"
        if path.is_file():
            with safe_open(path, "pt") as f:  # the encoding time was measured when the file was written
                measured = (f.metadata() or {}).get("seconds")
            if measured is not None:
                self.seconds[name] = float(measured)
            return load_file(path)["pooled"]
        model = self.model()
        start = time.perf_counter()
        logger.info("encoding %d texts (%s) with the frozen backbone", len(texts), name)
        vectors = model.encode(list(texts), "title", batch_size=self.batch_size, normalize=False)
        pooled = vectors[:, : model.config.hidden_size].contiguous()
        seconds = time.perf_counter() - start
        self.seconds[name] = self.seconds_now[name] = round(seconds, 1)
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        save_file({"pooled": pooled}, partial, metadata={"seconds": f"{seconds:.1f}", "texts": str(len(texts))})
        partial.replace(path)
        return pooled

    def table(self, name: str, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """``{text: vector}`` for the distinct ``texts``."""
        distinct = sorted(set(texts))
        return dict(zip(distinct, self(name, distinct), strict=True))

    def lookup(self, name: str, texts: Sequence[str]) -> torch.Tensor:
        """Vectors of ``texts`` (duplicates allowed), encoding each distinct text once."""
        distinct = sorted(set(texts))
        vectors = self(name, distinct)
        row = {text: i for i, text in enumerate(distinct)}
        return vectors[torch.tensor([row[text] for text in texts], dtype=torch.long)]


# ------------------------------------------------------------------------------------------------------ heads
class Heads(nn.Module):
    """The title head and the skills head of a JobBERT model (``hidden`` -> ``dim``), started as identities."""

    def __init__(self, hidden: int, dim: int = 1024) -> None:
        from labor_encoders.modeling.modeling_jobbert import identity_init_

        super().__init__()
        self.title_head = identity_init_(nn.Linear(hidden, dim))
        self.skills_head = identity_init_(nn.Linear(hidden, dim))

    def title(self, pooled: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.title_head(pooled), dim=-1)

    def skills(self, pooled: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.skills_head(pooled), dim=-1)


def _group_ids(groups: Sequence[str]) -> torch.Tensor:
    ids: dict[str, int] = {}
    return torch.tensor([ids.setdefault(g, len(ids)) for g in groups], dtype=torch.long)


def contrastive(anchors: torch.Tensor, positives: torch.Tensor, groups: torch.Tensor, scale: float) -> torch.Tensor:
    """InfoNCE of unit vectors with in-batch negatives; rows of the same group are not negatives of each other."""
    return info_nce(anchors @ positives.T, scale, duplicate_mask(groups))


# ------------------------------------------------------------------------------------------------ evaluation
@torch.no_grad()
def title_scores(heads: Heads, queries: torch.Tensor, labels: torch.Tensor, pairs, ids) -> dict:
    """MRR / R@5 / R@10 of the JobBERT titles benchmark on cached vectors, with the project's evaluator."""
    from labor_encoders.evaluation.jobbert_titles import evaluate_titles

    result = evaluate_titles(None, pairs, ids=ids, queries=heads.title(queries), index=heads.title(labels))
    return {key: result[key] for key in ("n", "mrr", "r@5", "r@10")}


@torch.no_grad()
def skills_scores(heads: Heads, titles: torch.Tensor, skills: torch.Tensor) -> dict:
    """Title -> skill-list retrieval: each title ranks every skill list of the set; the gold is its own."""
    from labor_encoders.evaluation.jobbert_titles import gold_ranks, recall_scores

    names = [str(i) for i in range(len(titles))]
    scores = heads.title(titles) @ heads.skills(skills).T
    return recall_scores(gold_ranks(scores, torch.arange(len(names)), names, names), ks=(5, 10))


# ------------------------------------------------------------------------------------------------- training
def train_heads(
    pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    aux: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    args: argparse.Namespace,
    validate=None,
) -> tuple[Heads, list[dict], int]:
    """Train the heads for ``args.epochs`` epochs; keep the epoch that ``validate(heads)["mrr"]`` ranks best.

    ``pairs``: (title vectors, skill-list vectors, group ids); ``aux``: (alternative-label vectors, preferred-label
    vectors, group ids), both through the title head. Returns the heads, one history row per epoch and the steps.
    """
    import copy

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    hidden = (pairs or aux)[0].shape[1]
    heads = Heads(hidden, args.projection_dim)
    optimizer = torch.optim.AdamW(heads.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sources = [(source, weight) for source, weight in ((pairs, 1.0), (aux, args.aux_weight)) if source is not None]
    # an epoch is one pass over every source: each step takes its share of the batch from each, in proportion
    total_pairs = sum(len(source[0]) for source, _ in sources)
    steps_per_epoch = -(-total_pairs // args.batch_size)
    shares = [-(-len(source[0]) // steps_per_epoch) for source, _ in sources]
    history: list[dict] = []
    best, best_state, steps = float("-inf"), copy.deepcopy(heads.state_dict()), 0
    for epoch in range(1, args.epochs + 1):
        orders = [torch.randperm(len(source[0]), generator=generator) for source, _ in sources]
        total = 0.0
        for step in range(steps_per_epoch):
            loss = torch.zeros(())
            for (source, weight), order, share in zip(sources, orders, shares, strict=True):
                rows = order[step * share : (step + 1) * share]
                if len(rows) < 2:  # nothing to contrast with
                    continue
                first, second, groups = (t[rows] for t in source)
                positives = heads.skills(second) if source is pairs else heads.title(second)
                loss = loss + weight * contrastive(heads.title(first), positives, groups, args.scale)
            if not loss.requires_grad:
                continue
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            steps += 1
        row = {"epoch": epoch, "loss": round(total / steps_per_epoch, 4)}
        if validate is not None:
            row |= validate(heads)
        history.append(row)
        logger.info("epoch %d: %s", epoch, row)
        score = row.get("mrr", epoch)
        if score > best:
            best, best_state = score, copy.deepcopy(heads.state_dict())
    heads.load_state_dict(best_state)
    return heads, history, steps


def save_heads(heads: Heads, folder: Path, backbone: str, max_seq_length: int) -> None:
    """``heads.safetensors`` (title_head.* and skills_head.*, float32) and ``heads_config.json``."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().contiguous() for name, tensor in heads.state_dict().items()}
    save_file(state, folder / HEADS_FILE)
    config = {
        "format": "jobbert-heads",
        "backbone": backbone,
        "hidden_size": heads.title_head.in_features,
        "projection_dim": heads.title_head.out_features,
        "title_head_activation": "identity",
        "skills_head_activation": "identity",
        "max_seq_length": max_seq_length,
    }
    (folder / HEADS_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------------------- main
def run(args: argparse.Namespace) -> dict:
    """Build the pairs, encode what the cache lacks, train, validate, write the folder and its record."""
    from labor_encoders.adapter import write_record
    from labor_encoders.assets import MPNET, ensure_mpnet
    from labor_encoders.evaluation.jobbert_titles import load_preferred_labels, load_title_benchmark

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = set(sources) - set(SOURCES)
    if unknown or not sources:
        raise SystemExit(f"--sources takes a comma-separated subset of {', '.join(SOURCES)}; got {args.sources!r}")
    backbone = Path(args.backbone) if args.backbone else ensure_mpnet()
    cache = PooledCache(backbone, args.cache_dir)
    started = time.perf_counter()
    files = [*args.esco, args.vacancies, args.validation, args.validation_occupations]
    counts: dict[str, int] = {}

    esco = esco_pairs(
        args.esco,
        variants=args.skill_variants,
        skills_per_list=args.skills_per_list,
        max_alt_labels=args.max_alt_labels,
        seed=args.seed,
    )
    train_rows, held_rows = vacancy_split(args.vacancies)
    vacancies = vacancy_pairs(args.vacancies, train_rows, skills_per_list=args.skills_per_list)
    held = vacancy_pairs(args.vacancies, held_rows, skills_per_list=args.skills_per_list)
    every_vacancy = vacancies.extend(held)
    vacancy_titles = cache.table("vacancy-titles", every_vacancy.titles)
    vacancy_skills = cache.table("vacancy-skills", every_vacancy.skills)

    chosen = HeadPairs()
    if "esco" in sources:
        chosen = chosen.extend(esco.skills)
        counts["esco_pairs"] = len(esco.skills)
    if "vacancies" in sources:
        chosen = chosen.extend(vacancies)
        counts["vacancy_pairs"] = len(vacancies)
    pairs = aux = None
    if len(chosen) or "titles" in sources:
        esco_titles = cache.table("esco-titles", esco.skills.titles)
    if len(chosen):
        esco_skills = cache.table("esco-skills", esco.skills.skills) if "esco" in sources else {}
        from_esco = [group.startswith("http") for group in chosen.groups]
        titles = [(esco_titles if e else vacancy_titles)[t] for t, e in zip(chosen.titles, from_esco, strict=True)]
        skills = [(esco_skills if e else vacancy_skills)[s] for s, e in zip(chosen.skills, from_esco, strict=True)]
        pairs = (torch.stack(titles), torch.stack(skills), _group_ids(chosen.groups))
    if "titles" in sources:
        alt = torch.stack([esco_titles[t] for t in esco.titles.titles])
        preferred = torch.stack([esco_titles[t] for t in esco.titles.skills])
        aux = (alt, preferred, _group_ids(esco.titles.groups))
        counts["title_pairs"] = len(esco.titles)

    benchmark = load_title_benchmark(args.validation)
    labels, ids = load_preferred_labels(args.validation_occupations)
    queries = cache.lookup("validation-titles", [title for title, _ in benchmark])
    label_vectors = cache.lookup("validation-labels", labels)
    held_titles = torch.stack([vacancy_titles[t] for t in held.titles])
    held_skills = torch.stack([vacancy_skills[s] for s in held.skills])

    def validate(heads: Heads) -> dict:
        return title_scores(heads, queries, label_vectors, benchmark, ids)

    untrained = Heads(queries.shape[1], args.projection_dim)
    baseline = {
        "validation": validate(untrained),
        "vacancy_held_apart": skills_scores(untrained, held_titles, held_skills),
    }
    train_start = time.perf_counter()
    heads, history, steps = train_heads(pairs, aux, args, validate)
    train_seconds = time.perf_counter() - train_start
    best = max(history, key=lambda row: row["mrr"])
    output = Path(args.output)
    save_heads(heads, output, backbone.name if args.backbone else MPNET, cache.model().config.max_seq_length)
    record = {
        "script": "labor_encoders.training.train_jobbert_heads",
        "model": f"JobBERT V2 heads (title head, skills head) on a frozen {backbone.name if args.backbone else MPNET}",
        "command": "python -m labor_encoders.training.train_jobbert_heads " + shlex.join(args.argv),
        "arguments": {k: _portable(v) for k, v in vars(args).items() if k not in ("argv", "output", "cache_dir")},
        "data": file_sha256(files),
        "pairs": counts,
        "vacancy_split": {
            "train_rows": len(train_rows),
            "held_apart_rows": len(held_rows),
            "rule": "distinct titles sorted, every 5th held apart",
        },
        "steps": steps,
        "epoch": best["epoch"],
        "seconds": {
            "encode": round(sum(cache.seconds.values()), 1),
            "encode_by_list": cache.seconds,
            "encoded_by_this_run": round(sum(cache.seconds_now.values()), 1),
            "train": round(train_seconds, 1),
            "total": round(time.perf_counter() - started, 1),
        },
        "hardware": args.hardware,
        "validation": {
            "benchmark": Path(args.validation).name,
            "labels": Path(args.validation_occupations).name,
            "trained": {k: best[k] for k in ("n", "mrr", "r@5", "r@10")},
            "untrained": baseline["validation"],
        },
        "skills_head": {
            "task": "title -> skill-list retrieval among the held-apart vacancies",
            "trained": skills_scores(heads, held_titles, held_skills),
            "untrained": baseline["vacancy_held_apart"],
        },
        "history": history,
        "torch": torch.__version__,
    }
    return write_record(output, record)


def parser() -> argparse.ArgumentParser:
    esco = SHARED / "esco-official"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="folder for heads.safetensors, heads_config.json, record.json")
    parser.add_argument(
        "--sources", default="esco,vacancies,titles", help=f"comma-separated subset of {', '.join(SOURCES)}"
    )
    parser.add_argument(
        "--esco",
        nargs="+",
        default=[
            str(esco / "esco-v1.1.1-classification-en-csv.zip"),
            str(esco / "esco-v1.1.1-relations-csv.zip"),
            str(esco / "occupations_en-v1.2.0.csv"),
        ],
        help="official ESCO CSV downloads (zips, folders, occupations CSV files)",
    )
    parser.add_argument(
        "--vacancies",
        default=str(SHARED / "vacancies" / "vacancy_skills_a.parquet"),
        help="vacancy (title, skill_name list) Parquet",
    )
    parser.add_argument(
        "--validation",
        default=str(SHARED / "jobbert" / "titles.validation.csv"),
        help="JobBERT titles validation CSV (selects the epoch)",
    )
    parser.add_argument(
        "--validation_occupations",
        default=str(SHARED / "esco" / "occupations_en.csv"),
        help="ESCO occupations the validation titles are ranked against",
    )
    parser.add_argument("--backbone", help="sentence-transformers folder (default: all-mpnet-base-v2 from the setup)")
    parser.add_argument("--cache_dir", default=str(Path.home() / ".cache" / "labor-encoders" / "jobbert-heads-cache"))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch_size", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--weight_decay", type=float, default=0.0)
    parser.add_argument("--scale", type=float, default=20.0, help="InfoNCE scale (1 / temperature)")
    parser.add_argument("--aux_weight", type=float, default=1.0, help="weight of the title-to-title loss")
    parser.add_argument("--projection_dim", type=int, default=1024)
    parser.add_argument("--skill_variants", type=int, default=2, help="skill lists per ESCO occupation")
    parser.add_argument("--skills_per_list", type=int, default=6)
    parser.add_argument("--max_alt_labels", type=int, default=5, help="alternative labels kept per occupation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hardware", default="2-core CPU", help="recorded with the timings")
    return parser


def _portable(value):
    """A path argument relative to the project root (``../shared/data/...``), so the record names no machine."""
    if isinstance(value, list):
        return [_portable(item) for item in value]
    if isinstance(value, str) and Path(value).is_absolute():
        return os.path.relpath(value, ROOT)
    return value


def _without(argv: list[str], flag: str) -> list[str]:
    """``argv`` less ``flag`` and its value (a machine-dependent path has no place in the record).

    >>> _without(["--output", "out", "--cache_dir", "/tmp/c", "--epochs=3"], "--cache_dir")
    ['--output', 'out', '--epochs=3']
    """
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            kept.append(arg)
    return kept


def main(argv: Sequence[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    args.argv = _without(argv, "--cache_dir")
    record = run(args)
    print(json.dumps({k: record[k] for k in ("validation", "skills_head", "steps", "seconds", "epoch")}, indent=2))
    return record


if __name__ == "__main__":
    main()
