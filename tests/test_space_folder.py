"""The Space folder as the Hub runs it, and ``labor-encoders demo`` / ``./run.sh demo`` as a user runs them.

The folder must be self-contained: ``python app.py`` in a copy of it, in a process that cannot import this project,
serves the models named by ``CONTEXTMATCH_MODEL`` / ``JOBBERT_MODEL``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import gradio
import pytest
from gradio_client import Client
from huggingface_hub import SpaceCard

from labor_encoders.build import save_model
from tests.conftest import REPO, make_tiny_model
from tests.test_jobbert import make_tiny_jobbert
from tests.test_remote_code import BLOCK_PROJECT, MODELING, PROJECT_PACKAGES

SPACE = REPO / "space"
CLI = [sys.executable, "-m", "labor_encoders.cli"]
# Runs app.py as the Space does (python app.py), with every project package blocked from import.
RUN_APP = (
    BLOCK_PROJECT
    + """
import runpy
sys.path.insert(0, ".")
runpy.run_path("app.py", run_name="__main__")
"""
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_page(url: str, process: subprocess.Popen, seconds: float = 180) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}: {process.stderr.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"nothing served at {url} within {seconds} s")


def stop(process: subprocess.Popen, how: signal.Signals = signal.SIGTERM) -> int:
    process.send_signal(how)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory, tiny_tokenizer) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("space-models")
    contextmatch = save_model(make_tiny_model(tiny_tokenizer, threshold=0.2), root / "contextmatch")
    jobbert = save_model(make_tiny_jobbert(tiny_tokenizer), root / "jobbert")
    return contextmatch, jobbert


def test_the_front_matter_is_a_gradio_space_on_the_tested_gradio() -> None:
    card = SpaceCard.load(SPACE / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py"
    assert card.data.sdk_version == gradio.__version__
    assert card.data.license == "apache-2.0"
    assert len(card.data.short_description) <= 60  # the Hub's limit
    assert "CONTEXTMATCH_MODEL" in card.text and "JOBBERT_MODEL" in card.text


def test_space_requirements_pin_the_versions_the_project_is_tested_with() -> None:
    lock = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", (REPO / "requirements.lock").read_text(), re.M))
    lock = {name.lower().replace("_", "-"): version for name, version in lock.items()}
    wanted = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", (SPACE / "requirements.txt").read_text(), re.M))
    assert {"torch", "transformers", "pandas", "pyarrow", "matplotlib"} <= set(wanted)
    assert "gradio" not in wanted  # the Space installs gradio from sdk_version
    for name, version in wanted.items():
        assert lock[name.lower().replace("_", "-")] == version, name


def test_importing_the_app_loads_no_model() -> None:
    code = (
        "import sys, labor_encoders.space.app; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def run_app(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    """``python app.py`` in a copy of the Space folder that cannot import the project."""
    folder = tmp_path / "space-copy"
    shutil.copytree(SPACE, folder, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    script = RUN_APP.format(blocked=PROJECT_PACKAGES, repo=str(MODELING.parent))
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CONTEXTMATCH_MODEL", "JOBBERT_MODEL")}
    base |= {"HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    return subprocess.Popen(
        [sys.executable, "-c", script], cwd=folder, env=base | env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_the_space_folder_runs_on_its_own_with_models_from_variables(tiny_folders, tmp_path) -> None:
    contextmatch, jobbert = tiny_folders
    port = free_port()
    env = {"CONTEXTMATCH_MODEL": str(contextmatch), "JOBBERT_MODEL": str(jobbert), "GRADIO_SERVER_PORT": str(port)}
    process = run_app(tmp_path, env)
    try:
        assert "<html" in wait_for_page(f"http://127.0.0.1:{port}/", process)
        table = Client(f"http://127.0.0.1:{port}/", verbose=False).predict("python", 1, api_name="/normalize")
        assert table["headers"][:3] == ["Title", "Rank", "Occupation"] and table["data"][0][0] == "python"
    finally:
        stop(process)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "Set CONTEXTMATCH_MODEL and JOBBERT_MODEL"),  # the project is not there to supply its defaults
        ({"CONTEXTMATCH_MODEL": "some-org/no-such-model", "JOBBERT_MODEL": "x/y"}, "cannot load the model"),
    ],
)
@pytest.mark.slow
def test_the_space_says_which_models_it_needs(tmp_path, env, message) -> None:
    process = run_app(tmp_path, env)
    _, stderr = process.communicate(timeout=180)
    assert process.returncode != 0 and message in stderr, stderr[-2000:]


def start_demo(args: list[str], command: list[str] = CLI) -> subprocess.Popen:
    env = os.environ | {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [*command, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def served_url(process: subprocess.Popen, seconds: float = 300) -> str:
    """The URL from the 'Serving the demo on ...' line the command prints."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            raise AssertionError(f"the demo exited with {process.returncode}: {process.stderr.read()[-3000:]}")
        if line.startswith("Serving the demo on "):
            return line.split()[4]
    raise AssertionError("the demo never printed its URL")


@pytest.mark.slow
def test_the_demo_command_serves_the_page_and_stops_cleanly(tiny_folders) -> None:
    contextmatch, jobbert = tiny_folders
    port = free_port()
    process = start_demo(["demo", "--port", str(port), "--model", str(contextmatch), "--jobbert-model", str(jobbert)])
    try:
        url = served_url(process)
        assert url == f"http://127.0.0.1:{port}/"
        assert "Skill extraction" in wait_for_page(f"{url}config", process)
    finally:
        assert stop(process, signal.SIGINT) == 0  # Ctrl+C, even where the test runner started us with SIGINT ignored


@pytest.mark.slow
def test_the_demo_command_refuses_a_busy_port_before_loading_anything() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run([*CLI, "demo", "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr and "pass a free --port" in done.stderr
    assert time.monotonic() - started < 60  # it did not load the models first
    done = subprocess.run([*CLI, "demo", "--port", "70000"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "between 1 and 65535" in done.stderr


@pytest.mark.real_weights
def test_the_readme_main_command_serves_the_demo_on_the_default_models() -> None:
    port = free_port()
    process = start_demo(["demo", "--port", str(port)], command=[str(REPO / "run.sh")])
    try:
        url = served_url(process)
        config = wait_for_page(f"{url}config", process)
        assert "Skill extraction" in config and "Job titles" in config and "Batch" in config
        assert "ESCO v1.2 skills" in config  # the embedded default ConTeXT-match model is the one served
    finally:
        assert stop(process) == 0
