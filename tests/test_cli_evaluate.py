"""``labor-encoders evaluate`` and ``labor-encoders calibrate``, run as real subprocesses on tiny random models.

The scores of a randomly initialised 2-layer encoder are meaningless, so the data is designed to force values that
hold whatever the weights: a labels file holding exactly the gold labels of every kept sentence makes MRR and RP@k
perfect, a threshold above 1 predicts nothing, an occupations file of one occupation ranks every gold first. The
rest is checked for structure and ranges. Each launch costs seconds, so assertions are grouped into few launches.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "labor_encoders.cli"]

# SkillSpan-style annotations. The labels file lists exactly "python" and "sql", and every sentence that keeps a gold
# label after the protocol's filtering has both as gold: whatever the weights, both rank in the top 2 of 2.
RANKING_LABELS = ["python", "sql"]
HOUSE_CSV = """sentence,span,sub_span,label
Strong python and sql skills.,python,,python
Strong python and sql skills.,sql,,sql
We offer a bike.,,,LABEL NOT PRESENT
Experience with spark and python.,spark,,apache spark
Experience with spark and python.,python,,python
 Experience with spark and python. ,sql,,sql
Great team work.,team work,,work in teams
You will design pipelines.,,,UNDERSPECIFIED
"""
# A second file (split "mini", no published numbers): one gold of two candidates, so 0.5 <= MRR <= 1 and RP@5 = 100.
MINI_CSV = """sentence,span,sub_span,label
Knowledge of databases such as postgresql.,postgresql,,sql
Knowledge of databases such as postgresql.,postgresql,,postgresql
"""

# Skill-XL: per (ID, sentence) the clusters of equivalent labels; every gold label is in XL_LABELS (plus a distractor).
XL_LABELS = ["python", "sql", "team work", "data analysis", "machine learning"]
XL_CSV = """ID,subset,title,sentence,relevant,cluster,skill
ad1,dev,Data engineer,Strong python and sql skills.,1,1,python
ad1,dev,Data engineer,Strong python and sql skills.,1,2,sql
ad1,dev,Data engineer,Great team work and data analysis.,1,1,team work
ad1,dev,Data engineer,Great team work and data analysis.,1,1,data analysis
ad1,dev,Data engineer,We offer a bike.,0,,
ad2,dev,Analyst,Strong python and sql skills.,1,1,sql
"""
# Derived by hand from XL_CSV (4 sentences: the same text in ad2 is another sentence):
# clusters: [[python], [sql]], [[team work, data analysis]], [], [[sql]] -> 4 gold clusters, 5 gold labels.
# With every skill predicted before the filter: 4 x 5 = 20 predictions, 5 correct, 4 clusters covered, and the
# second label of the "team work" cluster is the one redundant prediction.
XL_SENTENCES = 4
XL_GOLD_CLUSTERS = 4
XL_GOLD_LABELS = 5
XL_REDUNDANT = 1

# JobBERT title benchmark against an occupations file of ONE occupation: every gold O1 ranks first, the gold O9 is
# not in the file and counts as a miss.
TITLES_CSV = "vacancyTitle,conceptUri\nnurse,O1\nhead chef,O1\n  baker  ,O1\ncook,O9\n"
OCCUPATIONS_CSV = 'conceptUri,preferredLabel,altLabels\nO1,nurse,"carer\nhealth carer"\n'
# Titles whose gold is one of the 3 occupations of the tiny JobBERT index: every gold ranks 1..3.
MODEL_TITLES_CSV = "vacancyTitle,conceptUri\nnurse,O1\nbread baker,O2\nsous chef,O3\n"
JOBBERT_OCCUPATIONS = {"O1": "nurse", "O2": "baker", "O3": "chef"}

RANKING_KEYS = {"n", "mrr", "rp@1", "rp@5", "rp@10"}
EXTRACTION_KEYS = {"precision", "recall", "f1", "redundancy", "n", "predicted", "correct", "gold_clusters"}
PUBLISHED_HOUSE = "0.530 / 51.09 / 65.84"
TAUS = [round(step / 100, 2) for step in range(101)]


def run(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    base = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=base | (env or {}))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def ranked_sentences(annotations: Path, labels: list[str]) -> int:
    """The protocol's sentence count, counted here from the CSV: stripped sentences with a gold label in ``labels``."""
    with annotations.open(encoding="utf-8", newline="") as f:
        return len({row["sentence"].strip() for row in csv.DictReader(f) if row["label"].strip() in labels})


# ------------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("evaluate")


@pytest.fixture(scope="module")
def cache_env(workdir) -> dict[str, str]:
    """Keep the encoded label indexes of ``--labels`` out of the user's cache."""
    return {"LABOR_ENCODERS_CACHE": str(workdir / "cache")}


@pytest.fixture(scope="module")
def contextmatch_dir(workdir, tiny_encoder_dir) -> Path:
    """A ConTeXT-match folder on the tiny random BERT of conftest (its own index is replaced by ``--labels``)."""
    from labor_encoders.build import build_contextmatch, save_model
    from labor_encoders.taxonomy import Taxonomy
    from tests.conftest import TINY_IDS, TINY_SKILLS

    taxonomy = Taxonomy(
        labels=list(TINY_SKILLS),
        ids=list(TINY_IDS),
        alt_labels=[[] for _ in TINY_SKILLS],
        descriptions=["" for _ in TINY_SKILLS],
        name="tiny skills",
    )
    return save_model(build_contextmatch(tiny_encoder_dir, taxonomy, threshold=0.5), workdir / "contextmatch")


@pytest.fixture(scope="module")
def jobbert_dir(workdir, tiny_encoder_dir) -> Path:
    from labor_encoders.build import save_model
    from labor_encoders.jobbert import build_jobbert
    from labor_encoders.taxonomy import Taxonomy

    titles = Taxonomy(
        labels=list(JOBBERT_OCCUPATIONS.values()),
        ids=list(JOBBERT_OCCUPATIONS),
        alt_labels=[["carer"], [], ["cook"]],
        descriptions=["", "", ""],
        name="tiny occupations",
    )
    return save_model(build_jobbert(tiny_encoder_dir, titles, projection_dim=32), workdir / "jobbert")


@pytest.fixture(scope="module")
def data(workdir) -> dict[str, Path]:
    folder = workdir / "data"
    folder.mkdir()
    return {
        "house": write(folder / "house_validation_annotations.csv", HOUSE_CSV),
        "mini": write(folder / "mini.csv", MINI_CSV),
        "labels": write(folder / "labels.txt", "\n".join(RANKING_LABELS) + "\n\n"),
        "xl": write(folder / "skill_xl.csv", XL_CSV),
        "xl_labels": write(folder / "xl_labels.txt", "\n".join(XL_LABELS) + "\n"),
        "titles": write(folder / "titles.csv", TITLES_CSV),
        "occupations": write(folder / "occupations.csv", OCCUPATIONS_CSV),
        "model_titles": write(folder / "model_titles.csv", MODEL_TITLES_CSV),
    }


def assert_scores_nonnegative(model_dir: Path, labels: list[str], sentences: list[str]) -> None:
    """Precondition of the tau = 0 checks: every match score of these sentences is >= 0, so all skills pass tau."""
    from labor_encoders.build import load_contextmatch

    model = load_contextmatch(model_dir)
    model.set_skill_index(labels)
    lowest = float(model.rank(sentences).values.min())
    assert lowest >= 0.0, f"the tiny model scores {lowest} < 0: the forced counts at tau = 0 do not hold"


# ---------------------------------------------------------------------------------------------- skill-extraction
@pytest.mark.slow
def test_skill_extraction_json_per_split_and_scoring(contextmatch_dir, data, cache_env) -> None:
    done = run(
        "evaluate",
        "skill-extraction",
        "--model",
        str(contextmatch_dir),
        "--annotations",
        str(data["house"]),
        str(data["mini"]),
        "--labels",
        str(data["labels"]),
        "--scoring",
        "context",
        "mean-pool",
        "--json",
        env=cache_env,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert list(results) == ["house", "mini"]
    n_house = ranked_sentences(data["house"], RANKING_LABELS)
    assert n_house == 2  # the LABEL NOT PRESENT, UNDERSPECIFIED and unlisted-label sentences are dropped
    for split, n in (("house", n_house), ("mini", ranked_sentences(data["mini"], RANKING_LABELS))):
        assert list(results[split]) == ["contextmatch", "mean-pool"]
        for scoring, scores in results[split].items():
            assert set(scores) >= RANKING_KEYS, (split, scoring)
            assert scores["n"] == n and 0.0 <= scores["mrr"] <= 1.0
            assert all(0.0 <= scores[f"rp@{k}"] <= 100.0 for k in (1, 5, 10))
            assert scores["mrr"] >= 1 / len(RANKING_LABELS)  # every gold is somewhere in a ranking of 2
    for scoring in ("contextmatch", "mean-pool"):
        house = results["house"][scoring]  # gold = the whole vocabulary in every sentence: perfect whatever the weights
        assert (house["mrr"], house["rp@1"], house["rp@5"], house["rp@10"]) == (1.0, 100.0, 100.0, 100.0)
        assert house["recall@1"] == 50.0 and house["map"] == 1.0
        mini = results["mini"][scoring]  # one gold among two candidates
        assert mini["n"] == 1 and mini["mrr"] in (0.5, 1.0) and mini["rp@5"] == mini["rp@10"] == 100.0


@pytest.mark.slow
def test_one_file_scored_one_way_prints_its_scores_alone(contextmatch_dir, data, cache_env) -> None:
    done = run(
        "evaluate",
        "skill-extraction",
        "--model",
        str(contextmatch_dir),
        "--annotations",
        str(data["house"]),
        "--labels",
        str(data["labels"]),
        "--json",
        env=cache_env,
    )
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout)
    assert set(scores) >= RANKING_KEYS and scores["n"] == 2 and scores["mrr"] == 1.0


@pytest.mark.slow
def test_skill_extraction_text_output_and_output_folder(contextmatch_dir, data, cache_env, tmp_path) -> None:
    output = tmp_path / "results"
    done = run(
        "evaluate",
        "skill-extraction",
        "--model",
        str(contextmatch_dir),
        "--annotations",
        str(data["house"]),
        "--labels",
        str(data["labels"]),
        "--output",
        str(output),
        env=cache_env,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in output.iterdir()) == ["skill-extraction.json", "skill-extraction.md"]
    saved = json.loads((output / "skill-extraction.json").read_text(encoding="utf-8"))
    assert saved["kind"] == "skill-extraction" and list(saved["results"]) == ["house"]
    assert saved["data"] == [data["house"].name]  # what was scored, without this machine's folders
    assert list(saved["results"]["house"]) == ["contextmatch"]  # the default --scoring
    table = (output / "skill-extraction.md").read_text(encoding="utf-8")
    assert done.stdout == table  # the default output is the Markdown table
    lines = table.splitlines()
    assert lines[0].startswith("| split | scoring | MRR | RP@1 | RP@5 | RP@10 |") and "published" in lines[0]
    assert set(lines[1]) == {"|", "-"}
    assert lines[2:] == [f"| house | contextmatch | 1.000 | 100.00 | 100.00 | 100.00 | {PUBLISHED_HOUSE} |"]


@pytest.mark.slow
def test_two_files_of_one_split_are_both_reported(contextmatch_dir, data, cache_env, tmp_path) -> None:
    test_split = write(tmp_path / "house_test_annotations.csv", MINI_CSV)
    done = run(
        "evaluate",
        "skill-extraction",
        "--model",
        str(contextmatch_dir),
        "--annotations",
        str(data["house"]),
        str(test_split),
        "--labels",
        str(data["labels"]),
        "--json",
        env=cache_env,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert sorted(scores["contextmatch"]["n"] for scores in results.values()) == [1, 2]


# ------------------------------------------------------------------------------------------------------ skill-xl
@pytest.mark.slow
def test_skill_xl_at_tau_zero_predicts_every_skill(contextmatch_dir, data, cache_env) -> None:
    sentences = ["Strong python and sql skills.", "Great team work and data analysis.", "We offer a bike."]
    assert_scores_nonnegative(contextmatch_dir, XL_LABELS, sentences)
    done = run(
        "evaluate",
        "skill-xl",
        "--model",
        str(contextmatch_dir),
        "--data",
        str(data["xl"]),
        "--labels",
        str(data["xl_labels"]),
        "--threshold",
        "0.0",
        "--json",
        env=cache_env,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert set(results) == {"threshold", "before_filter", "after_filter"} and results["threshold"] == 0.0
    before, after = results["before_filter"], results["after_filter"]
    for stage in (before, after):
        assert set(stage) >= EXTRACTION_KEYS
        assert stage["n"] == XL_SENTENCES and stage["gold_clusters"] == XL_GOLD_CLUSTERS
        assert all(0.0 <= stage[key] <= 1.0 for key in ("precision", "recall", "f1", "redundancy"))
    predicted = XL_SENTENCES * len(XL_LABELS)
    assert before["predicted"] == predicted and before["correct"] == XL_GOLD_LABELS
    assert before["covered_clusters"] == XL_GOLD_CLUSTERS and before["redundant"] == XL_REDUNDANT
    assert before["recall"] == 1.0
    assert before["precision"] == pytest.approx(XL_GOLD_LABELS / predicted, abs=1e-4)
    assert before["f1"] == pytest.approx(2 * 0.25 / 1.25, abs=1e-4)
    assert before["redundancy"] == pytest.approx(XL_REDUNDANT / predicted, abs=1e-4)
    # the filter keeps a subset, and every sentence keeps the skill that wins its first token
    assert XL_SENTENCES <= after["predicted"] <= before["predicted"]
    assert after["correct"] <= before["correct"] and after["covered_clusters"] <= before["covered_clusters"]
    assert after["redundant"] <= before["redundant"]


@pytest.mark.slow
def test_skill_xl_above_one_predicts_nothing(contextmatch_dir, data, cache_env, tmp_path) -> None:
    done = run(
        "evaluate",
        "skill-xl",
        "--model",
        str(contextmatch_dir),
        "--data",
        str(data["xl"]),
        "--labels",
        str(data["xl_labels"]),
        "--threshold",
        "1.01",
        "--output",
        str(tmp_path),
        env=cache_env,
    )
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "skill-xl.json").read_text(encoding="utf-8"))
    assert saved["kind"] == "skill-xl" and saved["results"]["threshold"] == 1.01
    for stage in ("before_filter", "after_filter"):
        scores = saved["results"][stage]
        assert scores["predicted"] == scores["correct"] == scores["covered_clusters"] == 0
        assert scores["precision"] == scores["recall"] == scores["f1"] == scores["redundancy"] == 0.0
        assert scores["n"] == XL_SENTENCES and scores["gold_clusters"] == XL_GOLD_CLUSTERS
    table = (tmp_path / "skill-xl.md").read_text(encoding="utf-8")
    assert done.stdout == table
    lines = table.splitlines()
    assert lines[0].startswith("| stage | τ | precision | recall | F1 | redundancy |") and "published" in lines[0]
    zeros = "| 1.01 | 0.0000 | 0.0000 | 0.0000 | 0.00 % | 0.4389 / 13.46 % |"
    assert lines[2:] == [f"| before filter {zeros}", f"| after filter {zeros}"]


# ---------------------------------------------------------------------------------------------- job-normalization
def test_job_normalization_against_an_occupations_file(jobbert_dir, data) -> None:
    done = run(
        "evaluate",
        "job-normalization",
        "--model",
        str(jobbert_dir),
        "--titles",
        str(data["titles"]),
        "--occupations",
        str(data["occupations"]),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout)  # one benchmark file scored one way: the scores alone
    assert set(scores) >= {"n", "mrr", "r@5", "r@10"}
    rows = TITLES_CSV.count("\n") - 1
    # 3 of the 4 golds are the file's only occupation (rank 1); O9 is not in the file: a miss
    assert scores["n"] == rows == 4 and scores["gold_not_in_index"] == 1
    assert scores["mrr"] == 0.75 and scores["r@5"] == scores["r@10"] == 75.0
    assert scores["index"] == "occupations.csv"


@pytest.mark.slow
def test_job_normalization_against_the_model_index(jobbert_dir, data, tmp_path) -> None:
    done = run(
        "evaluate",
        "job-normalization",
        "--model",
        str(jobbert_dir),
        "--titles",
        str(data["model_titles"]),
        "--output",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "job-normalization.json").read_text(encoding="utf-8"))
    scores = saved["results"]["model index"]
    # 3 occupations in the index: every gold ranks 1..3
    assert scores["n"] == 3 and scores["gold_not_in_index"] == 0 and scores["index"] == "tiny occupations"
    assert 1 / 3 <= scores["mrr"] <= 1.0 and scores["r@5"] == scores["r@10"] == 100.0
    table = (tmp_path / "job-normalization.md").read_text(encoding="utf-8")
    assert done.stdout == table
    lines = table.splitlines()
    assert lines[0] == "| index | MRR | R@5 | R@10 | published JobBERT V2 (test) |"
    assert lines[2:] == [f"| model index | {scores['mrr']:.3f} | 100.00 | 100.00 | 0.390 / 50.08 / 58.47 |"]


# ------------------------------------------------------------------------------------------------------ calibrate
def check_sweep(result: dict, sentences: int) -> None:
    """What every calibration holds: 101 taus, fewer predictions as tau grows, the filter keeping a subset, and the
    best row the first one with the highest F1 after the filter."""
    sweep = result["sweep"]
    assert result["sentences"] == sentences and [row["tau"] for row in sweep] == TAUS
    predicted = [row["before_filter"]["predicted"] for row in sweep]
    assert predicted == sorted(predicted, reverse=True)
    assert predicted[0] == sentences * len(RANKING_LABELS)  # every score is >= 0 (checked by the caller)
    assert sweep[0]["before_filter"]["recall"] == 1.0  # every gold label is a label of the index
    for row in sweep:
        assert row["after_filter"]["predicted"] <= row["before_filter"]["predicted"]
        assert row["after_filter"]["correct"] <= row["before_filter"]["correct"]
    best_f1 = max(row["after_filter"]["f1"] for row in sweep)
    assert result["best"] == next(row for row in sweep if row["after_filter"]["f1"] == best_f1)
    assert 0.0 <= result["best"]["tau"] <= 1.0


@pytest.mark.slow
def test_calibrate_writes_the_best_threshold_into_the_model(contextmatch_dir, data, cache_env, tmp_path) -> None:
    model = shutil.copytree(contextmatch_dir, tmp_path / "model")
    sentences = ranked_sentences(data["house"], RANKING_LABELS)
    with data["house"].open(encoding="utf-8", newline="") as f:
        texts = sorted({row["sentence"].strip() for row in csv.DictReader(f) if row["label"] in RANKING_LABELS})
    assert_scores_nonnegative(model, RANKING_LABELS, texts)
    config_before = json.loads((model / "config.json").read_text())
    output = tmp_path / "report"
    done = run(
        "calibrate",
        "--model",
        str(model),
        "--annotations",
        str(data["house"]),
        "--labels",
        str(data["labels"]),
        "--output",
        str(output),
        env=cache_env,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in output.iterdir()) == ["calibration.json", "calibration.md", "calibration.png"]
    saved = json.loads((output / "calibration.json").read_text(encoding="utf-8"))
    assert saved["kind"] == "calibration"
    result = saved["results"]
    check_sweep(result, sentences)
    assert result["data"] == [str(data["house"])]
    tau = result["best"]["tau"]
    config = json.loads((model / "config.json").read_text())
    assert config["threshold"] == tau
    assert {k: v for k, v in config.items() if k != "threshold"} == {
        k: v for k, v in config_before.items() if k != "threshold"
    }
    assert (output / "calibration.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    table = (output / "calibration.md").read_text(encoding="utf-8")
    assert table.splitlines()[0] == "| τ | stage | precision | recall | F1 | redundancy |"
    assert done.stdout.startswith(table)
    assert f"best τ = {tau:.2f}" in done.stdout and f"written into {model / 'config.json'}" in done.stdout


@pytest.mark.slow
def test_calibrate_no_write_reports_into_the_model_folder(contextmatch_dir, data, cache_env, tmp_path) -> None:
    model = shutil.copytree(contextmatch_dir, tmp_path / "model")
    config = (model / "config.json").read_bytes()
    done = run(
        "calibrate",
        "--model",
        str(model),
        "--annotations",
        str(data["house"]),
        "--labels",
        str(data["labels"]),
        "--no-write",
        env=cache_env,
    )
    assert done.returncode == 0, done.stderr
    assert (model / "config.json").read_bytes() == config
    for name in ("calibration.json", "calibration.md", "calibration.png"):  # --output defaults to the model folder
        assert (model / name).is_file(), name
    result = json.loads((model / "calibration.json").read_text(encoding="utf-8"))["results"]
    check_sweep(result, ranked_sentences(data["house"], RANKING_LABELS))
    assert f"best τ = {result['best']['tau']:.2f}" in done.stdout and "written into" not in done.stdout


# --------------------------------------------------------------------------------------------------------- errors
def test_evaluate_without_a_benchmark_shows_usage() -> None:
    done = run("evaluate")
    assert done.returncode == 2 and done.stdout == ""
    assert "usage:" in done.stderr and "BENCHMARK" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["evaluate", "skill-extraction", "--model", "{cm}", "--annotations", "{tmp}/missing.csv"],
            "benchmark file not found",
            id="missing-annotations",
        ),
        pytest.param(
            ["evaluate", "skill-extraction", "--model", "{cm}", "--annotations", "{tmp}/no_label.csv"],
            "lacks the column(s) label",
            id="annotations-without-label-column",
        ),
        pytest.param(
            ["evaluate", "skill-xl", "--model", "{cm}", "--data", "{tmp}/no_label.csv", "--threshold", "0.5"],
            "lacks the column(s) ID, cluster, skill",
            id="skill-xl-without-columns",
        ),
        pytest.param(
            ["evaluate", "job-normalization", "--model", "{jb}", "--titles", "{tmp}/no_label.csv"],
            "lacks the column(s) vacancyTitle, conceptUri",
            id="titles-without-columns",
        ),
        pytest.param(
            ["calibrate", "--model", "{cm}", "--annotations", "{tmp}/unlisted.csv", "--labels", "{labels}"],
            "no sentence with a gold skill",
            id="calibrate-without-gold",
        ),
        pytest.param(
            ["evaluate", "skill-extraction", "--model", "{cm}", "--annotations", "{house}", "--labels", "{tmp}/no.txt"],
            "no.txt",
            id="missing-labels-file",
        ),
        pytest.param(
            ["evaluate", "skill-extraction", "--model", "{cm}", "--annotations", "{house}", "--labels", "{tmp}/empty"],
            "label",
            id="empty-labels-file",
        ),
        pytest.param(
            ["evaluate", "job-normalization", "--model", "{jb}", "--titles", "{titles}"]
            + ["--occupations", "{tmp}/no.csv"],
            "no.csv",
            id="missing-occupations-file",
        ),
        pytest.param(
            ["evaluate", "job-normalization", "--model", "{jb}", "--titles", "{titles}", "--occupations", "{titles}"],
            "preferredLabel",
            id="occupations-without-preferred-label",
        ),
    ],
)
@pytest.mark.slow
def test_bad_data_exits_2_with_a_message(
    args, message, contextmatch_dir, jobbert_dir, data, cache_env, tmp_path
) -> None:
    write(tmp_path / "no_label.csv", "sentence,span,sub_span,tag\nStrong python.,python,,python\n")
    write(tmp_path / "unlisted.csv", "sentence,span,sub_span,label\nWe offer a bike.,bike,,cycling\n")
    write(tmp_path / "empty", "\n  \n")
    paths = {"cm": contextmatch_dir, "jb": jobbert_dir, "tmp": tmp_path, **data}
    done = run(*[arg.format(**paths) for arg in args], env=cache_env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") or "\nerror: " in done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.slow
def test_uncached_hub_dataset_offline_says_so(contextmatch_dir, cache_env, tmp_path) -> None:
    hf_home = tmp_path / "hf-home"
    hf_home.mkdir()
    env = cache_env | {"HF_HOME": str(hf_home), "HF_DATASETS_CACHE": str(hf_home / "datasets")}
    env |= {"HF_HUB_CACHE": str(hf_home / "hub"), "HUGGINGFACE_HUB_CACHE": str(hf_home / "hub")}
    done = run(
        "evaluate",
        "skill-extraction",
        "--model",
        str(contextmatch_dir),
        "--annotations",
        "nobody/no-such-dataset",
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert "error: " in done.stderr and "Traceback" not in done.stderr and done.stdout == ""
    assert "'nobody/no-such-dataset'" in done.stderr and "Hugging Face Hub" in done.stderr
    assert "HF_HUB_OFFLINE" in done.stderr  # says why it failed offline
