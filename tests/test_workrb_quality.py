"""WorkRB's evaluation of the default models on the local validation tasks agrees with our own runners where the
two protocols coincide (real weights).

- HOUSE and TECH with the benchmark's 13,896-label file as targets: WorkRB's metrics equal
  ``labor-encoders evaluate skill-extraction`` (same sentences, same gold, same ranking).
- JobBERT titles with every row kept (WorkRB's ``DuplicateStrategy.ALLOW``): WorkRB's MRR and recall@k equal
  ``evaluate job-normalization``. The full split is 15,463 titles (minutes on a 2-core CPU); this test scores a
  deterministic subset, every 10th row (1,547 titles), against all 2,942 occupations.
- WorkRB's own protocol (13,891 ESCO v1.1.0 labels, merged duplicate titles) is run too, and differs only slightly.
"""

from __future__ import annotations

import copy

import pytest

pytest.importorskip("workrb")

from labor_encoders.evaluation.benchmarks import with_benchmark_index  # noqa: E402
from labor_encoders.evaluation.jobbert_titles import evaluate_titles, load_preferred_labels, load_title_benchmark  # noqa: E402
from labor_encoders.evaluation.skillspan import evaluate_ranking, load_skillspan  # noqa: E402
from labor_encoders.workrb.models import ConTeXTMatchWorkRB, JobBERTWorkRB  # noqa: E402
from labor_encoders.workrb.tasks import build_tasks, job_normalization_dataset, local_task, run  # noqa: E402

pytestmark = pytest.mark.real_weights
EVERY = 10  # job normalisation: every 10th title of the validation split


@pytest.fixture(scope="module")
def labels_file(shared_data):
    return shared_data / "skillspan-esco" / "skills_en_label.txt"


@pytest.fixture(scope="module")
def contextmatch(default_model):
    return ConTeXTMatchWorkRB(default_model)


def test_skill_extraction_agrees_with_our_runner_on_the_same_targets(
    default_model, contextmatch, shared_data, labels_file, tmp_path
) -> None:
    tasks, skipped = build_tasks(["house", "tech"], data=shared_data, skill_labels=labels_file)
    assert not skipped
    results = run(tasks, {"contextmatch": contextmatch}, tmp_path)
    ours_model = with_benchmark_index(copy.deepcopy(default_model), labels_file)
    assert default_model.config.num_skills == 13_939  # the wrapper left the default's own index alone
    for split, sentences in (("house", 61), ("tech", 75)):
        examples = load_skillspan(
            [shared_data / "skillspan-esco" / f"{split}_validation_annotations.csv"], ours_model.skill_labels
        )
        ours = evaluate_ranking(ours_model, examples)
        got = results[split]
        assert got["queries"] == ours["n"] == sentences and got["targets"] == 13_896
        assert got["metrics"]["mrr"] == pytest.approx(ours["mrr"], abs=2e-4)
        for k in (1, 5, 10):
            assert 100 * got["metrics"][f"rp@{k}"] == pytest.approx(ours[f"rp@{k}"], abs=0.02)


def test_workrbs_esco_label_list_keeps_the_sentences_and_moves_little(contextmatch, shared_data, tmp_path) -> None:
    tasks, skipped = build_tasks(["house", "tech"], data=shared_data)
    assert not skipped
    results = run(tasks, {"contextmatch": contextmatch}, tmp_path)
    assert [results[s]["queries"] for s in ("house", "tech")] == [61, 75]
    assert results["house"]["targets"] == results["tech"]["targets"] == 13_891
    assert 0.3 < results["house"]["metrics"]["mrr"] < 0.8 and 0.3 < results["tech"]["metrics"]["mrr"] < 0.8


def test_job_normalization_agrees_with_our_runner_when_every_row_counts(default_jobbert, shared_data, tmp_path) -> None:
    titles, occupations = shared_data / "jobbert" / "titles.validation.csv", shared_data / "esco" / "occupations_en.csv"
    every_row = local_task(
        "JobBERTJobNormRanking",
        lambda: job_normalization_dataset(titles, occupations, merge_duplicate_queries=False, every=EVERY),
        "every 10th row",
    )
    merged = job_normalization_dataset(titles, occupations, every=EVERY)
    (result,) = run({"job-normalization": every_row}, {"jobbert": JobBERTWorkRB(default_jobbert)}, tmp_path).values()
    pairs = load_title_benchmark(titles)[::EVERY]
    labels, ids = load_preferred_labels(occupations)
    ours = evaluate_titles(default_jobbert, pairs, labels, ids)
    assert result["queries"] == ours["n"] == 1547 and result["targets"] == 2942
    assert len(merged.query_texts) < 1547  # WorkRB's protocol merges equal (stripped) titles
    assert result["metrics"]["mrr"] == pytest.approx(ours["mrr"], abs=2e-4)
    assert 100 * result["metrics"]["recall@5"] == pytest.approx(ours["r@5"], abs=0.02)
    assert 100 * result["metrics"]["recall@10"] == pytest.approx(ours["r@10"], abs=0.02)
