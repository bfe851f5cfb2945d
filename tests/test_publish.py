"""``labor-encoders push``: the repository folder a push writes, and the upload path up to the network boundary.

The dry-run folder of each model must load with ``AutoModel.from_pretrained(folder, trust_remote_code=True)`` in a
process that cannot import this project and give the same outputs; its card's usage snippet must run as written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard, SpaceCard, constants
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from labor_encoders.build import save_model
from labor_encoders.cli import main
from labor_encoders.publish import PublishError, assemble_model_repo, assemble_space_repo, upload
from tests.conftest import REPO, make_tiny_model
from tests.test_jobbert import JOBBERT_OUTPUTS, QUERIES, make_tiny_jobbert
from tests.test_model_cards import results  # noqa: F401 (a fixture: results files the runners wrote)
from tests.test_remote_code import (
    BLOCK_PROJECT,
    MODELING,
    PROJECT_PACKAGES,
    TEXTS,
    assert_same_outputs,
    load_in_fresh_process,
)

REPO_ID = "labor-encoders-test/tiny"
MODEL_FILES = {
    "contextmatch": {"configuration_contextmatch.py", "modeling_contextmatch.py", "skill_index.json"},
    "jobbert": {"configuration_jobbert.py", "modeling_jobbert.py", "title_index.json"},
}
COMMON_FILES = {".gitattributes", "README.md", "config.json", "encoder_utils.py", "model.safetensors", "tokenizer.json"}
COMMON_FILES |= {"tokenizer_config.json"}


@pytest.fixture(scope="module")
def models(tiny_tokenizer):
    return {
        "contextmatch": make_tiny_model(tiny_tokenizer, threshold=0.2),
        "jobbert": make_tiny_jobbert(tiny_tokenizer),
    }


@pytest.fixture(scope="module")
def folders(models, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("publish-models")
    return {kind: save_model(model, root / kind) for kind, model in models.items()}


def dry_run(folder: Path, output: Path, *flags: str) -> int:
    return main(
        ["-q", "push", "model", str(folder), "--repo-id", REPO_ID, "--dry-run", "--output", str(output), *flags]
    )


def assert_no_pickle(folder: Path) -> None:
    """No file is a pickle (protocol 2+ starts with 0x80) or a torch zip archive (which holds data.pkl)."""
    for path in folder.rglob("*"):
        if path.is_file():
            head = path.read_bytes()[:2]
            assert not (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")), path
            assert not zipfile.is_zipfile(path), path


@pytest.mark.slow
def test_the_contextmatch_dry_run_folder_loads_in_a_fresh_process_with_the_same_outputs(
    models, folders, tmp_path, capsys
) -> None:
    output = tmp_path / "repo"
    assert dry_run(folders["contextmatch"], output) == 0
    printed = capsys.readouterr().out
    assert f"model repository {REPO_ID}" in printed and "dry run: nothing was uploaded" in printed
    files = {p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file()}
    assert files == COMMON_FILES | MODEL_FILES["contextmatch"]
    assert all(name in printed for name in files)
    assert_no_pickle(output)
    config = json.loads((output / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_contextmatch.ConTeXTMatchModel"
    for name in ("modeling_contextmatch.py", "configuration_contextmatch.py", "encoder_utils.py"):
        assert (output / name).read_bytes() == (MODELING / name).read_bytes()  # the current code
    assert "*.safetensors filter=lfs" in (output / ".gitattributes").read_text()
    assert ModelCard.load(output / "README.md").data.library_name == "transformers"
    assert_same_outputs(models["contextmatch"], load_in_fresh_process(output, tmp_path))


@pytest.mark.slow
def test_the_jobbert_dry_run_folder_loads_in_a_fresh_process_with_the_same_outputs(models, folders, tmp_path) -> None:
    output = tmp_path / "repo"
    assert dry_run(folders["jobbert"], output) == 0
    assert {p.name for p in output.iterdir()} == COMMON_FILES | MODEL_FILES["jobbert"]
    assert_no_pickle(output)
    jobbert = models["jobbert"]
    loaded = load_in_fresh_process(output, tmp_path, JOBBERT_OUTPUTS, QUERIES)
    assert loaded["class"].startswith("transformers_modules.")
    torch.testing.assert_close(torch.tensor(loaded["titles"]), jobbert.encode_titles(QUERIES), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.tensor(loaded["skills"]), jobbert.encode_skills(QUERIES), atol=1e-5, rtol=1e-5)
    assert loaded["normalize"] == jobbert.normalize(QUERIES, top_k=2)


@pytest.mark.parametrize("kind", ["contextmatch", "jobbert"])
@pytest.mark.slow
def test_the_cards_usage_snippet_runs_as_written(folders, tmp_path, kind) -> None:
    """The card's first Python block, with the repo id pointing at the dry-run folder, in a fresh process."""
    output = tmp_path / "repo"
    assert dry_run(folders[kind], output) == 0
    snippet = re.search(r"```python\n(.*?)```", ModelCard.load(output / "README.md").text, re.DOTALL).group(1)
    assert f'AutoModel.from_pretrained("{REPO_ID}", trust_remote_code=True, revision="main")' in snippet
    script = BLOCK_PROJECT.format(blocked=PROJECT_PACKAGES, repo=str(REPO)) + snippet.replace(REPO_ID, str(output))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_results_and_training_records_travel_with_the_model(folders, results, tmp_path) -> None:  # noqa: F811
    folder = shutil.copytree(folders["contextmatch"], tmp_path / "trained")
    record = {"task": "contextmatch", "arguments": {"data": "/home/me/pairs.csv", "output_dir": "/home/me/run"}}
    (folder / "training_args.json").write_text(json.dumps(record))
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")  # left behind by an older save
    (folder / ".complete.json").write_text("{}")
    (folder / "training_log.jsonl").write_text('{"step": 10, "loss": 0.09}\n')
    results = tmp_path / "skill-xl.json"
    xl = {"precision": 0.5, "recall": 0.25, "f1": 0.3333, "redundancy": 0.0, "n": 4}
    results.write_text(
        json.dumps({"kind": "skill-xl", "results": {"threshold": 0.2, "before_filter": xl, "after_filter": xl}})
    )
    output = tmp_path / "repo"
    assert dry_run(folder, output, "--results", str(results), "--eval-split", "development") == 0
    assert (output / "eval_results" / "skill-xl.json").read_bytes() == results.read_bytes()
    published = json.loads((output / "training_args.json").read_text())
    assert published["arguments"] == {"data": "pairs.csv"}  # the recipe, not this machine's paths
    assert (output / "training_log.jsonl").read_text() == (folder / "training_log.jsonl").read_text()
    assert not (output / "pytorch_model.bin").exists() and not (output / ".complete.json").exists()
    assert_no_pickle(output)
    card = ModelCard.load(output / "README.md")
    assert {r.dataset_split for r in card.data.eval_results} == {"development"}
    assert "**Trained**" in card.text


def test_a_folder_with_only_pickled_weights_is_refused(folders, tmp_path) -> None:
    folder = shutil.copytree(folders["contextmatch"], tmp_path / "old")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(PublishError, match="no safetensors weights .*pytorch_model.bin.*never published"):
        assemble_model_repo(folder, tmp_path / "repo", REPO_ID)
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["model", "{nowhere}", "--repo-id", REPO_ID], "is not a folder"),
        (["model", "{space}", "--repo-id", REPO_ID], "has no config.json: it is not a model folder"),
        (["model", "{bert}", "--repo-id", REPO_ID], "holds a 'bert' model"),
        (["model", "{contextmatch}", "--repo-id", "tiny"], "--repo-id must be ORG/NAME"),
        (["model", "{contextmatch}", "--repo-id", "org/bad name!"], "is not a valid Hub repository id"),
        (["model", "{contextmatch}", "--repo-id", REPO_ID, "--results", "{wrong}"], "measure a jobbert model"),
        (["model", "{contextmatch}", "--repo-id", REPO_ID, "--output", "{out}"], "--output is for --dry-run"),
        (["model", "{contextmatch}", "--repo-id", REPO_ID, "--jobbert-model", "a/b"], "are for `push space`"),
        (["space", "{space}", "--repo-id", REPO_ID, "--jobbert-model", "a/b"], "--contextmatch-model ORG/NAME is"),
        (["space", "{contextmatch}", "--repo-id", REPO_ID, "--contextmatch-model", "a/b", "--jobbert-model", "c/d"],
         "not a Space folder"),
        (["space", "{space}", "--repo-id", REPO_ID, "--results", "{wrong}"], "`push space` takes none"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_error_and_writes_nothing(folders, tmp_path, capsys, argv, message) -> None:
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "wrong.json").write_text('{"kind": "job-normalization", "results": {}}')
    paths = {"nowhere": tmp_path / "nowhere", "space": REPO / "space", "bert": tmp_path / "bert"}
    paths |= {"wrong": tmp_path / "wrong.json", "out": tmp_path / "out", **folders}
    argv = [a.format(**paths) for a in argv]
    if "--output" not in argv:
        argv += ["--dry-run", "--output", str(tmp_path / "out")]
    assert main(["push", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_kinds_are_refused_by_the_parser(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["push", "dataset", ".", "--repo-id", REPO_ID])
    assert exit_.value.code == 2 and "invalid choice: 'dataset'" in capsys.readouterr().err


def test_the_space_dry_run_holds_the_space_with_its_models(tmp_path, capsys) -> None:
    output = tmp_path / "space-repo"
    argv = ["push", "space", str(REPO / "space"), "--repo-id", "org/demo", "--dry-run", "--output", str(output)]
    assert main([*argv, "--contextmatch-model", "org/cm", "--jobbert-model", "org/jb"]) == 0
    printed = capsys.readouterr().out
    assert "variable CONTEXTMATCH_MODEL=org/cm" in printed and "variable JOBBERT_MODEL=org/jb" in printed
    files = {p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file()}
    assert {"app.py", "requirements.txt", "README.md", ".gitattributes", "examples/chef.txt"} <= files
    assert "__init__.py" not in files and not any("__pycache__" in f for f in files)  # the project's package marker
    assert (output / "app.py").read_bytes() == (REPO / "space" / "app.py").read_bytes()
    engine = REPO / "labor_encoders" / "insights"
    for module in engine.glob("*.py"):  # the Market insights tab's engine travels with the Space
        assert (output / "insights" / module.name).read_bytes() == module.read_bytes()
    card = SpaceCard.load(output / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py" and card.data.models == ["org/cm", "org/jb"]


# --- the upload path, up to the network boundary ---


@pytest.fixture
def online(monkeypatch, tmp_path):
    """Offline mode off and no stored token (whatever this machine has), for the duration of a test."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return tmp_path / "tmp"


def test_offline_a_push_says_so_and_writes_nothing(folders, online, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["push", "model", str(folders["contextmatch"]), "--repo-id", REPO_ID]) == 2
    assert "HF_HUB_OFFLINE is set" in capsys.readouterr().err
    assert not any(online.iterdir())  # no staging folder left behind


def test_without_a_token_a_push_says_how_to_log_in_and_writes_nothing(folders, online, capsys) -> None:
    assert main(["push", "model", str(folders["contextmatch"]), "--repo-id", REPO_ID]) == 2
    error = capsys.readouterr().err
    assert "no Hugging Face token" in error and "hf auth login" in error and "HF_TOKEN" in error
    assert not any(online.iterdir())


def test_a_real_upload_stops_at_the_network_with_a_clear_error(folders, tmp_path) -> None:
    """The command as a user runs it, with a token, against an endpoint where nothing listens."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env |= {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_TOKEN": "hf_not_a_real_token", "HF_HOME": str(tmp_path / "hf")}
    env |= {"TMPDIR": str(tmp_path)}
    command = [sys.executable, "-m", "labor_encoders.cli", "push", "model", str(folders["jobbert"])]
    done = subprocess.run(
        [*command, "--repo-id", REPO_ID], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "could not reach the Hugging Face Hub to create the repository" in done.stderr
    assert "no commit was made" in done.stderr
    assert not list(tmp_path.glob("labor-encoders-push-*"))  # the staged folder is removed


class RecordingApi:
    """Stands in for HfApi: records each call, and the files of the uploaded folder as they were at upload time."""

    def __init__(self, fail_with: Exception | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.uploaded: dict[str, bytes] = {}
        self.fail_with = fail_with

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        if self.fail_with:
            raise self.fail_with

    def create_branch(self, repo_id, **kwargs):
        self.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def add_space_variable(self, repo_id, key, value, **kwargs):
        self.calls.append(("add_space_variable", {"repo_id": repo_id, key: value}))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        folder = Path(kwargs["folder_path"])
        self.uploaded = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

        class Commit:
            commit_url = f"https://huggingface.co/{kwargs['repo_id']}/commit/0123"
            pr_url = f"https://huggingface.co/{kwargs['repo_id']}/discussions/1" if kwargs["create_pr"] else None

        return Commit()


def test_upload_creates_the_repo_then_commits_the_folder(folders, online, tmp_path) -> None:
    plan = assemble_model_repo(folders["contextmatch"], tmp_path / "repo", REPO_ID)
    api = RecordingApi()
    url = upload(plan, private=True, revision="v1", commit_message="first", token="hf_x", api=api)
    assert url == f"https://huggingface.co/{REPO_ID}/commit/0123"
    names = [name for name, _ in api.calls]
    assert names == ["create_repo", "create_branch", "upload_folder"]
    assert api.calls[0][1] | {} == {
        "repo_id": REPO_ID, "repo_type": "model", "private": True, "exist_ok": True, "token": "hf_x"
    }  # fmt: skip
    sent = api.calls[2][1]
    assert sent["revision"] == "v1" and sent["commit_message"] == "first" and sent["create_pr"] is False
    assert set(api.uploaded) == COMMON_FILES | MODEL_FILES["contextmatch"]
    pr = upload(plan, create_pr=True, revision="main", token="hf_x", api=RecordingApi())
    assert pr.endswith("/discussions/1")


def test_upload_of_a_space_sets_its_variables_before_the_files(online, tmp_path) -> None:
    plan = assemble_space_repo(REPO / "space", tmp_path / "space", "org/demo", "org/cm", "org/jb")
    api = RecordingApi()
    upload(plan, token="hf_x", api=api)
    assert [name for name, _ in api.calls] == [
        "create_repo",
        "add_space_variable",
        "add_space_variable",
        "upload_folder",
    ]
    assert api.calls[0][1]["repo_type"] == "space" and api.calls[0][1]["space_sdk"] == "gradio"
    assert api.calls[1][1] == {"repo_id": "org/demo", "CONTEXTMATCH_MODEL": "org/cm"}


def test_a_rejected_token_says_how_to_log_in(folders, online, tmp_path) -> None:
    import httpx2

    response = httpx2.Response(401, request=httpx2.Request("POST", "https://huggingface.co/api/repos/create"))
    plan = assemble_model_repo(folders["contextmatch"], tmp_path / "repo", REPO_ID)
    api = RecordingApi(fail_with=HfHubHTTPError("401 Unauthorized", response=response))
    with pytest.raises(PublishError, match="the Hub refused to create the repository .*hf auth login"):
        upload(plan, token="hf_bad", api=api)


# --- model.push_to_hub from Python ---


@pytest.mark.slow
def test_push_to_hub_uploads_code_index_and_tokenizer(models, monkeypatch, tmp_path) -> None:
    """transformers' push_to_hub saves then commits: the commit holds everything a Hub user needs to load it."""
    import transformers.utils.hub as hub

    committed: dict[str, bytes] = {}

    class Api:
        def create_repo(self, repo_id, **kwargs):
            return type("RepoUrl", (), {"repo_id": repo_id})()

        def create_commit(self, repo_id, operations, **kwargs):
            for op in operations:
                committed[op.path_in_repo] = Path(op.path_or_fileobj).read_bytes()
            return f"https://huggingface.co/{repo_id}/commit/0"

    monkeypatch.setattr(hub, "hf_api", Api)
    model = models["contextmatch"]
    for cls in (type(model), type(model.config)):  # as in a fresh session where nothing registered them yet
        monkeypatch.setattr(cls, "_auto_class", None)
    monkeypatch.setattr(hub, "create_and_tag_model_card", lambda *a, **k: ModelCard("---\nlicense: apache-2.0\n---\n"))
    assert model.push_to_hub(REPO_ID).endswith("/commit/0")
    assert MODEL_FILES["contextmatch"] | {"encoder_utils.py", "model.safetensors", "tokenizer.json"} <= set(committed)
    folder = tmp_path / "pushed"
    folder.mkdir()
    for name, data in committed.items():
        (folder / name).write_bytes(data)
    assert_same_outputs(model, load_in_fresh_process(folder, tmp_path))


def test_push_to_hub_offline_fails_before_sending_anything(models, monkeypatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OfflineModeIsEnabled, match="offline mode is enabled"):
        models["jobbert"].push_to_hub(REPO_ID, token="hf_x")


# --- the real models ---


@pytest.mark.real_weights
def test_the_default_models_dry_run_loads_in_a_fresh_process(default_model, default_model_dir, tmp_path) -> None:
    output = tmp_path / "repo"
    assert dry_run(default_model_dir, output) == 0
    assert_no_pickle(output)
    card = ModelCard.load(output / "README.md")
    trained = (default_model_dir / "training_args.json").is_file()
    assert ("**Trained**" in card.text) == trained and ("**Zero-shot**" in card.text) != trained
    assert card.data.base_model == "sentence-transformers/all-mpnet-base-v2"
    assert_same_outputs(default_model, load_in_fresh_process(output, tmp_path, texts=TEXTS))


@pytest.mark.slow
def test_the_jobbert_cards_sentence_transformers_snippet_runs(models, folders, tmp_path, monkeypatch) -> None:
    """The card's second Python block, with the download replaced by the dry-run folder: the exported
    sentence-transformers model encodes titles as ``encode_titles`` does."""
    output = tmp_path / "repo"
    assert dry_run(folders["jobbert"], output) == 0
    blocks = re.findall(r"```python\n(.*?)```", ModelCard.load(output / "README.md").text, re.DOTALL)
    download = f'snapshot_download("{REPO_ID}", revision="main")'
    assert download in blocks[1]
    cli = str(Path(sys.executable).with_name("labor-encoders"))
    snippet = blocks[1].replace(download, repr(str(output))).replace('["labor-encoders",', f"[{cli!r},")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(snippet, scope)
    expected = models["jobbert"].encode_titles(["Senior Java Developer"])
    torch.testing.assert_close(torch.as_tensor(scope["titles"]), expected, atol=1e-5, rtol=1e-4)
