"""The Hub contract: a saved folder loads with AutoModel(trust_remote_code=True) where the project is not importable."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labor_encoders.build import BuildError, load_contextmatch, save_model
from labor_encoders.modeling.modeling_contextmatch import ConTeXTMatchModel

MODELING = Path(__file__).resolve().parents[1] / "modeling"
PROJECT_PACKAGES = ("modeling", "labor_encoders", "training", "evaluation", "model_cards", "space", "tests")
TEXTS = ["Strong python and sql skills.", "Great team work and communication!", ""]

# The start of a script for a fresh interpreter in which no project package can be imported.
BLOCK_PROJECT = """
import importlib.abc, json, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} must not be importable here")
sys.meta_path.insert(0, Block())
sys.path = [p for p in sys.path if p not in ("", ".", {repo!r})]
"""
# Runs in a fresh interpreter, in an empty working directory, with every project package blocked from import.
LOADER = (
    BLOCK_PROJECT
    + """try:
    import labor_encoders
    sys.exit("the project is importable: the test proves nothing")
except ImportError:
    pass
from transformers import AutoModel
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
texts = json.loads(sys.argv[2])
"""
)
CONTEXTMATCH_OUTPUTS = """
ranking = model.rank(texts, top_k=5)
print(json.dumps({"class": type(model).__module__, "values": ranking.values.tolist(),
                  "indices": ranking.indices.tolist(), "extract": model.extract(texts, top_k=3)}))
"""


def load_in_fresh_process(folder: Path, tmp_path: Path, outputs: str = CONTEXTMATCH_OUTPUTS, texts=TEXTS) -> dict:
    """Run ``outputs`` (which sees ``model`` and ``texts`` and prints one JSON line) in a fresh interpreter that
    loaded ``folder`` with AutoModel and cannot import the project."""
    script = LOADER.format(blocked=PROJECT_PACKAGES, repo=str(MODELING.parent)) + outputs
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder), json.dumps(texts)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_same_outputs(model: ConTeXTMatchModel, loaded: dict) -> None:
    ranking = model.rank(TEXTS, top_k=5)
    assert loaded["indices"] == ranking.indices.tolist()
    torch.testing.assert_close(torch.tensor(loaded["values"]), ranking.values, atol=1e-5, rtol=1e-5)
    assert loaded["extract"] == model.extract(TEXTS, top_k=3)
    assert loaded["class"].startswith("transformers_modules.")  # the folder's copy of the code, not ours


@pytest.mark.slow
def test_tiny_model_loads_with_automodel_in_a_process_without_the_project(tiny_model, tmp_path) -> None:
    folder = save_model(tiny_model, tmp_path / "tiny-contextmatch")
    files = sorted(p.name for p in folder.iterdir())
    for name in [
        "config.json",
        "configuration_contextmatch.py",
        "model.safetensors",
        "modeling_contextmatch.py",
        "skill_index.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]:
        assert name in files
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_contextmatch.ConTeXTMatchConfig",
        "AutoModel": "modeling_contextmatch.ConTeXTMatchModel",
    }
    assert config["model_type"] == "contextmatch" and config["num_skills"] == len(tiny_model.skill_labels)
    assert str(tmp_path) not in (folder / "config.json").read_text()  # nothing machine-dependent
    assert_same_outputs(tiny_model, load_in_fresh_process(folder, tmp_path))


@pytest.mark.real_weights
def test_default_model_loads_with_automodel_in_a_process_without_the_project(
    default_model, default_model_dir, tmp_path
):
    from labor_encoders.assets import cache_dir

    assert str(cache_dir()) not in (default_model_dir / "config.json").read_text()  # nothing machine-dependent
    config = json.loads((default_model_dir / "config.json").read_text())
    assert config["trained"] is True and config["taxonomy"] == "ESCO v1.2 skills" and config["num_skills"] == 13939
    assert_same_outputs(default_model, load_in_fresh_process(default_model_dir, tmp_path))


def test_save_and_load_in_process_round_trips_everything(tiny_model, tmp_path) -> None:
    tiny_model.config.threshold = 0.37
    folder = save_model(tiny_model, tmp_path / "m")
    loaded = load_contextmatch(folder)
    assert loaded.skill_labels == tiny_model.skill_labels and loaded.skill_ids == tiny_model.skill_ids
    assert loaded.config.threshold == 0.37 and loaded.config.taxonomy == "tiny skills"
    torch.testing.assert_close(loaded.skill_embeddings, tiny_model.skill_embeddings)
    assert loaded.extract(TEXTS) == tiny_model.extract(TEXTS)


def test_missing_and_corrupt_files_give_clear_errors(tiny_model, tmp_path) -> None:
    with pytest.raises(BuildError, match="does not exist"):
        load_contextmatch(tmp_path / "nowhere")
    folder = save_model(tiny_model, tmp_path / "m")
    (folder / "skill_index.json").unlink()
    with pytest.raises(BuildError, match="skill_index.json"):
        load_contextmatch(folder)
    folder = save_model(tiny_model, tmp_path / "m")
    (folder / "skill_index.json").write_text('{"labels": [')
    with pytest.raises(BuildError, match="skill_index.json .* is corrupt"):
        load_contextmatch(folder)
    folder = save_model(tiny_model, tmp_path / "m")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(BuildError, match="corrupt or truncated"):
        load_contextmatch(folder)
    weights.unlink()
    with pytest.raises(BuildError, match="no weights"):
        load_contextmatch(folder)
    (folder / "config.json").unlink()
    with pytest.raises(BuildError, match="no config.json"):
        load_contextmatch(folder)


ALLOWED_TOP_LEVEL = {"torch", "transformers", "__future__"} | set(sys.stdlib_module_names)


@pytest.mark.parametrize("path", sorted(MODELING.glob("*.py")), ids=lambda p: p.name)
def test_modeling_files_import_only_torch_transformers_stdlib_and_siblings(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level > 0:  # relative import: must name a sibling file
                assert node.module and (MODELING / f"{node.module}.py").is_file(), ast.dump(node)
                continue
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in ALLOWED_TOP_LEVEL, f"{path.name} imports {name}"


def test_a_hub_repo_id_goes_to_the_hub_and_fails_clearly_offline(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(BuildError, match="Hugging Face Hub") as error:
        load_contextmatch("labor-encoders/contextmatch-does-not-exist")
    assert "labor-encoders/contextmatch-does-not-exist" in str(error.value)
    with pytest.raises(BuildError, match="does not exist"):  # a path stays a path
        load_contextmatch(tmp_path / "missing" / "model")


def test_a_folder_built_by_an_older_version_gets_the_current_code(tiny_model, tmp_path) -> None:
    from labor_encoders.build import sync_model_code

    folder = save_model(tiny_model, tmp_path / "m")
    stale = folder / "modeling_contextmatch.py"
    stale.write_text(stale.read_text() + "\n# an older version\n")
    assert sync_model_code(folder) == ["modeling_contextmatch.py"]
    assert stale.read_bytes() == (MODELING / "modeling_contextmatch.py").read_bytes()
    assert sync_model_code(folder) == []


@pytest.mark.real_weights
def test_the_default_model_carries_the_current_code(default_model_dir) -> None:
    for name in ("modeling_contextmatch.py", "configuration_contextmatch.py"):
        assert (default_model_dir / name).read_bytes() == (MODELING / name).read_bytes()
