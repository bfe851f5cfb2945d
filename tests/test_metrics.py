"""The ``evaluate`` metric modules of ``evaluation/metrics``: ``ranking`` and ``skill_extraction``.

Each metric is checked through ``evaluate.load(<folder>)`` (offline, caches in a temporary folder) and through its
plain function, against values worked out by hand below.
"""

from __future__ import annotations

import csv
import io
import math
import random
import socket
from collections import defaultdict
from pathlib import Path

import pytest

from labor_encoders.evaluation.jobbert_titles import recall_scores
from labor_encoders.evaluation.metrics.ranking.ranking import example_scores, ranking_metrics
from labor_encoders.evaluation.metrics.skill_extraction.skill_extraction import (
    clusters_from_skill_xl_rows,
    extraction_metrics,
    sentence_counts,
)

METRICS = Path(__file__).resolve().parents[1] / "evaluation" / "metrics"
L2, L3, L4, L5 = (1 / math.log2(i) for i in (2, 3, 4, 5))  # log2 discounts of ranks 1..4 (L2 = 1)


@pytest.fixture(scope="session")
def load_metric(tmp_path_factory):
    """``evaluate.load`` of a metric folder with the network refused and evaluate's caches in a temporary folder."""
    evaluate = pytest.importorskip("evaluate")
    cache = tmp_path_factory.mktemp("evaluate-cache")

    def refuse(*args, **kwargs):
        raise OSError("no network in these tests: evaluate.load of a local folder must not connect")

    def load(name: str):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(socket.socket, "connect", refuse)
            patch.setattr(evaluate.config, "HF_MODULES_CACHE", cache / "modules")
            patch.setattr(evaluate.config, "HF_METRICS_CACHE", cache / "metrics")
            metric = evaluate.load(str(METRICS / name), cache_dir=str(cache / "metrics"), keep_in_memory=True)
        assert (cache / "modules" / "evaluate_modules" / "metrics" / name).is_dir()  # copied here, not to ~/.cache
        return metric

    return load


# --- ranking ---------------------------------------------------------------------------------------------------------

# Q1: gold {b, d} at ranks 2 and 4 of a 4-label list. Q2: a truncated list [x, y] of 4 gold labels. Q3: no gold.
RANK_PREDICTIONS = [["a", "b", "c", "d"], ["x", "y"], ["a", "b"]]
RANK_REFERENCES = [["b", "d"], ["x", "y", "z", "w"], []]
RANK_EXPECTED = {
    "n": 2,
    "skipped_no_gold": 1,
    # Q1 first hit at rank 2 -> 1/2; Q2 at rank 1 -> 1
    "mrr": (1 / 2 + 1) / 2,
    # Q1 AP = (P@2 + P@4) / |G| = (1/2 + 2/4) / 2 = 0.5; Q2 AP = (P@1 + P@2) / 4 = (1 + 1) / 4 = 0.5
    "map": (0.5 + 0.5) / 2,
    # rp@k = 100 * hits@k / min(k, |G|)
    "rp@1": (100 * 0 / 1 + 100 * 1 / 1) / 2,  # 50
    "rp@3": (100 * 1 / 2 + 100 * 2 / 3) / 2,  # 58.33
    "rp@10": (100 * 2 / 2 + 100 * 2 / 4) / 2,  # 75: k beyond both lists, denominators min(10, |G|)
    # recall@k = 100 * hits@k / |G|
    "recall@1": (100 * 0 / 2 + 100 * 1 / 4) / 2,  # 12.5
    "recall@3": (100 * 1 / 2 + 100 * 2 / 4) / 2,  # 50
    "recall@10": (100 * 2 / 2 + 100 * 2 / 4) / 2,  # 75
    # ndcg@k = DCG@k / IDCG@k, discount 1/log2(rank + 1), IDCG from min(k, |G|) relevant items
    "ndcg@1": (0 / L2 + L2 / L2) / 2,  # 0.5
    "ndcg@3": (L3 / (L2 + L3) + (L2 + L3) / (L2 + L3 + L4)) / 2,  # Q1 hit at rank 2; Q2 hits at 1, 2 of 3 ideal
    "ndcg@10": ((L3 + L5) / (L2 + L3) + (L2 + L3) / (L2 + L3 + L4 + L5)) / 2,  # Q1 ideal 2 hits, Q2 ideal 4
}


def test_ranking_hand_computed():
    results = ranking_metrics(RANK_PREDICTIONS, RANK_REFERENCES, k=[1, 3, 10])
    assert list(results) == list(RANK_EXPECTED)
    assert results == pytest.approx(RANK_EXPECTED, rel=1e-12)
    assert results["rp@3"] == pytest.approx(58.333333, abs=1e-5)
    assert results["ndcg@3"] == pytest.approx((0.386853 + 0.765361) / 2, abs=1e-6)
    assert all(isinstance(value, float) for key, value in results.items() if key not in ("n", "skipped_no_gold"))


def test_ranking_through_evaluate_load(load_metric):
    import datasets

    metric = load_metric("ranking")
    assert metric.name == "ranking"
    assert metric.features == datasets.Features(
        {
            "predictions": datasets.Sequence(datasets.Value("string")),
            "references": datasets.Sequence(datasets.Value("string")),
        }
    )
    results = metric.compute(predictions=RANK_PREDICTIONS, references=RANK_REFERENCES, k=[1, 3, 10])
    assert results == pytest.approx(RANK_EXPECTED, rel=1e-12)
    assert results == ranking_metrics(RANK_PREDICTIONS, RANK_REFERENCES, k=[1, 3, 10])
    default = metric.compute(predictions=RANK_PREDICTIONS, references=RANK_REFERENCES)  # k = [1, 5, 10]
    assert [key for key in default if "@" in key] == [f"{m}@{k}" for m in ("rp", "recall", "ndcg") for k in (1, 5, 10)]
    assert list(metric.compute(predictions=[["a"]], references=[["a"]], k=2)) == [
        "n", "skipped_no_gold", "mrr", "map", "rp@2", "recall@2", "ndcg@2"
    ]  # fmt: skip


def test_ranking_single_label():
    # Title normalisation: one gold per query, found at ranks 1, 4, never and 20 of a 25-label ranking.
    vocabulary = [f"occupation {i}" for i in range(25)]
    ranks = [1, 4, None, 20]
    golds = [vocabulary[r - 1] if r else "unlisted occupation" for r in ranks]
    predictions = [vocabulary] * len(ranks)
    results = ranking_metrics(predictions, golds, k=[1, 5, 10])  # a bare string reference is a one-label gold
    assert results == ranking_metrics(predictions, [[gold] for gold in golds], k=[1, 5, 10])
    expected = {
        "n": 4,
        "skipped_no_gold": 0,
        "mrr": (1 + 1 / 4 + 0 + 1 / 20) / 4,  # 0.325
        "map": (1 + 1 / 4 + 0 + 1 / 20) / 4,  # one gold: AP = 1 / rank
        "rp@1": 100 * 1 / 4,  # min(k, 1) = 1: rp@k is the hit rate R@k
        "rp@5": 100 * 2 / 4,
        "rp@10": 100 * 2 / 4,
        "recall@1": 100 * 1 / 4,
        "recall@5": 100 * 2 / 4,
        "recall@10": 100 * 2 / 4,
        "ndcg@1": (1 + 0 + 0 + 0) / 4,
        "ndcg@5": (1 + L5 + 0 + 0) / 4,  # rank 4 discounted by 1/log2(5); ideal DCG is 1
        "ndcg@10": (1 + L5 + 0 + 0) / 4,
    }
    assert results == pytest.approx(expected, rel=1e-12)
    # The same as the JobBERT title runner's scores from gold ranks (which round).
    legacy = recall_scores(ranks, ks=(5, 10))
    assert legacy == {"n": 4, "mrr": round(results["mrr"], 4), "r@5": 50.0, "r@10": 50.0}


def test_ranking_no_gold_and_no_prediction():
    zeros = {"mrr": 0.0, "map": 0.0, "rp@1": 0.0, "recall@1": 0.0, "ndcg@1": 0.0}
    # Every example without gold: nothing scored.
    assert ranking_metrics([["a"], []], [[], []], k=1) == {"n": 0, "skipped_no_gold": 2, **zeros}
    assert ranking_metrics([], [], k=1) == {"n": 0, "skipped_no_gold": 0, **zeros}
    # An empty ranking scores 0 but counts.
    assert ranking_metrics([[]], [["a"]], k=1) == {"n": 1, "skipped_no_gold": 0, **zeros}
    # Half of the examples empty: the mean over both.
    assert ranking_metrics([[], ["a"]], [["a"], ["a"]], k=1)["mrr"] == 0.5


def test_ranking_k_beyond_the_list():
    # One of two gold labels in a 2-label list: rp@10 = 100 * 1 / min(10, 2) = 50, ndcg@10 = L3 / (L2 + L3).
    results = ranking_metrics([["a", "b"]], [["b", "c"]], k=[2, 10])
    assert results["rp@2"] == results["rp@10"] == 50.0
    assert results["recall@10"] == 50.0
    assert results["ndcg@10"] == pytest.approx(L3 / (L2 + L3))
    assert results["ndcg@2"] == results["ndcg@10"]


def test_ranking_duplicate_labels_count_once():
    # ["a", "a", "b", "a", "c"] is ranked as ["a", "b", "c"]: gold "b" at rank 2, not 3.
    duplicated = ranking_metrics([["a", "a", "b", "a", "c"]], [["b"]], k=[1, 2])
    assert duplicated == ranking_metrics([["a", "b", "c"]], [["b"]], k=[1, 2])
    assert duplicated["mrr"] == 0.5 and duplicated["rp@2"] == 100.0
    # A repeated gold hit is one hit: top-2 of ["b", "b", "c"] is ["b", "c"], 1 of |G| = 2 -> rp@2 = 50, not 100.
    assert ranking_metrics([["b", "b", "c"]], [["b", "x"]], k=2)["rp@2"] == 50.0
    # A repeated gold label is one gold label: |G| = 1.
    assert ranking_metrics([["x", "b"]], [["b", "b"]], k=2)["recall@2"] == 100.0
    assert example_scores(["a", "b", "a", "c"], ["c", "d"], k=3)["mrr"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("k", [0, -1, [1, 0], [], 1.5, True, [5, "10"]])
def test_ranking_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k"):
        ranking_metrics([["a"]], [["a"]], k=k)


def test_ranking_k_forms():
    assert list(ranking_metrics([["a"]], [["a"]], k=[5, 1, 5])) == [
        "n", "skipped_no_gold", "mrr", "map", "rp@5", "rp@1", "recall@5", "recall@1", "ndcg@5", "ndcg@1"
    ]  # fmt: skip
    assert list(ranking_metrics([["a"]], [["a"]], k=(3,))) == list(ranking_metrics([["a"]], [["a"]], k=3))


def test_ranking_rejects_malformed_inputs():
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        ranking_metrics([["a"], ["b"]], [["a"]])
    with pytest.raises(TypeError, match="list of labels"):
        ranking_metrics(["abc"], [["a"]])


def random_rankings(rng: random.Random, count: int, vocabulary: list[str], max_gold: int, truncate: bool):
    predictions, references = [], []
    for _ in range(count):
        ranking = rng.sample(vocabulary, len(vocabulary))
        if truncate and rng.random() < 0.5:
            ranking = ranking[: rng.randint(0, 12)]
        predictions.append(ranking)
        references.append(rng.sample(vocabulary, rng.randint(1, max_gold)))
    return predictions, references


def plain_mrr_and_rp(predictions, references, ks):
    """MRR and RP@k written out plainly, as an independent check of the metric module."""
    totals = {"mrr": 0.0, **{f"rp@{k}": 0.0 for k in ks}}
    for ranking, gold in zip(predictions, references, strict=True):
        relevant, seen = set(gold), list(dict.fromkeys(ranking))
        rank = next((i + 1 for i, label in enumerate(seen) if label in relevant), None)
        totals["mrr"] += 1.0 / rank if rank else 0.0
        for k in ks:
            totals[f"rp@{k}"] += 100.0 * len(set(seen[:k]) & relevant) / min(k, len(relevant))
    return {"n": len(references), **{key: value / len(references) for key, value in totals.items()}}


@pytest.mark.parametrize("truncate", [False, True])
def test_ranking_matches_a_plain_computation(truncate):
    rng = random.Random(20250530)
    vocabulary = [f"skill {i}" for i in range(40)]
    predictions, references = random_rankings(rng, 300, vocabulary, max_gold=6, truncate=truncate)
    ks = (1, 5, 10, 50)
    results = ranking_metrics(predictions, references, k=ks)
    plain = plain_mrr_and_rp(predictions, references, ks)
    assert plain["n"] == results["n"] == 300
    for key in ("mrr", *(f"rp@{k}" for k in ks)):
        assert results[key] == pytest.approx(plain[key], rel=1e-12), key


def test_ranking_single_label_matches_jobbert_recall_scores():
    rng = random.Random(7)
    vocabulary = [f"occupation {i}" for i in range(60)]
    predictions, references = random_rankings(rng, 500, vocabulary, max_gold=1, truncate=True)
    ranks = [
        ranking.index(gold[0]) + 1 if gold[0] in ranking else None
        for ranking, gold in zip(predictions, references, strict=True)
    ]
    results = ranking_metrics(predictions, references, k=(5, 10))
    legacy = recall_scores(ranks, ks=(5, 10))
    assert results["mrr"] == pytest.approx(legacy["mrr"], abs=5e-5 + 1e-9)
    for k in (5, 10):
        assert results[f"recall@{k}"] == results[f"rp@{k}"] == pytest.approx(legacy[f"r@{k}"], abs=5e-3 + 1e-9)


def test_ranking_ndcg_and_map_match_sklearn():
    from sklearn import metrics as sklearn_metrics  # installed with sentence-transformers

    rng = random.Random(3)
    vocabulary = [f"skill {i}" for i in range(30)]
    predictions, references = random_rankings(rng, 50, vocabulary, max_gold=5, truncate=False)
    ndcg, average_precision = defaultdict(list), []
    for ranking, gold in zip(predictions, references, strict=True):
        truth = [[int(label in gold) for label in vocabulary]]
        scores = [[len(vocabulary) - ranking.index(label) for label in vocabulary]]  # distinct: no ties
        for k in (1, 5, 10):
            ndcg[k].append(sklearn_metrics.ndcg_score(truth, scores, k=k))
        average_precision.append(sklearn_metrics.average_precision_score(truth[0], scores[0]))
    results = ranking_metrics(predictions, references, k=(1, 5, 10))
    for k in (1, 5, 10):
        assert results[f"ndcg@{k}"] == pytest.approx(sum(ndcg[k]) / len(ndcg[k]), rel=1e-9)
    assert results["map"] == pytest.approx(sum(average_precision) / len(average_precision), rel=1e-9)


# --- skill extraction ------------------------------------------------------------------------------------------------

SKILL_XL_FIXTURE = """\
ID,subset,title,sentence,relevant,cluster,skill
ad1,RANDOM,Sales Guide,About us,False,,
ad1,RANDOM,Sales Guide,"You work in a team, and sell cars.",True,1,work in teams
ad1,RANDOM,Sales Guide,"You work in a team, and sell cars.",True,1,teamwork principles
ad1,RANDOM,Sales Guide,"You work in a team, and sell cars.",True,2,sell vehicles
ad1,RANDOM,Sales Guide,"You work in a team, and sell cars.",True,2,advise customers on motor vehicles
ad1,RANDOM,Sales Guide,A driving licence is a plus.,True,,
ad2,UNIQUE,Data Engineer,About us,False,,
ad2,UNIQUE,Data Engineer,You build pipelines in Python.,True,2,data pipelines
ad2,UNIQUE,Data Engineer,You build pipelines in Python.,True,1,Python (computer programming)
ad2,UNIQUE,Data Engineer,You build pipelines in Python.,True,1,data pipelines
"""
TEAM = ("ad1", "You work in a team, and sell cars.")
PIPELINES = ("ad2", "You build pipelines in Python.")
FIXTURE_CLUSTERS = {
    ("ad1", "About us"): [],  # irrelevant: empty cluster and skill
    TEAM: [["work in teams", "teamwork principles"], ["sell vehicles", "advise customers on motor vehicles"]],
    ("ad1", "A driving licence is a plus."): [],  # relevant, but no ESCO skill
    ("ad2", "About us"): [],  # the same text in another ad is another sentence
    PIPELINES: [["Python (computer programming)", "data pipelines"], ["data pipelines"]],  # sorted by cluster number
}
FIXTURE_PREDICTIONS = {
    ("ad1", "About us"): ["communication"],  # a false positive on a sentence without gold
    TEAM: ["work in teams", "teamwork principles", "sell vehicles", "work in teams", "use Microsoft Office"],
    ("ad1", "A driving licence is a plus."): [],
    ("ad2", "About us"): [],
    PIPELINES: ["data pipelines", "SQL"],
}
FIXTURE_EXPECTED = {
    # totals: predicted 1 + 4 (the repeated "work in teams" once) + 0 + 0 + 2 = 7; correct 0 + 3 + 0 + 0 + 1 = 4;
    # gold clusters 0 + 2 + 0 + 0 + 2 = 4; covered 0 + 2 + 0 + 0 + 2 = 4 ("data pipelines" covers both clusters
    # of PIPELINES); redundant: TEAM cluster 1 has 2 predicted labels -> 1, PIPELINES' "data pipelines" counts for
    # cluster 1 only -> 0.
    "precision": 4 / 7,
    "recall": 4 / 4,
    "f1": 2 * (4 / 7) * 1 / (4 / 7 + 1),  # 8/11
    # per sentence (P, R, F1): (0, 0, 0), (3/4, 1, 6/7), (1, 1, 1), (1, 1, 1), (1/2, 1, 2/3)
    "macro_precision": (0 + 3 / 4 + 1 + 1 + 1 / 2) / 5,  # 0.65
    "macro_recall": (0 + 1 + 1 + 1 + 1) / 5,  # 0.8
    "macro_f1": (0 + 6 / 7 + 1 + 1 + 2 / 3) / 5,
    "redundancy": 1 / 7,
    "redundancy_among_correct": 1 / 4,
    "n": 5,
    "predicted": 7,
    "correct": 4,
    "gold_clusters": 4,
    "covered_clusters": 4,
    "redundant": 1,
}


def fixture_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(SKILL_XL_FIXTURE)))


def test_clusters_from_skill_xl_rows():
    clusters = clusters_from_skill_xl_rows(fixture_rows())
    assert clusters == FIXTURE_CLUSTERS
    assert list(clusters) == list(FIXTURE_CLUSTERS)  # first-seen order


def test_clusters_from_skill_xl_rows_accepts_dataset_rows_and_rejects_a_skill_without_cluster():
    rows = [
        {"ID": "ad", "sentence": " Teamwork. ", "cluster": 2.0, "skill": "b"},
        {"ID": "ad", "sentence": "Teamwork.", "cluster": 1, "skill": "a "},
        {"ID": "ad", "sentence": "Teamwork.", "cluster": 1.0, "skill": "a"},  # a repeated row adds nothing
        {"ID": "ad", "sentence": "Hello.", "cluster": float("nan"), "skill": None},
    ]
    assert clusters_from_skill_xl_rows(rows) == {("ad", "Teamwork."): [["a"], ["b"]], ("ad", "Hello."): []}
    with pytest.raises(ValueError, match="no cluster number"):
        clusters_from_skill_xl_rows([{"ID": "ad", "sentence": "s", "cluster": "", "skill": "a"}])


def test_extraction_hand_computed():
    clusters = clusters_from_skill_xl_rows(fixture_rows())
    results = extraction_metrics([FIXTURE_PREDICTIONS[key] for key in clusters], list(clusters.values()))
    assert list(results) == list(FIXTURE_EXPECTED)
    assert results == pytest.approx(FIXTURE_EXPECTED, rel=1e-12)
    assert results["f1"] == pytest.approx(8 / 11)
    assert results["macro_f1"] == pytest.approx(0.704762, abs=1e-6)
    assert sentence_counts(FIXTURE_PREDICTIONS[TEAM], FIXTURE_CLUSTERS[TEAM]) == {
        "predicted": 4, "correct": 3, "gold_clusters": 2, "covered_clusters": 2, "redundant": 1
    }  # fmt: skip


def test_extraction_through_evaluate_load(load_metric):
    import datasets

    metric = load_metric("skill_extraction")
    assert metric.name == "skill_extraction"
    assert metric.features == datasets.Features(
        {
            "predictions": datasets.Sequence(datasets.Value("string")),
            "references": datasets.Sequence(datasets.Sequence(datasets.Value("string"))),
        }
    )
    predictions = [FIXTURE_PREDICTIONS[key] for key in FIXTURE_CLUSTERS]
    references = list(FIXTURE_CLUSTERS.values())
    results = metric.compute(predictions=predictions, references=references)
    assert results == pytest.approx(FIXTURE_EXPECTED, rel=1e-12)
    assert results == extraction_metrics(predictions, references)


def test_extraction_no_gold_and_no_prediction():
    nothing = {"predicted": 0, "correct": 0, "gold_clusters": 0, "covered_clusters": 0, "redundant": 0}
    zeros = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "macro_precision": 0.0, "macro_recall": 0.0, "macro_f1": 0.0}
    no_redundancy = {"redundancy": 0.0, "redundancy_among_correct": 0.0}
    # No sentences at all.
    assert extraction_metrics([], []) == {**zeros, **no_redundancy, "n": 0, **nothing}
    # Sentences with neither gold nor prediction are perfect, micro and macro.
    ones = {key: 1.0 for key in zeros}
    assert extraction_metrics([[], []], [[], []]) == {**ones, **no_redundancy, "n": 2, **nothing}
    # Gold but no prediction: precision 0/0 on a sentence with gold scores 0, recall 0/1.
    assert extraction_metrics([[]], [[["a"]]]) == {**zeros, **no_redundancy, "n": 1, **nothing, "gold_clusters": 1}
    # Predictions but no gold: all false positives; recall 0/0 with predictions scores 0.
    assert extraction_metrics([["a", "b"]], [[]]) == {**zeros, **no_redundancy, "n": 1, **nothing, "predicted": 2}
    # Mixed: the perfect empty sentence counts 1.0 in the macro average only.
    mixed = extraction_metrics([["a"], []], [[["a"]], []])
    assert (mixed["precision"], mixed["macro_precision"], mixed["macro_f1"]) == (1.0, 1.0, 1.0)
    mixed = extraction_metrics([["x"], []], [[["a"]], []])
    assert (mixed["precision"], mixed["recall"], mixed["macro_precision"], mixed["macro_recall"]) == (0, 0, 0.5, 0.5)


def test_extraction_plain_gold_sets_and_clusters():
    # A plain gold set {a, b, x}: three requirements. "a" and "b" found, "c" wrong: P = 2/3, R = 2/3, no redundancy.
    plain = extraction_metrics([["a", "b", "c"]], [["a", "b", "x"]])
    assert plain == extraction_metrics([["a", "b", "c"]], [[["a"], ["b"], ["x"]]])
    assert (plain["precision"], plain["recall"], plain["redundancy"]) == pytest.approx((2 / 3, 2 / 3, 0.0))
    # The same labels as one cluster: one requirement, covered; "b" repeats it: redundancy 1/3, among correct 1/2.
    clustered = extraction_metrics([["a", "b", "c"]], [[["a", "b", "x"]]])
    assert (clustered["precision"], clustered["recall"], clustered["f1"]) == pytest.approx((2 / 3, 1.0, 0.8))
    assert (clustered["redundancy"], clustered["redundancy_among_correct"]) == pytest.approx((1 / 3, 1 / 2))


def test_extraction_duplicates_and_shared_labels():
    # Duplicate predictions count once; empty clusters are ignored; labels repeat within a cluster count once.
    assert extraction_metrics([["a", "a", "a"]], [[["a", "a"], []]]) == extraction_metrics([["a"]], [[["a"]]])
    # "s" is in clusters 1 and 2: it covers both but is assigned to cluster 1. With "t" (cluster 2 only), cluster 2
    # holds one assigned label: no redundancy. With "u" (cluster 1 only), cluster 1 holds two: one redundant.
    shared = [["s", "u"], ["s", "t"]]
    assert sentence_counts(["s"], shared) == {
        "predicted": 1, "correct": 1, "gold_clusters": 2, "covered_clusters": 2, "redundant": 0
    }  # fmt: skip
    assert sentence_counts(["s", "t"], shared)["redundant"] == 0
    assert sentence_counts(["s", "u"], shared)["redundant"] == 1
    assert sentence_counts(["s", "t", "u"], list(reversed(shared)))["redundant"] == 1  # now "s" counts for ["s", "t"]


def test_extraction_rejects_malformed_inputs():
    with pytest.raises(ValueError, match="1 predictions for 2 references"):
        extraction_metrics([["a"]], [[], []])
    with pytest.raises(TypeError, match="list of labels"):
        extraction_metrics(["a"], [[]])
    with pytest.raises(TypeError, match="list of clusters"):
        extraction_metrics([["a"]], ["a"])


def test_skill_xl_development_a(shared_data):
    with open(shared_data / "skill-xl" / "development_a.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    clusters = clusters_from_skill_xl_rows(rows)

    # Recount from the CSV: the labels of each (ad, sentence, cluster number), and which sentences are irrelevant.
    keys = {(row["ID"].strip(), row["sentence"].strip()) for row in rows}
    labels: dict[tuple[str, str], dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    irrelevant = set()
    for row in rows:
        key = (row["ID"].strip(), row["sentence"].strip())
        if row["cluster"]:
            labels[key][int(row["cluster"])].add(row["skill"].strip())
        if row["relevant"] == "False":
            irrelevant.add(key)

    assert len({sentence for _, sentence in clusters}) == 1129  # the data README's count: distinct sentence texts
    assert len(clusters) == len(keys) > 1129  # a text repeated in several ads is several (ad, sentence) pairs
    assert sum(len(c) for c in clusters.values()) == sum(len(by_number) for by_number in labels.values())
    assert sum(1 for c in clusters.values() if not c) == len(keys - labels.keys())
    assert all(not clusters[key] for key in irrelevant)
    for key, by_number in labels.items():
        assert [set(cluster) for cluster in clusters[key]] == [by_number[number] for number in sorted(by_number)]
        assert all(len(cluster) == len(set(cluster)) for cluster in clusters[key])
    sizes = [len(c) for c in clusters.values() if c]
    assert min(sizes) >= 1 and 1 < sum(sizes) / len(sizes) < max(sizes) <= max(max(n) for n in labels.values())

    # An oracle predicting every gold label: precision = recall = 1, redundancy = labels beyond each cluster's first
    # own label (a label already in an earlier cluster of the sentence belongs to that one).
    predictions = [sorted({label for cluster in c for label in cluster}) for c in clusters.values()]
    results = extraction_metrics(predictions, list(clusters.values()))
    assert (results["precision"], results["recall"], results["f1"], results["macro_f1"]) == (1.0, 1.0, 1.0, 1.0)
    owning = 0
    for by_number in labels.values():
        seen: set[str] = set()
        for number in sorted(by_number):
            owning += bool(by_number[number] - seen)
            seen |= by_number[number]
    assert results["predicted"] == results["correct"] == sum(len(p) for p in predictions)
    assert results["redundant"] == results["predicted"] - owning > 0
    assert results["gold_clusters"] == results["covered_clusters"]
