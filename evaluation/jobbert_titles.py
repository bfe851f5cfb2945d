"""JobBERT title normalisation (Decorte et al. 2021) as the JobBERT V2 paper scores it (Table 3).

Protocol (``shared/data/README.md``): for each ``vacancyTitle`` rank the 2,942 ESCO occupation preferred labels of
``esco/occupations_en.csv`` by cosine through the title head; the gold is the row's ``conceptUri``. Report MRR over
the whole ranking and R@5, R@10 in percent.

``--index model`` scores the model's own title index instead (ESCO v1.2 preferred and alternative labels for the
default model, an occupation scoring as its best label): that is what ``normalize`` returns, and gold occupations
missing from that index count as misses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_title_benchmark(source: str | Path) -> list[tuple[str, str]]:
    """``(title, gold occupation URI)`` pairs of a JobBERT evaluation CSV or Hub dataset (``vacancyTitle``,
    ``conceptUri``)."""
    from labor_encoders.evaluation.data import read_rows

    rows = read_rows(source, required=("vacancyTitle", "conceptUri"))
    return [(str(row["vacancyTitle"]).strip(), str(row["conceptUri"]).strip()) for row in rows]


def load_preferred_labels(path: str | Path) -> tuple[list[str], list[str]]:
    """Preferred labels and URIs of an ESCO occupations CSV (``preferredLabel``, ``conceptUri``)."""
    from labor_encoders.evaluation.data import read_rows

    rows = read_rows(path, required=("preferredLabel", "conceptUri"))
    pairs = [(str(row["preferredLabel"]).strip(), str(row["conceptUri"]).strip()) for row in rows]
    return [label for label, _ in pairs], [uri for _, uri in pairs]


def gold_ranks(scores: torch.Tensor, concept_of_row: torch.Tensor, concepts: Sequence[str], gold: Sequence[str]):
    """1-based rank of each gold concept when concepts score as their best row (None: not in the index).

    ``scores`` is (queries, rows); ties count in the gold's favour.

    >>> gold_ranks(torch.tensor([[0.1, 0.9, 0.5], [0.8, 0.2, 0.3]]), torch.tensor([0, 1, 1]), ["a", "b"], ["a", "c"])
    [2, None]
    """
    per_concept = torch.full((scores.shape[0], len(concepts)), float("-inf"))
    per_concept.scatter_reduce_(1, concept_of_row.expand_as(scores), scores, "amax")
    column = {concept: i for i, concept in enumerate(concepts)}
    ranks = []
    for row, concept in enumerate(gold):
        if concept not in column:
            ranks.append(None)
            continue
        ranks.append(int((per_concept[row] > per_concept[row, column[concept]]).sum()) + 1)
    return ranks


def recall_scores(ranks: Sequence[int | None], ks: Sequence[int] = (5, 10)) -> dict:
    """MRR and R@k (percent) from gold ranks; a missing gold (None) counts as a miss.

    >>> recall_scores([1, 4, None, 20], ks=(5,))
    {'n': 4, 'mrr': 0.325, 'r@5': 50.0}
    """
    n = len(ranks)
    result = {"n": n, "mrr": round(sum(1 / r for r in ranks if r) / n, 4) if n else 0.0}
    for k in ks:
        result[f"r@{k}"] = round(100 * sum(1 for r in ranks if r and r <= k) / n, 2) if n else 0.0
    return result


def evaluate_titles(
    model, pairs: Sequence[tuple[str, str]], labels=None, ids=None, queries=None, index=None, batch_size: int = 256
) -> dict:
    """Score a JobBERT model on ``(title, gold id)`` pairs against ``labels``/``ids`` (default: its title index).

    ``queries`` (the titles' vectors) and ``index`` (label vectors, with ``ids``) may be given precomputed when
    several indexes are scored.
    """
    if index is not None:
        index = index.float().cpu()
    elif labels is None:
        index, ids = model.title_embeddings.float().cpu(), model.title_ids
    else:
        index = model.encode_titles(labels)
    position: dict[str, int] = {}
    concept_of_row = torch.tensor([position.setdefault(i, len(position)) for i in ids])
    concepts = list(position)
    if queries is None:
        queries = model.encode_titles([title for title, _ in pairs])
    ranks: list[int | None] = []
    for start in range(0, len(pairs), batch_size):
        block = pairs[start : start + batch_size]
        scores = queries[start : start + batch_size] @ index.T
        ranks += gold_ranks(scores, concept_of_row, concepts, [gold for _, gold in block])
    result = recall_scores(ranks)
    result["gold_not_in_index"] = sum(rank is None for rank in ranks)
    return result


def preferred_rows(model) -> list[int]:
    """Rows of a title index that hold a concept's own name (its preferred label), one per concept."""
    return [
        i
        for i, (label, concept) in enumerate(zip(model.title_labels, model.title_ids, strict=True))
        if model.title_names.get(concept) == label
    ]


def main(argv: list[str] | None = None) -> int:
    """``python -m labor_encoders.evaluation.jobbert_titles``: MRR, R@5 and R@10 of a JobBERT folder on the title
    benchmark."""
    import argparse
    import json

    from labor_encoders.jobbert import load_jobbert, resolve_jobbert_dir

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--model", type=Path, help="JobBERT model folder (default: the embedded default model)")
    parser.add_argument("--titles", type=Path, default=SHARED / "jobbert" / "titles.validation.csv")
    parser.add_argument("--occupations", type=Path, default=SHARED / "esco" / "occupations_en.csv")
    parser.add_argument(
        "--index",
        choices=["benchmark", "model", "model-preferred"],
        nargs="+",
        default=["benchmark"],
        help="benchmark: the occupations' preferred labels (the paper's protocol); model: the model's title index; "
        "model-preferred: only the preferred label of each concept in it",
    )
    parser.add_argument("--limit", type=int, help="score only the first N titles (a quick check)")
    args = parser.parse_args(argv)
    model = load_jobbert(resolve_jobbert_dir(args.model))
    pairs = load_title_benchmark(args.titles)[: args.limit]
    queries = model.encode_titles([title for title, _ in pairs])
    results = {}
    for index in args.index:
        if index == "benchmark":
            labels, ids = load_preferred_labels(args.occupations)
            results[index] = evaluate_titles(model, pairs, labels, ids, queries) | {"index": args.occupations.name}
        elif index == "model":
            results[index] = evaluate_titles(model, pairs, queries=queries) | {"index": model.config.taxonomy}
        else:
            rows = preferred_rows(model)
            vectors, ids = model.title_embeddings[rows], [model.title_ids[i] for i in rows]
            result = evaluate_titles(model, pairs, ids=ids, queries=queries, index=vectors)
            results[index] = result | {"index": f"{model.config.taxonomy}, preferred labels only"}
    print(json.dumps({"titles": args.titles.name, **results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
