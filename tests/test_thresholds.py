"""The threshold sweep and the benchmark runners: the sweep predicts what ``extract`` predicts at every τ, and the
SkillSpan runner's mean-pool baseline equals a plain sentence-transformers computation written out here."""

from __future__ import annotations

import copy
import csv
import json

import pytest
import torch

from labor_encoders.evaluation.benchmarks import (
    calibrate,
    markdown_table,
    skill_extraction,
    with_benchmark_index,
    write_results,
)
from labor_encoders.evaluation.thresholds import TAUS, best_threshold, plot_sweep, score_tables, sweep
from labor_encoders.modeling.modeling_contextmatch import split_sentences

SENTENCES = ["strong python and sql skills.", "great team work and communication!", "we offer a bike", ""]
REFERENCES = [[["python"], ["sql"]], [["team work", "communication"]], [], [["data analysis"]]]


def predicted_labels(model, sentences, tau, redundancy_filter):
    results = model.extract(sentences, threshold=tau, redundancy_filter=redundancy_filter)
    return [{skill["label"] for skill in result["skills"]} for result in results]


def test_the_sweep_before_the_filter_predicts_what_extract_predicts(tiny_model) -> None:
    from labor_encoders.evaluation.metrics.skill_extraction.skill_extraction import extraction_metrics

    tiny_model.config.prerank_candidates = 0
    tables = score_tables(tiny_model, SENTENCES)
    rows = sweep(tables, tiny_model.skill_labels, REFERENCES)
    assert [row["tau"] for row in rows] == list(TAUS) and len(rows) == 101
    for tau in (0.0, 0.2, 0.5, 0.8, 1.0):
        expected = extraction_metrics(predicted_labels(tiny_model, SENTENCES, tau, False), REFERENCES)
        assert rows[round(tau * 100)]["before_filter"] == expected
    assert rows[0]["before_filter"]["predicted"] == 3 * len(tiny_model.skill_labels)  # "" is not a sentence


def test_best_threshold_takes_the_highest_f1_then_the_lowest_tau() -> None:
    rows = [{"tau": t, "after_filter": {"f1": f1}} for t, f1 in [(0.1, 0.2), (0.2, 0.5), (0.3, 0.5), (0.4, 0.1)]]
    assert best_threshold(rows)["tau"] == 0.2


def test_calibration_writes_a_curve_and_a_table(tiny_model, tmp_path) -> None:
    result = calibrate(tiny_model, SENTENCES[:3], REFERENCES[:3])
    assert result["sentences"] == 3 and len(result["sweep"]) == 101
    assert result["best"] in result["sweep"]
    plot_sweep(result["sweep"], tmp_path / "curve.png", title="tiny")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json_path, md_path = write_results("calibration", result, tmp_path)
    assert json.loads(json_path.read_text())["results"]["best"]["tau"] == result["best"]["tau"]
    assert md_path.read_text().startswith("| τ | stage |")


@pytest.mark.real_weights
def test_the_sweep_after_the_filter_predicts_what_extract_predicts(default_model, shared_data) -> None:
    from labor_encoders.evaluation.skillspan import load_skillspan, read_labels

    model = copy.deepcopy(default_model)
    model.config.prerank_candidates = 0
    labels = read_labels(shared_data / "skillspan-esco" / "skills_en_label.txt")
    examples = load_skillspan([shared_data / "skillspan-esco" / "tech_validation_annotations.csv"], labels)
    whole = [e.sentence for e in examples if split_sentences(e.sentence) == [(0, len(e.sentence))]]
    sentences = whole[:12]  # sentences that extract() keeps in one piece, as the sweep scores them
    assert len(sentences) == 12
    taus = (0.3, 0.45, 0.5, 0.54, 0.6)
    tables = score_tables(model, sentences, taus)
    for t, tau in enumerate(taus):
        for table, expected in zip(tables, predicted_labels(model, sentences, tau, True), strict=True):
            assert {model.skill_labels[i] for i in table.filtered[t]} == expected, tau
    assert any(table.filtered[0] for table in tables)  # the check is not vacuous


@pytest.mark.real_weights
def test_the_mean_pool_baseline_on_tech_equals_a_plain_sentence_transformers_computation(
    zero_shot_model, shared_data
) -> None:
    """The protocol of ../shared/data/README.md written out plainly: sentence-transformers, cosine, MRR, RP@k."""
    from sentence_transformers import SentenceTransformer

    from labor_encoders.assets import ensure_mpnet

    folder = shared_data / "skillspan-esco"
    vocabulary = [line.strip() for line in (folder / "skills_en_label.txt").read_text().splitlines() if line.strip()]
    gold: dict[str, set[str]] = {}
    with open(folder / "tech_validation_annotations.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["label"] in ("LABEL NOT PRESENT", "UNDERSPECIFIED") or row["label"] not in vocabulary:
                continue
            gold.setdefault(row["sentence"].strip(), set()).add(row["label"])
    sentences = [s for s, labels in gold.items() if labels]
    encoder = SentenceTransformer(str(ensure_mpnet()), device="cpu")
    sentence_vectors = encoder.encode(sentences, convert_to_tensor=True, normalize_embeddings=True)
    label_vectors = encoder.encode(vocabulary, batch_size=128, convert_to_tensor=True, normalize_embeddings=True)
    order = (sentence_vectors @ label_vectors.T).argsort(dim=1, descending=True)
    mrr, rp = 0.0, {1: 0.0, 5: 0.0, 10: 0.0}
    for sentence, ranking in zip(sentences, order.tolist(), strict=True):
        ranked = [vocabulary[i] for i in ranking]
        mrr += 1 / next(rank for rank, label in enumerate(ranked, 1) if label in gold[sentence])
        for k in rp:
            rp[k] += 100 * len(set(ranked[:k]) & gold[sentence]) / min(k, len(gold[sentence]))
    plain = {"n": len(sentences), "mrr": mrr / len(sentences), **{f"rp@{k}": v / len(sentences) for k, v in rp.items()}}

    model = with_benchmark_index(copy.deepcopy(zero_shot_model), folder / "skills_en_label.txt")
    ours = skill_extraction(model, [folder / "tech_validation_annotations.csv"], ["mean-pool"])["tech"]["mean-pool"]
    assert ours["n"] == plain["n"] == 75
    assert ours["mrr"] == pytest.approx(plain["mrr"], abs=2e-3)
    for k in (1, 5, 10):
        assert ours[f"rp@{k}"] == pytest.approx(plain[f"rp@{k}"], abs=0.7)  # one tie-flip moves RP@k by <= 1.33/2
    assert "| tech | mean-pool |" in markdown_table("skill-extraction", {"tech": {"mean-pool": ours}})
    torch.testing.assert_close(torch.tensor(ours["mrr"]), torch.tensor(plain["mrr"]), atol=2e-3, rtol=0)
