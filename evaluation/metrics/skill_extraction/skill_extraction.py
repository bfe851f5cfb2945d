"""Skill extraction metrics on clustered gold (the Skill-XL annotation): precision, recall, F1 and redundancy.

An ``evaluate`` metric module (``evaluate.load("evaluation/metrics/skill_extraction")``); the computation itself is
the plain function :func:`extraction_metrics`, and :func:`clusters_from_skill_xl_rows` turns Skill-XL rows into its
references. This file must stay self-contained (no relative or project imports): ``evaluate.load`` copies it alone
into its module cache.

Gold structure: per sentence, a list of clusters, each a list of equivalent skill labels. In Skill-XL the skills of one
``cluster`` number of a sentence express the same requirement in overlapping ESCO labels ("work in teams",
"teamwork principles"), so a sentence's requirements are its clusters. A plain gold set is the special case of one
label per cluster. Predictions are a set of labels per sentence (duplicates ignored).

The ConTeXT-match paper (Decorte et al. 2025, arXiv 2505.24640, Skill-XL section) reports F1 and redundancy on this
cluster structure, but its exact formulas are not restated here; this is the definition used by this metric. Per
sentence, with ``P`` the distinct predicted labels and ``C_1..C_m`` the non-empty gold clusters (empty ones are
ignored; labels deduplicated within a cluster):

- a prediction is *correct* when it is in some gold cluster of its sentence: ``correct = |P & (C_1 | ... | C_m)|``;
- a cluster is *covered* when at least one of its labels is predicted (a label that is in two clusters covers both);
- each correct prediction is assigned to the first cluster that holds it (clusters in the order given; Skill-XL
  clusters sorted by number, the most central first), ``p_j`` being the number assigned to ``C_j``; the *redundant*
  predictions are ``sum(max(p_j - 1, 0))``: every extra label predicted for one requirement. A label listed in two
  clusters counts for the first one only, so a cluster whose predicted labels all belong to an earlier cluster adds
  no redundancy (``redundant = correct - #{j : p_j > 0}``).

Micro scores sum the counts over all sentences:

- ``precision = correct / predicted``, ``recall = covered_clusters / gold_clusters``,
  ``f1 = 2 * precision * recall / (precision + recall)`` (0 when both are 0). Precision is counted in labels and
  recall in clusters, so predicting every label of a cluster keeps precision but adds redundancy.
- ``redundancy = redundant / predicted`` (0 when nothing is predicted): the share of predictions that repeat a
  requirement already predicted; ``redundancy_among_correct = redundant / correct`` (0 when nothing is correct).
- Sentences without gold clusters count: every prediction on them is a false positive (adds to ``predicted`` only).

Macro scores average per-sentence precision, recall and F1 over all sentences (``macro_f1`` is the mean of the
sentence F1 values, not the F1 of the macro means). A ratio with a zero denominator is 1.0 when the sentence is
handled perfectly (no gold clusters and no prediction) and 0.0 otherwise:

- no gold, no prediction: precision = recall = F1 = 1.0;
- no gold, some predictions: precision 0.0, recall 0.0, F1 0.0;
- gold, no prediction: precision 0.0, recall 0.0, F1 0.0.

The same rule holds for the micro ``precision`` and ``recall`` of a set of sentences with no gold and no prediction
at all (1.0); with no sentences (``n = 0``) every score is 0.0. Values are not rounded (callers round).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

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
"""

_DESCRIPTION = """\
Skill extraction metrics over predicted skill sets per sentence, against gold structured as clusters of equivalent
skill labels (the Skill-XL annotation, where the skills of one cluster express the same requirement). A prediction
is correct when it is in some gold cluster of its sentence; precision = correct / predicted; recall = covered
clusters / gold clusters (a cluster is covered when one of its labels is predicted); F1 is their harmonic mean.
Redundant predictions are, per cluster, the predicted labels beyond the first (a label in two clusters counts for the
first); redundancy = redundant / predicted. Micro scores sum counts over sentences, macro scores average
per-sentence scores. Sentences without gold count: their predictions are false positives.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `str`): per sentence, the predicted skill labels (a set: duplicates ignored).
    references (`list` of `list` of `list` of `str`): per sentence, the gold clusters, each a list of equivalent
        skill labels; `[]` for a sentence without gold. A plain gold set is one label per cluster:
        `[[label] for label in gold]`.

Returns:
    precision (`float`): micro precision, correct / predicted, 0..1.
    recall (`float`): micro recall, covered clusters / gold clusters, 0..1.
    f1 (`float`): harmonic mean of `precision` and `recall`.
    macro_precision, macro_recall, macro_f1 (`float`): per-sentence scores averaged over sentences (a sentence with
        neither gold nor prediction scores 1.0, a zero denominator otherwise 0.0).
    redundancy (`float`): redundant / predicted, 0..1.
    redundancy_among_correct (`float`): redundant / correct, 0..1.
    n (`int`): sentences.
    predicted, correct, gold_clusters, covered_clusters, redundant (`int`): the summed counts.

Examples:
    Sentence 1 has two requirements; "work in teams" and "teamwork principles" both cover the first (one is
    redundant), "python" is wrong. Sentence 2 has no gold but a prediction, sentence 3 neither.

    >>> import tempfile
    >>> predictions = [["work in teams", "teamwork principles", "python"], ["sell vehicles"], []]
    >>> references = [[["work in teams", "teamwork principles"], ["sell vehicles"]], [], []]
    >>> with tempfile.TemporaryDirectory() as cache:
    ...     metric = SkillExtraction(cache_dir=cache, keep_in_memory=True)
    ...     results = metric.compute(predictions=predictions, references=references)
    >>> {key: round(value, 4) for key, value in results.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'macro_precision': 0.5556, 'macro_recall': 0.5,
     'macro_f1': 0.5238, 'redundancy': 0.25, 'redundancy_among_correct': 0.5, 'n': 3, 'predicted': 4, 'correct': 2,
     'gold_clusters': 2, 'covered_clusters': 1, 'redundant': 1}

    The plain function gives the same without `evaluate`:

    >>> extraction_metrics(predictions, references) == results
    True
"""

COUNT_KEYS = ("predicted", "correct", "gold_clusters", "covered_clusters", "redundant")


def _clusters(reference: Iterable[Sequence[str] | str]) -> list[list[str]]:
    """Non-empty clusters with their labels deduplicated; a bare string is a one-label cluster."""
    if isinstance(reference, str):
        raise TypeError(f"a reference must be a list of clusters, got the string {reference!r}")
    clusters = [[cluster] if isinstance(cluster, str) else list(dict.fromkeys(cluster)) for cluster in reference]
    return [cluster for cluster in clusters if cluster]


def sentence_counts(prediction: Iterable[str], reference: Iterable[Sequence[str] | str]) -> dict[str, int]:
    """``predicted``, ``correct``, ``gold_clusters``, ``covered_clusters`` and ``redundant`` of one sentence.

    ``reference`` is the sentence's list of gold clusters (definitions: module docstring).

    >>> sentence_counts(["a", "b", "c", "a"], [["a", "b"], ["b", "d"], ["e"]])
    {'predicted': 3, 'correct': 2, 'gold_clusters': 3, 'covered_clusters': 2, 'redundant': 1}
    """
    if isinstance(prediction, str):
        raise TypeError(f"a prediction must be a list of labels, got the string {prediction!r}")
    predicted = set(prediction)
    clusters = _clusters(reference)
    owner: dict[str, int] = {}
    for index, cluster in enumerate(clusters):
        for label in cluster:
            owner.setdefault(label, index)
    assigned = [0] * len(clusters)
    for label in predicted:
        if label in owner:
            assigned[owner[label]] += 1
    return {
        "predicted": len(predicted),
        "correct": sum(assigned),
        "gold_clusters": len(clusters),
        "covered_clusters": sum(1 for cluster in clusters if predicted.intersection(cluster)),
        "redundant": sum(max(count - 1, 0) for count in assigned),
    }


def _ratio(numerator: int, denominator: int, perfect: bool) -> float:
    """``numerator / denominator``; for a zero denominator 1.0 when ``perfect`` (nothing to find, nothing found)."""
    if denominator:
        return numerator / denominator
    return 1.0 if perfect else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def extraction_metrics(
    predictions: Sequence[Iterable[str]], references: Sequence[Iterable[Sequence[str] | str]]
) -> dict[str, int | float]:
    """Micro and macro precision, recall and F1, redundancy and the summed counts (definitions: module docstring).

    ``references`` holds, per sentence, its gold clusters (lists of equivalent labels); a cluster given as a bare
    string is a one-label cluster. So for one sentence ``[["a", "b"]]`` is one requirement with two equivalent
    labels, while ``[["a"], ["b"]]`` and the plain gold set ``["a", "b"]`` are two requirements. Raises ValueError
    when the two lists differ in length, TypeError for a prediction or reference that is a bare string.

    >>> extraction_metrics([["a", "b"], ["c"]], [["a", "x"], []])["precision"]  # "a" right, "b" and "c" wrong
    0.3333333333333333
    """
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    return metrics_from_counts(
        [sentence_counts(prediction, reference) for prediction, reference in zip(predictions, references, strict=True)]
    )


def metrics_from_counts(per_sentence: Sequence[dict[str, int]]) -> dict[str, int | float]:
    """The metrics of :func:`extraction_metrics` from per-sentence counts (as :func:`sentence_counts` returns them).

    A threshold sweep uses it directly: only the predictions that are gold labels change ``correct``, ``covered``
    and ``redundant``, so it can count those and set ``predicted`` without listing every prediction.

    >>> metrics_from_counts([sentence_counts(["a"], [["a"]]), sentence_counts([], [])])["macro_f1"]
    1.0
    """
    totals = dict.fromkeys(COUNT_KEYS, 0)
    macro = {"macro_precision": 0.0, "macro_recall": 0.0, "macro_f1": 0.0}
    for counts in per_sentence:
        for key in COUNT_KEYS:
            totals[key] += counts[key]
        perfect = counts["predicted"] == 0 and counts["gold_clusters"] == 0
        precision = _ratio(counts["correct"], counts["predicted"], perfect)
        recall = _ratio(counts["covered_clusters"], counts["gold_clusters"], perfect)
        macro["macro_precision"] += precision
        macro["macro_recall"] += recall
        macro["macro_f1"] += _f1(precision, recall)
    n = len(per_sentence)
    if n:
        perfect = totals["predicted"] == 0 and totals["gold_clusters"] == 0
        precision = _ratio(totals["correct"], totals["predicted"], perfect)
        recall = _ratio(totals["covered_clusters"], totals["gold_clusters"], perfect)
    else:
        precision = recall = 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        **{key: value / n if n else 0.0 for key, value in macro.items()},
        "redundancy": _ratio(totals["redundant"], totals["predicted"], perfect=False),
        "redundancy_among_correct": _ratio(totals["redundant"], totals["correct"], perfect=False),
        "n": n,
        **totals,
    }


def _cluster_id(value) -> str | None:
    """A row's cluster number as text; None for an empty cell (``""``, None or NaN)."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            value = int(value)
    text = str(value).strip()
    return text or None


def clusters_from_skill_xl_rows(rows: Iterable[Mapping[str, object]]) -> dict[tuple[str, str], list[list[str]]]:
    """Gold clusters per ``(ID, sentence)`` from Skill-XL rows (columns ``ID, sentence, cluster, skill``, ...).

    Skill-XL has one row per (sentence, gold skill); a sentence without gold skill (irrelevant, or relevant with no
    ESCO skill) has one row with empty ``cluster`` and ``skill`` and maps to ``[]``. The key is the ad ``ID`` and the
    stripped sentence, in first-seen order: the same sentence text in two ads is two sentences (their gold may
    differ), repeated rows of one ad merge. Clusters are sorted by number (numeric ids ascending, others after in
    first-seen order), labels deduplicated in first-seen order. Rows may be ``csv.DictReader`` dicts or rows of a
    ``datasets.Dataset`` (a numeric or NaN ``cluster`` is accepted). A skill without a cluster number raises
    ValueError.

    >>> rows = [
    ...     {"ID": "ad1", "sentence": "Team player, sells cars.", "cluster": "2", "skill": "sell vehicles"},
    ...     {"ID": "ad1", "sentence": "Team player, sells cars.", "cluster": "1", "skill": "work in teams"},
    ...     {"ID": "ad1", "sentence": "Team player, sells cars.", "cluster": "1", "skill": "teamwork principles"},
    ...     {"ID": "ad1", "sentence": "About us", "cluster": "", "skill": ""},
    ... ]
    >>> clusters_from_skill_xl_rows(rows)  # doctest: +NORMALIZE_WHITESPACE
    {('ad1', 'Team player, sells cars.'): [['work in teams', 'teamwork principles'], ['sell vehicles']],
     ('ad1', 'About us'): []}
    """
    sentences: dict[tuple[str, str], dict[str, list[str]]] = {}
    for row in rows:
        key = (str(row["ID"]).strip(), str(row["sentence"]).strip())
        clusters = sentences.setdefault(key, {})
        cluster = _cluster_id(row.get("cluster"))
        skill = row.get("skill")
        skill = "" if skill is None or (isinstance(skill, float) and math.isnan(skill)) else str(skill).strip()
        if cluster is None:
            if skill:
                raise ValueError(f"skill {skill!r} of sentence {key} has no cluster number")
            continue
        if skill:
            labels = clusters.setdefault(cluster, [])
            if skill not in labels:
                labels.append(skill)

    def order(item: tuple[int, str]) -> tuple[int, int]:
        seen, cluster = item
        return (0, int(cluster)) if cluster.isdigit() else (1, seen)

    return {
        key: [clusters[cluster] for _, cluster in sorted(enumerate(clusters), key=order)]
        for key, clusters in sentences.items()
    }


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SkillExtraction(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Sequence(datasets.Value("string"))),
                }
            ),
            reference_urls=["https://arxiv.org/abs/2505.24640", "https://huggingface.co/datasets/TechWolf/Skill-XL"],
        )

    def _compute(
        self, predictions: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]]
    ) -> dict[str, int | float]:
        return extraction_metrics(predictions, references)
