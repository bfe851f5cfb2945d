"""WorkRB integration on tiny random models: score matrices, head routing, the model's index left alone, WorkRB's
tasks on local files agreeing with our runners where the protocols coincide, and ``labor-encoders evaluate workrb``
as a real subprocess (missing data, offline Hub ids, unknown tasks)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("workrb")

from workrb.types import ModelInputType  # noqa: E402

from labor_encoders.workrb.models import ConTeXTMatchWorkRB, JobBERTWorkRB  # noqa: E402
from labor_encoders.workrb.tasks import build_tasks, job_normalization_dataset, run  # noqa: E402
from tests.conftest import TINY_SKILLS, make_tiny_model  # noqa: E402

CLI = [sys.executable, "-m", "labor_encoders.cli"]
QUERIES = ["strong python and sql skills", "team work and communication", "we offer a bike"]
TARGETS = ["python", "data analysis", "cloud aws", "agile mentoring", "spark airflow"]
LABELS = ["python", "sql", "team work", "data analysis", "communication", "machine learning", "cloud", "agile"]
HOUSE_CSV = (
    "sentence,label\n"
    "strong python and sql skills,python\n"
    "strong python and sql skills,sql\n"
    "  strong python and sql skills ,data analysis\n"
    "team work and communication,team work\n"
    "we offer a bike,LABEL NOT PRESENT\n"
    "machine learning models in the cloud,machine learning\n"
    "machine learning models in the cloud,cloud\n"
    "agile mentoring,UNDERSPECIFIED\n"
)
# Two rows share a title once stripped ("nurse"): WorkRB merges them into one query with both golds.
TITLES_CSV = "vacancyTitle,conceptUri\nnurse,O1\nhead chef,O3\n nurse ,O2\nbread baker,O2\ncook,O3\nnurse aid,O1\n"
OCCUPATIONS_CSV = "conceptUri,preferredLabel\nO1,nurse\nO2,baker\nO3,chef\n"


def full_scores(model, texts, scoring="contextmatch") -> torch.Tensor:
    """(texts, index) scores of ``model.rank``, back in index order."""
    ranking = model.rank(texts, scoring=scoring)
    return torch.empty_like(ranking.values).scatter_(1, ranking.indices, ranking.values)


@pytest.fixture
def tiny_jobbert(tiny_encoder_dir):
    from labor_encoders.jobbert import build_jobbert
    from labor_encoders.taxonomy import Taxonomy

    titles = Taxonomy(
        labels=["nurse", "baker"], ids=["O1", "O2"], alt_labels=[[], []], descriptions=["", ""], name="tiny occupations"
    )
    model = build_jobbert(tiny_encoder_dir, titles, projection_dim=32)
    torch.manual_seed(1)
    with torch.no_grad():  # heads that differ, so that routing a side through the wrong head shows
        model.skills_head.weight.add_(0.5 * torch.randn_like(model.skills_head.weight))
    return model


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A folder in the layout of ../shared/data with tiny HOUSE and JobBERT files."""
    root = tmp_path_factory.mktemp("workrb-data")
    for name, text in {
        "skillspan-esco/house_validation_annotations.csv": HOUSE_CSV,
        "labels.txt": "\n".join(LABELS) + "\n",
        "jobbert/titles.validation.csv": TITLES_CSV,
        "esco/occupations_en.csv": OCCUPATIONS_CSV,
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


# ------------------------------------------------------------------------------------------------ the wrappers
@pytest.mark.parametrize("scoring", ["contextmatch", "mean-pool"])
def test_contextmatch_scores_the_given_targets_as_rank_would(tiny_model, scoring) -> None:
    before = (list(tiny_model.skill_labels), tiny_model.skill_embeddings.clone(), tiny_model.config.num_skills)
    wrapper = ConTeXTMatchWorkRB(tiny_model, scoring=scoring, cache_labels=False)
    got = wrapper.compute_rankings(QUERIES, TARGETS, ModelInputType.SKILL_SENTENCE, ModelInputType.SKILL_NAME)
    assert got.shape == (len(QUERIES), len(TARGETS))
    reference = copy.deepcopy(tiny_model)
    reference.set_skill_index(TARGETS)
    torch.testing.assert_close(got, full_scores(reference, QUERIES, scoring), atol=1e-5, rtol=0)
    # the model's own index is untouched
    assert tiny_model.skill_labels == before[0] == TINY_SKILLS and tiny_model.config.num_skills == before[2]
    assert torch.equal(tiny_model.skill_embeddings, before[1])


def test_contextmatch_special_tokens_override_leaves_the_model_config(tiny_model) -> None:
    assert tiny_model.config.score_special_tokens is True
    args = (QUERIES, TARGETS, ModelInputType.SKILL_SENTENCE, ModelInputType.SKILL_NAME)
    with_special = ConTeXTMatchWorkRB(tiny_model, cache_labels=False).compute_rankings(*args)
    without = ConTeXTMatchWorkRB(tiny_model, special_tokens=False, cache_labels=False).compute_rankings(*args)
    assert tiny_model.config.score_special_tokens is True
    assert not torch.allclose(with_special, without)
    reference = copy.deepcopy(tiny_model)
    reference.config.score_special_tokens = False
    reference.set_skill_index(TARGETS)
    torch.testing.assert_close(without, full_scores(reference, QUERIES), atol=1e-5, rtol=0)


def test_contextmatch_caches_encoded_targets(tiny_model, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LABOR_ENCODERS_CACHE", str(tmp_path))
    wrapper = ConTeXTMatchWorkRB(tiny_model)
    first = wrapper.encode_targets(TARGETS)
    assert len(list((tmp_path / "skill-index-cache").glob("*.safetensors"))) == 1
    torch.testing.assert_close(first, tiny_model.encode_labels(TARGETS))
    torch.testing.assert_close(wrapper.encode_targets(TARGETS), first)


def test_jobbert_routes_titles_and_skills_through_their_heads(tiny_jobbert) -> None:
    wrapper = JobBERTWorkRB(tiny_jobbert)
    titles, skills = ["nurse", "head chef"], ["python", "team work, communication", "sql"]
    got = wrapper.compute_rankings(titles, skills, ModelInputType.JOB_TITLE, ModelInputType.SKILL_NAME)
    assert got.shape == (2, 3)
    expected = tiny_jobbert.encode_titles(titles) @ tiny_jobbert.encode_skills(skills).T
    torch.testing.assert_close(got, expected)
    wrong = tiny_jobbert.encode_titles(titles) @ tiny_jobbert.encode_titles(skills).T
    assert not torch.allclose(got, wrong, atol=1e-3)
    both_titles = wrapper.compute_rankings(titles, titles, ModelInputType.JOB_TITLE, ModelInputType.JOB_TITLE)
    torch.testing.assert_close(both_titles, tiny_jobbert.encode_titles(titles) @ tiny_jobbert.encode_titles(titles).T)
    sentence = wrapper.compute_rankings(["python"], ["nurse"], ModelInputType.SKILL_SENTENCE, ModelInputType.JOB_TITLE)
    torch.testing.assert_close(
        sentence, tiny_jobbert.encode_skills(["python"]) @ tiny_jobbert.encode_titles(["nurse"]).T
    )
    with pytest.raises(ValueError, match="no head for input type"):
        wrapper.compute_rankings(["x"], ["y"], ModelInputType.PROJECT_BRIEF_STRING, ModelInputType.JOB_TITLE)


def test_models_load_from_folders(tiny_tokenizer, tiny_jobbert, tmp_path) -> None:
    """Folders here; a Hub id offline fails with a clear message (the command-line tests below, HF_HUB_OFFLINE=1)."""
    make_tiny_model(tiny_tokenizer).save_pretrained(tmp_path / "cm")
    tiny_jobbert.save_pretrained(tmp_path / "jb")
    wrapper = ConTeXTMatchWorkRB(tmp_path / "cm", cache_labels=False)
    assert wrapper.name == "labor-encoders-contextmatch-cm" and wrapper.model.skill_labels == TINY_SKILLS
    assert JobBERTWorkRB(str(tmp_path / "jb")).name == "labor-encoders-jobbert-jb"


# ------------------------------------------------------------------------------- WorkRB's tasks on local files
def test_local_skill_extraction_equals_workrbs_own_loader(data_dir, monkeypatch) -> None:
    """The local task's dataset is what WorkRB's own HouseSkillExtractRanking builds from the same rows."""
    import pandas as pd
    from datasets import Dataset
    from workrb.tasks.ranking import skill_extraction

    class FakeESCO(skill_extraction.ESCO):
        def __init__(self, *args, **kwargs) -> None:  # no files: only the vocabulary below
            pass

        def get_skills_vocabulary(self) -> list[str]:
            return list(LABELS)

    rows = pd.read_csv(data_dir / "skillspan-esco/house_validation_annotations.csv")
    monkeypatch.setattr(skill_extraction, "load_dataset", lambda name, split: Dataset.from_pandas(rows))
    monkeypatch.setattr(skill_extraction, "ESCO", FakeESCO)
    theirs = skill_extraction.HouseSkillExtractRanking(languages=["en"], split="val").datasets["en"]
    tasks, skipped = build_tasks(["house"], data=data_dir, skill_labels=data_dir / "labels.txt")
    ours = tasks["house"].datasets["en"]
    assert not skipped and tasks["house"].name == "Skill Extraction House"
    assert (ours.query_texts, ours.target_indices, ours.target_space) == (
        theirs.query_texts,
        theirs.target_indices,
        theirs.target_space,
    )
    assert len(ours.query_texts) == 3  # the stripped duplicate sentence merged, unlabelled sentences dropped


def test_workrb_metrics_equal_our_runners_on_skill_extraction(tiny_model, data_dir, tmp_path) -> None:
    from labor_encoders.evaluation.skillspan import evaluate_ranking, load_skillspan

    tasks, _ = build_tasks(["house"], data=data_dir, skill_labels=data_dir / "labels.txt")
    wrapper = ConTeXTMatchWorkRB(tiny_model, cache_labels=False)
    (result,) = run(tasks, {"contextmatch": wrapper}, tmp_path).values()
    assert (tmp_path / wrapper.name / "results.json").is_file()
    reference = copy.deepcopy(tiny_model)
    reference.set_skill_index(LABELS)
    examples = load_skillspan([data_dir / "skillspan-esco/house_validation_annotations.csv"], LABELS)
    ours = evaluate_ranking(reference, examples, k=(1, 5))
    got = result["metrics"]
    assert result["queries"] == ours["n"] == 3
    assert got["mrr"] == pytest.approx(ours["mrr"], abs=1e-4)
    assert 100 * got["rp@1"] == pytest.approx(ours["rp@1"], abs=0.01)
    assert 100 * got["rp@5"] == pytest.approx(ours["rp@5"], abs=0.01)


def test_job_normalization_merges_duplicate_titles_unless_told_not_to(tiny_jobbert, data_dir, tmp_path) -> None:
    from labor_encoders.evaluation.jobbert_titles import evaluate_titles, load_preferred_labels, load_title_benchmark

    titles, occupations = data_dir / "jobbert/titles.validation.csv", data_dir / "esco/occupations_en.csv"
    merged = job_normalization_dataset(titles, occupations)
    assert merged.query_texts.count("nurse") == 1 and len(merged.query_texts) == 5
    assert merged.target_indices[merged.query_texts.index("nurse")] == [0, 2]  # baker, nurse (sorted labels)
    every_other = job_normalization_dataset(titles, occupations, merge_duplicate_queries=False, every=2)
    assert every_other.query_texts == ["nurse", "nurse", "cook"]  # rows 0, 2, 4, stripped by WorkRB

    tasks, _ = build_tasks(["job-normalization"], data=data_dir, merge_duplicate_queries=False)
    (result,) = run(tasks, {"jobbert": JobBERTWorkRB(tiny_jobbert)}, tmp_path).values()
    pairs = load_title_benchmark(titles)
    labels, ids = load_preferred_labels(occupations)
    ours = evaluate_titles(tiny_jobbert, pairs, labels, ids)
    assert result["queries"] == ours["n"] == 6
    assert result["metrics"]["mrr"] == pytest.approx(ours["mrr"], abs=1e-4)
    assert 100 * result["metrics"]["recall@5"] == pytest.approx(ours["r@5"], abs=0.01)


def test_tasks_without_local_data_say_why(data_dir, tmp_path) -> None:
    tasks, skipped = build_tasks(["house", "techwolf", "skill-xl", "melo"], data=data_dir)
    assert not tasks
    assert "esco-v1.1.0-classification-en-csv.zip" in skipped["house"] and "--skill-labels" in skipped["house"]
    assert "offline" in skipped["techwolf"] and "--hub" in skipped["techwolf"]
    assert "missing local file" in skipped["skill-xl"] and "development_a.csv" in skipped["skill-xl"]
    assert "Avature/MELO-Benchmark" in skipped["melo"]


# ----------------------------------------------------------------------------------------------- the command
def cli(*args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_cli_runs_workrb_on_local_files(tiny_tokenizer, tiny_jobbert, data_dir, tmp_path) -> None:
    make_tiny_model(tiny_tokenizer).save_pretrained(tmp_path / "cm")  # one encoder kind: each run is a process
    tiny_jobbert.save_pretrained(tmp_path / "jb")
    out = tmp_path / "out"
    done = cli(
        "evaluate", "workrb", "--tasks", "house", "job-normalization", "techwolf",
        "--model", str(tmp_path / "cm"), "--jobbert-model", str(tmp_path / "jb"),
        "--data", str(data_dir), "--skill-labels", str(data_dir / "labels.txt"), "--output", str(out), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert set(printed["results"]) == {"house", "job-normalization"}
    assert printed["results"]["house"]["model"] == "labor-encoders-contextmatch-cm"
    assert printed["results"]["job-normalization"]["queries"] == 5  # WorkRB merges the duplicate title
    assert "techwolf" in printed["skipped"] and "WorkRB task techwolf not run" in done.stderr
    written = json.loads((out / "workrb.json").read_text())
    assert written["results"] == printed["results"] and written["merge_duplicate_queries"] is True
    assert (out / "labor-encoders-jobbert-jb" / "results.json").is_file()
    assert "| house | labor-encoders-contextmatch-cm | 3 × 8 |" in (out / "workrb.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "house", "--data", "{empty}"], "missing local file"),
        (["--tasks", "techwolf"], "offline: TechWolf/skill-extraction-techwolf"),
        (["--tasks", "no-such-task"], "unknown WorkRB task 'no-such-task'"),
        (["--tasks", "house", "--hub"], "WorkRB could not load its data"),
        (
            ["--tasks", "house", "--data", "{data}", "--skill-labels", "{data}/labels.txt", "--model", "org/none"],
            "HF_HUB_OFFLINE",
        ),
    ],
)
@pytest.mark.slow
def test_cli_errors_exit_2_with_a_message(args, message, data_dir, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    args = [a.format(empty=tmp_path / "empty", data=data_dir) for a in args]
    done = cli("evaluate", "workrb", *args, "--output", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
