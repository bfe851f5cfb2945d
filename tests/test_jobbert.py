"""JobBERT V2 mechanics on tiny models: the two heads, identity start, title index, save/load, Hub contract."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from labor_encoders.build import BuildError, save_model
from labor_encoders.jobbert import load_jobbert, set_title_taxonomy, title_index_rows
from labor_encoders.modeling.configuration_jobbert import JobBERTConfig
from labor_encoders.modeling.encoder_utils import mean_pool
from labor_encoders.modeling.modeling_jobbert import JobBERTModel
from labor_encoders.taxonomy import Taxonomy
from tests.conftest import tiny_encoder_config
from tests.test_remote_code import load_in_fresh_process

TITLES = Taxonomy(
    labels=["data analysis", "python", "project manager"],
    ids=["urn:occ:analyst", "urn:occ:developer", "urn:occ:manager"],
    alt_labels=[["data skills"], ["java", "sql"], ["manage project", "team work"]],
    descriptions=["", "", ""],
    name="tiny titles",
)
QUERIES = ["python", "sql skills", "manage a project team", "", "we offer a bike"]


def make_tiny_jobbert(tokenizer, seed: int = 0, **config) -> JobBERTModel:
    torch.manual_seed(seed)
    config.setdefault("projection_dim", 48)
    model = JobBERTModel(JobBERTConfig(encoder_config=tiny_encoder_config("bert", len(tokenizer)), **config)).eval()
    model.tokenizer = tokenizer
    set_title_taxonomy(model, TITLES)
    return model


@pytest.fixture(scope="module")
def _jobbert_session(tiny_tokenizer) -> JobBERTModel:
    return make_tiny_jobbert(tiny_tokenizer)


@pytest.fixture
def jobbert(_jobbert_session) -> JobBERTModel:
    return copy.deepcopy(_jobbert_session)


def pooled_cosines(model: JobBERTModel, texts: list[str]) -> torch.Tensor:
    batch = model.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.encoder(**batch)[0]
    pooled = torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1)
    return pooled @ pooled.T


def test_both_sides_give_unit_vectors_of_the_projection_width(jobbert) -> None:
    titles = jobbert.encode_titles(["python", "data analysis", ""])
    skills = jobbert.encode_skills([["python", "sql"], "team work", []])
    for vectors in (titles, skills):
        assert vectors.shape == (3, 48) and vectors.dtype == torch.float32
        torch.testing.assert_close(vectors.norm(dim=1), torch.ones(3))
    assert jobbert.encode_titles([]).shape == (0, 48)


def test_no_call_skips_the_heads(jobbert) -> None:
    ids = jobbert.tokenizer(["python"], return_tensors="pt")["input_ids"]
    with pytest.raises(ValueError, match="side='title'.*encode_titles"):
        jobbert(ids)
    with pytest.raises(ValueError, match="side must be one of"):
        jobbert(ids, side="anchor")
    with pytest.raises(ValueError, match="side must be one of"):
        jobbert.encode(["python"], side="query")
    with pytest.raises(TypeError, match="list of texts"):
        jobbert.encode_titles("python")
    assert jobbert(ids, side="title").embeddings.shape == (1, 48)


def test_identity_heads_rank_titles_exactly_like_the_backbone(jobbert) -> None:
    texts = ["python", "data analysis", "manage project team work", "java and sql"]
    projected = jobbert.encode_titles(texts)
    torch.testing.assert_close(projected @ projected.T, pooled_cosines(jobbert, texts), atol=1e-5, rtol=1e-5)
    assert torch.count_nonzero(projected[:, 32:]) == 0  # the extra dimensions start at zero
    assert jobbert.config.trained is False


def test_the_two_sides_use_their_own_heads(jobbert) -> None:
    titles, skills = jobbert.encode_titles(["python"]), jobbert.encode_skills([["python"]])
    torch.testing.assert_close(titles, skills)  # both identity at the start
    with torch.no_grad():
        jobbert.skills_head.weight.add_(0.1 * torch.randn_like(jobbert.skills_head.weight))
    assert not torch.allclose(jobbert.encode_skills([["python"]]), skills)
    torch.testing.assert_close(jobbert.encode_titles(["python"]), titles)


def test_a_skill_list_equals_its_comma_joined_string(jobbert) -> None:
    as_list = jobbert.encode_skills([["python", " sql", ""], ["team work"]])
    as_text = jobbert.encode_skills(["python, sql", "team work"])
    torch.testing.assert_close(as_list, as_text)


def test_gradients_reach_the_encoder_and_only_the_head_of_the_side_used(jobbert) -> None:
    jobbert.train()
    batch = jobbert.tokenizer(["python", "sql"], padding=True, return_tensors="pt")
    out = jobbert(batch["input_ids"], batch["attention_mask"], side="skills")
    out.embeddings.sum().backward()
    assert jobbert.skills_head.weight.grad is not None and jobbert.skills_head.weight.grad.abs().sum() > 0
    assert jobbert.title_head.weight.grad is None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in jobbert.encoder.parameters())


def test_normalize_scores_an_occupation_as_its_best_label(jobbert) -> None:
    results = jobbert.normalize(QUERIES, top_k=2)
    assert [r["title"] for r in results] == QUERIES
    assert results[3]["matches"] == []  # the empty title
    queries = jobbert.encode_titles([q for q in QUERIES if q])
    labels = jobbert.encode_titles(jobbert.title_labels)
    scores = queries @ labels.T
    for result, row in zip([r for r in results if r["title"]], scores, strict=True):
        per_concept = {}
        for score, label, concept in zip(row.tolist(), jobbert.title_labels, jobbert.title_ids, strict=True):
            if score > per_concept.get(concept, (-2.0, ""))[0]:
                per_concept[concept] = (score, label)
        expected = sorted(per_concept.items(), key=lambda item: -item[1][0])[:2]
        assert [m["id"] for m in result["matches"]] == [concept for concept, _ in expected]
        for match, (concept, (score, label)) in zip(result["matches"], expected, strict=True):
            assert match["score"] == pytest.approx(score, abs=1e-4)
            assert match["matched_label"] == label
            assert match["label"] == TITLES.labels[TITLES.ids.index(concept)]  # the concept's preferred label
    assert jobbert.normalize("python", top_k=1)[0]["matches"][0]["id"] == "urn:occ:developer"


def test_normalize_handles_odd_titles_without_crashing(jobbert) -> None:
    odd = ["   ", "python " * 200, "👩‍💻🚀", "Développeur·se Python (m/w/d) ✨", "\n"]
    results = jobbert.normalize(odd, top_k=10)
    assert [len(r["matches"]) for r in results] == [0, 3, 3, 3, 0]  # 3 concepts in the index
    long_title = results[1]["matches"]  # 1,400 characters: truncated to max_seq_length tokens, not lost
    fitting = "python " * (jobbert.config.max_seq_length - 2)  # the same tokens minus [CLS] and [SEP]
    assert long_title == jobbert.normalize([fitting], top_k=10)[0]["matches"]
    with pytest.raises(ValueError, match="top_k"):
        jobbert.normalize(["python"], top_k=0)


def test_title_index_rows_keep_every_label_once_per_concept() -> None:
    titles = Taxonomy(["a", "b"], ["1", "2"], [["x", "a", "x"], ["x"]], ["", ""], "t")
    labels, ids, names = title_index_rows(titles)
    assert list(zip(labels, ids, strict=True)) == [("a", "1"), ("x", "1"), ("b", "2"), ("x", "2")]
    assert names == {"1": "a", "2": "b"}


def test_bad_title_indexes_are_refused(jobbert) -> None:
    with pytest.raises(ValueError, match="no empty labels"):
        jobbert.set_title_index(["python", " "])
    with pytest.raises(ValueError, match="2 labels but 1 ids"):
        jobbert.set_title_index(["python", "sql"], ["a"])
    with pytest.raises(ValueError, match="appears twice"):
        jobbert.set_title_index(["python", "python"], ["a", "a"])
    empty = make_tiny_jobbert(jobbert.tokenizer)
    empty.config.num_titles = 0
    with pytest.raises(RuntimeError, match="set_title_index"):
        empty.normalize(["python"])


def test_save_and_load_round_trip_heads_index_and_config(tiny_tokenizer, tmp_path) -> None:
    model = make_tiny_jobbert(tiny_tokenizer, title_head_activation="tanh", skills_head_bias=False)
    with torch.no_grad():
        model.title_head.weight.add_(0.05)
    set_title_taxonomy(model, TITLES)
    folder = save_model(model, tmp_path / "jobbert")
    assert {"title_index.json", "modeling_jobbert.py", "configuration_jobbert.py", "encoder_utils.py"} <= {
        p.name for p in folder.iterdir()
    }
    loaded = load_jobbert(folder)
    assert loaded.config.title_head_activation == "tanh" and loaded.skills_head.bias is None
    assert loaded.title_labels == model.title_labels and loaded.title_ids == model.title_ids
    assert loaded.title_names == model.title_names and loaded.config.taxonomy == "tiny titles"
    torch.testing.assert_close(loaded.encode_titles(QUERIES), model.encode_titles(QUERIES))
    torch.testing.assert_close(loaded.encode_skills(QUERIES), model.encode_skills(QUERIES))
    assert loaded.normalize(QUERIES) == model.normalize(QUERIES)


def test_missing_and_corrupt_jobbert_files_give_clear_errors(jobbert, tmp_path) -> None:
    folder = save_model(jobbert, tmp_path / "m")
    (folder / "title_index.json").unlink()
    with pytest.raises(BuildError, match="title_index.json"):
        load_jobbert(folder)
    folder = save_model(jobbert, tmp_path / "m")
    (folder / "title_index.json").write_text('{"labels": ["a"], "ids": ["a"]}')
    with pytest.raises(BuildError, match="inconsistent"):
        load_jobbert(folder)
    folder = save_model(jobbert, tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"model_type": "contextmatch"}))
    with pytest.raises(BuildError, match="not a JobBERT model"):
        load_jobbert(folder)
    with pytest.raises(BuildError, match="build-jobbert"):
        load_jobbert(tmp_path / "nowhere")


def test_a_hub_repo_id_fails_clearly_offline(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(BuildError, match="JobBERT model 'TechWolf/JobBERT-v2-missing' from the Hugging Face Hub"):
        load_jobbert("TechWolf/JobBERT-v2-missing")


JOBBERT_OUTPUTS = """
print(json.dumps({"class": type(model).__module__, "titles": model.encode_titles(texts).tolist(),
                  "skills": model.encode_skills(texts).tolist(), "normalize": model.normalize(texts, top_k=2)}))
"""


@pytest.mark.slow
def test_tiny_jobbert_loads_with_automodel_in_a_process_without_the_project(jobbert, tmp_path) -> None:
    folder = save_model(jobbert, tmp_path / "tiny-jobbert")
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_jobbert.JobBERTConfig",
        "AutoModel": "modeling_jobbert.JobBERTModel",
    }
    assert str(tmp_path) not in (folder / "config.json").read_text()
    loaded = load_in_fresh_process(folder, tmp_path, JOBBERT_OUTPUTS, QUERIES)
    assert loaded["class"].startswith("transformers_modules.")
    torch.testing.assert_close(torch.tensor(loaded["titles"]), jobbert.encode_titles(QUERIES), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.tensor(loaded["skills"]), jobbert.encode_skills(QUERIES), atol=1e-5, rtol=1e-5)
    assert loaded["normalize"] == jobbert.normalize(QUERIES, top_k=2)
