"""Ranking metrics for multi-label and single-label retrieval: MRR, RP@k, R@k, nDCG@k and MAP.

An ``evaluate`` metric module (``evaluate.load("evaluation/metrics/ranking")``); the computation itself is the plain
function :func:`ranking_metrics`, which the project's runners import without ``evaluate``. This file must stay
self-contained (no relative or project imports): ``evaluate.load`` copies it alone into its module cache.

Definitions, for one example with gold set ``G`` (the distinct reference labels) and predicted ranking ``L`` (best
first, duplicates removed keeping each label's first occurrence, so a repeated label takes no rank), ``rel_i = 1`` when
the label at rank ``i`` (1-based) is in ``G``, ``hits@k = sum(rel_i for i <= k)``:

- ``mrr``: ``1 / i`` for the first ``i`` with ``rel_i = 1``; 0 when no gold label is in ``L``.
- ``rp@k`` (R-precision at k, as in the ConTeXT-match paper, in percent): ``100 * hits@k / min(k, |G|)``.
- ``recall@k`` (percent): ``100 * hits@k / |G|``. Equal to ``rp@k`` whenever ``|G| <= k`` (always for
  single-label retrieval, where it is the usual hit rate R@k).
- ``ndcg@k`` (fraction 0..1, binary relevance, log2 discount): ``DCG@k / IDCG@k`` with
  ``DCG@k = sum(rel_i / log2(i + 1) for i <= k)`` and ``IDCG@k = sum(1 / log2(i + 1) for i <= min(k, |G|))``.
- ``map`` (fraction 0..1): average precision ``sum(rel_i * hits@i / i for i <= |L|) / |G|``; gold labels missing
  from ``L`` (for instance from a truncated top list) add 0.

Every score is averaged over the examples that have gold. Edge cases:

- An example whose reference list is empty is skipped (it has nothing to retrieve) and counted in
  ``skipped_no_gold``; when every example is skipped, ``n`` is 0 and every score is 0.0.
- An empty prediction list scores 0 on every metric.
- ``k`` larger than the ranking: the top-k is the whole ranking, the denominators stay ``min(k, |G|)`` and ``|G|``,
  so a truncated list is not rewarded for being short.
- Values are not rounded (callers round); percent metrics are in 0..100, the others in 0..1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Integral

import datasets
import evaluate

_CITATION = """\
@misc{decorte2025efficient,
  title = {Efficient Text Encoders for Labor Market Analysis},
  author = {Decorte, Jens-Joris and Van Hautte, Jeroen and Develder, Chris and Demeester, Thomas},
  year = {2025},
  eprint = {2505.24640},
  archivePrefix = {arXiv},
  primaryClass = {cs.CL},
  url = {https://arxiv.org/abs/2505.24640}
}
@article{jarvelin2002cumulated,
  title = {Cumulated gain-based evaluation of {IR} techniques},
  author = {J{\\"a}rvelin, Kalervo and Kek{\\"a}l{\\"a}inen, Jaana},
  journal = {ACM Transactions on Information Systems},
  volume = {20},
  number = {4},
  pages = {422--446},
  year = {2002}
}
"""

_DESCRIPTION = """\
Ranking metrics for retrieval with one or several relevant labels per query (skill ranking on SkillSpan-ESCO, job
title normalisation against ESCO occupations). Per example, the prediction is a ranked list of labels (best first,
the full ranking or a truncated top list) and the reference is the list of gold labels. Reports the mean reciprocal
rank (MRR), RP@k = 100 * |top-k & gold| / min(k, |gold|) (percent, as in the ConTeXT-match paper), recall@k =
100 * |top-k & gold| / |gold| (percent), nDCG@k (binary relevance, log2 discount, ideal DCG from min(k, |gold|)
relevant items) and MAP (average precision over the given list, divided by |gold|), averaged over the examples with
gold. A repeated label counts once, at its first rank; examples without gold are skipped and counted.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `str`): per example, the ranked labels, best first. Duplicates count once, at
        their first occurrence.
    references (`list` of `list` of `str`): per example, the gold labels (one element for single-label retrieval).
        An example with an empty list is skipped.
    k (`int` or `list` of `int`, defaults to `[1, 5, 10]`): the cut-offs of `rp@k`, `recall@k` and `ndcg@k`; each at
        least 1.

Returns:
    n (`int`): examples scored (those with gold).
    skipped_no_gold (`int`): examples skipped because their reference list is empty.
    mrr (`float`): mean reciprocal rank of the first relevant label (0 for a ranking without one), 0..1.
    map (`float`): mean average precision over the given rankings, 0..1.
    rp@k (`float`): R-precision at k in percent, 0..100, for each k.
    recall@k (`float`): recall at k in percent, 0..100, for each k.
    ndcg@k (`float`): normalised discounted cumulative gain at k, 0..1, for each k.

Examples:
    Two queries: gold "b" at rank 2, and gold {"x", "z"} at ranks 1 and 3; the third query has no gold.

    >>> import tempfile
    >>> predictions = [["a", "b", "c"], ["x", "y", "z"], ["a"]]
    >>> references = [["b"], ["x", "z"], []]
    >>> with tempfile.TemporaryDirectory() as cache:
    ...     metric = Ranking(cache_dir=cache, keep_in_memory=True)
    ...     results = metric.compute(predictions=predictions, references=references, k=[1, 2])
    >>> {key: round(value, 4) for key, value in results.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'n': 2, 'skipped_no_gold': 1, 'mrr': 0.75, 'map': 0.6667, 'rp@1': 50.0, 'rp@2': 75.0, 'recall@1': 25.0,
     'recall@2': 75.0, 'ndcg@1': 0.5, 'ndcg@2': 0.622}

    The plain function gives the same without `evaluate`:

    >>> ranking_metrics(predictions, references, k=[1, 2]) == results
    True
"""

DEFAULT_K = (1, 5, 10)


def _cutoffs(k: int | Iterable[int]) -> list[int]:
    """The distinct cut-offs of ``k`` in the order given; ValueError for one below 1 or none at all."""
    values = list(k) if isinstance(k, Iterable) else [k]
    if not values:
        raise ValueError("k needs at least one cut-off")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise ValueError(f"every k must be an integer of at least 1, got {value!r}")
    return list(dict.fromkeys(int(value) for value in values))


def example_scores(ranking: Sequence[str], gold: Iterable[str], k: int | Iterable[int] = DEFAULT_K) -> dict[str, float]:
    """The metrics of one example with non-empty ``gold`` (see the module docstring for the definitions).

    >>> example_scores(["a", "b", "a", "c"], ["c", "d"], k=2)
    {'mrr': 0.3333333333333333, 'map': 0.16666666666666666, 'rp@2': 0.0, 'recall@2': 0.0, 'ndcg@2': 0.0}
    """
    ks = _cutoffs(k)
    relevant = set(gold)
    if not relevant:
        raise ValueError("an example needs at least one gold label")
    hits = [label in relevant for label in dict.fromkeys(ranking)]
    first = next((rank for rank, hit in enumerate(hits, start=1) if hit), None)
    scores = {"mrr": 1.0 / first if first else 0.0}
    found, precision_sum = 0, 0.0
    for rank, hit in enumerate(hits, start=1):
        if hit:
            found += 1
            precision_sum += found / rank
    scores["map"] = precision_sum / len(relevant)
    for cutoff in ks:
        scores[f"rp@{cutoff}"] = 100.0 * sum(hits[:cutoff]) / min(cutoff, len(relevant))
    for cutoff in ks:
        scores[f"recall@{cutoff}"] = 100.0 * sum(hits[:cutoff]) / len(relevant)
    for cutoff in ks:
        dcg = sum(1.0 / math.log2(rank + 1) for rank, hit in enumerate(hits[:cutoff], start=1) if hit)
        ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(cutoff, len(relevant)) + 1))
        scores[f"ndcg@{cutoff}"] = dcg / ideal
    return scores


def ranking_metrics(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str] | str], k: int | Iterable[int] = DEFAULT_K
) -> dict[str, int | float]:
    """MRR, MAP, RP@k, recall@k and nDCG@k averaged over the examples with gold (definitions: module docstring).

    ``references`` holds a list of gold labels per example; a bare string is read as a one-label gold list. Raises
    ValueError when the two lists differ in length or a k is below 1, and TypeError for a prediction that is a bare
    string rather than a list of labels.

    >>> ranking_metrics([["b", "a"], ["x"]], ["a", "y"], k=1)
    {'n': 2, 'skipped_no_gold': 0, 'mrr': 0.25, 'map': 0.25, 'rp@1': 0.0, 'recall@1': 0.0, 'ndcg@1': 0.0}
    """
    ks = _cutoffs(k)
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    keys = ["mrr", "map"] + [f"{name}@{cutoff}" for name in ("rp", "recall", "ndcg") for cutoff in ks]
    totals = dict.fromkeys(keys, 0.0)
    n = skipped = 0
    for ranking, gold in zip(predictions, references, strict=True):
        if isinstance(ranking, str):
            raise TypeError(f"a prediction must be a list of labels, got the string {ranking!r}")
        gold = [gold] if isinstance(gold, str) else list(gold)
        if not gold:
            skipped += 1
            continue
        n += 1
        for key, value in example_scores(ranking, gold, ks).items():
            totals[key] += value
    return {"n": n, "skipped_no_gold": skipped, **{key: total / n if n else 0.0 for key, total in totals.items()}}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Ranking(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
            reference_urls=["https://arxiv.org/abs/2505.24640"],
        )

    def _compute(
        self,
        predictions: Sequence[Sequence[str]],
        references: Sequence[Sequence[str]],
        k: int | Iterable[int] = DEFAULT_K,
    ) -> dict[str, int | float]:
        return ranking_metrics(predictions, references, k=k)
