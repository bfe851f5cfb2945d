"""The embedded default JobBERT model on the real all-mpnet-base-v2 weights and the JobBERT titles validation split.

Its heads are the shipped trained heads (``labor_encoders/weights/jobbert-default``), so on the paper's protocol it
must reproduce the validation figures their ``record.json`` states (measured by the training on cached vectors) and
beat DESIGN.md's measurement of the untrained backbone (MRR 0.334, R@5 43.66, R@10 51.21); the normalisation index
(ESCO v1.2 preferred and recovered alternative labels) must do better than preferred labels alone.
"""

from __future__ import annotations

import json

import pytest
import torch

from labor_encoders.evaluation.jobbert_titles import (
    evaluate_titles,
    load_preferred_labels,
    load_title_benchmark,
    preferred_rows,
)
from tests.test_jobbert import JOBBERT_OUTPUTS
from tests.test_remote_code import load_in_fresh_process

pytestmark = pytest.mark.real_weights

# DESIGN.md, "JobBERT titles, validation split": plain cosine of the untrained backbone's mean-pooled vectors.
REFERENCE = {"mrr": 0.334, "r@5": 43.66, "r@10": 51.21}


@pytest.fixture(scope="module")
def title_pairs(shared_data):
    return load_title_benchmark(shared_data / "jobbert" / "titles.validation.csv")


@pytest.fixture(scope="module")
def title_vectors(default_jobbert, title_pairs):
    """The 15,463 validation titles through the title head, encoded once for every index scored below."""
    return default_jobbert.encode_titles([title for title, _ in title_pairs])


@pytest.fixture(scope="module")
def record():
    from labor_encoders.adapter import verify
    from labor_encoders.jobbert import default_heads_dir

    return verify(default_heads_dir())


def test_the_default_is_the_backbone_with_the_shipped_heads_over_esco_occupations(
    default_jobbert, default_jobbert_dir, record
) -> None:
    from labor_encoders.assets import cache_dir

    config = json.loads((default_jobbert_dir / "config.json").read_text())
    assert config["trained"] is True and config["taxonomy"] == "ESCO v1.2 occupations"
    assert json.loads((default_jobbert_dir / "training_args.json").read_text())["files"] == record["files"]
    assert config["projection_dim"] == 1024 and config["title_head_activation"] == "identity"
    assert str(cache_dir()) not in (default_jobbert_dir / "config.json").read_text()
    assert len(set(default_jobbert.title_ids)) == 3039
    assert default_jobbert.config.num_titles > 3039 * 5  # alternative labels are in the index


def test_the_paper_protocol_reproduces_the_recorded_validation_and_beats_the_backbone(
    default_jobbert, title_pairs, title_vectors, shared_data, record
) -> None:
    labels, ids = load_preferred_labels(shared_data / "esco" / "occupations_en.csv")
    assert len(title_pairs) == 15_463 and len(labels) == 2_942
    result = evaluate_titles(default_jobbert, title_pairs, labels, ids, title_vectors)
    assert result["gold_not_in_index"] == 0
    recorded = record["validation"]["trained"]
    assert record["validation"]["untrained"]["mrr"] == pytest.approx(REFERENCE["mrr"], abs=0.0015)
    assert result["mrr"] == pytest.approx(recorded["mrr"], abs=0.002)
    assert result["r@5"] == pytest.approx(recorded["r@5"], abs=0.2)
    assert result["r@10"] == pytest.approx(recorded["r@10"], abs=0.2)
    assert result["mrr"] > REFERENCE["mrr"] + 0.01 and result["r@10"] > REFERENCE["r@10"] + 1.0


def test_alternative_labels_make_normalize_better_than_preferred_labels_alone(
    default_jobbert, title_pairs, title_vectors
) -> None:
    with_alternatives = evaluate_titles(default_jobbert, title_pairs, queries=title_vectors)
    rows = preferred_rows(default_jobbert)
    assert len(rows) == 3039
    preferred = default_jobbert.title_embeddings[rows]
    only_preferred = evaluate_titles(
        default_jobbert,
        title_pairs,
        queries=title_vectors,
        index=preferred,
        ids=[default_jobbert.title_ids[i] for i in rows],
    )
    # trained on ESCO label pairs, the title head already brings preferred labels closer to what the alternatives
    # catch: the lift is smaller than with the untrained backbone (0.351 vs 0.328), measured 0.362 vs 0.352
    assert with_alternatives["mrr"] > only_preferred["mrr"] + 0.005
    assert with_alternatives["r@10"] > only_preferred["r@10"] + 1.0


def test_normalize_finds_the_obvious_occupations(default_jobbert) -> None:
    results = default_jobbert.normalize(["Senior Java Developer", "registered nurse", "truck driver"], top_k=5)
    expected = ["developer", "nurse", "driver"]
    for result, word in zip(results, expected, strict=True):
        labels = [m["label"] + " " + m["matched_label"] for m in result["matches"]]
        assert any(word in label for label in labels), (result["title"], labels)
        assert all(m["id"].startswith("http://data.europa.eu/esco/occupation/") for m in result["matches"])


def test_an_exact_esco_name_comes_first_on_the_real_index(default_jobbert) -> None:
    # "data scientist" is an occupation of its own and an alternative label of "bioinformatics scientist"
    for title in ("data scientist", "Data  Scientist"):
        first = default_jobbert.normalize([title], top_k=3)[0]["matches"][0]
        assert first["label"] == "data scientist", (title, first)


def test_the_default_loads_with_automodel_in_a_process_without_the_project(
    default_jobbert, default_jobbert_dir, tmp_path
) -> None:
    titles = ["data scientist", "", "Kassierer (m/w/d)"]
    loaded = load_in_fresh_process(default_jobbert_dir, tmp_path, JOBBERT_OUTPUTS, titles)
    torch.testing.assert_close(torch.tensor(loaded["titles"]), default_jobbert.encode_titles(titles), atol=1e-5, rtol=0)
    assert loaded["normalize"] == default_jobbert.normalize(titles, top_k=2)
