"""The distribution as a user installs it: one wheel, one import name, nothing from the checkout.

The wheel is built from this checkout and installed with ``--no-deps`` into a fresh virtual environment whose only
view of the dependencies (torch, transformers, ...) is the project environment's site-packages, added as a plain
path, so neither the checkout nor its editable install can be imported from there.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("modeling", "training", "evaluation", "model_cards", "space")


def run(command: list, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out, source = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("source")
    listed = run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO).stdout.splitlines()
    for name in listed:  # the working tree as git sees it: no build/ leftovers, no caches
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, source]
    run(command, cwd=out)
    (wheel,) = out.glob("labor_encoders-*.whl")
    return wheel


@pytest.fixture(scope="module")
def clean_env(wheel, tmp_path_factory) -> Path:
    """A new virtual environment with the wheel installed; returns its python."""
    root = tmp_path_factory.mktemp("clean-env")
    run([sys.executable, "-m", "venv", root / "venv"], cwd=root)
    python = root / "venv" / "bin" / "python"
    site = Path(
        run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).stdout.strip()
    )
    before = {p.name for p in site.iterdir()}
    run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], cwd=root)
    added = {p.name for p in site.iterdir()} - before
    assert {name for name in added if not name.endswith(".dist-info")} == {"labor_encoders"}, added
    # the dependencies, seen as a plain path: no .pth of the project environment (its editable finder) is processed
    (site / "zz_project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_the_wheel_holds_one_top_level_package_with_its_data(wheel) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"labor_encoders", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    for package in SUBPACKAGES:
        assert f"labor_encoders/{package}/__init__.py" in names
    expected = [
        "labor_encoders/weights/contextmatch-default/adapter_model.safetensors",
        "labor_encoders/weights/jobbert-default/record.json",
        "labor_encoders/training/configs/contextmatch_default.yaml",
        "labor_encoders/model_cards/templates/contextmatch.md.j2",
        "labor_encoders/space/examples/chef.txt",
        "labor_encoders/evaluation/metrics/ranking/ranking.py",
        "labor_encoders/assets.json",
    ]
    assert not [name for name in expected if name not in names]
    assert not [name for name in names if name.startswith("labor_encoders/tests") or "/tests/" in name]


@pytest.mark.slow
def test_the_installed_package_runs_without_the_checkout(clean_env, tmp_path) -> None:
    """`labor-encoders --help`, every subpackage under the one name, no stray top-level name, and a tiny model saved
    by the installed package that `AutoModel.from_pretrained(..., trust_remote_code=True)` loads and runs."""
    scripts = clean_env.parent
    help_text = run([scripts / "labor-encoders", "--help"], cwd=tmp_path).stdout
    assert "usage: labor-encoders" in help_text and "extract" in help_text

    script = textwrap.dedent(
        """
        import importlib, importlib.util, json, sys
        import torch
        from transformers import AutoModel, BertConfig, BertTokenizerFast
        import labor_encoders
        from labor_encoders.build import save_model
        from labor_encoders.modeling.configuration_contextmatch import ConTeXTMatchConfig
        from labor_encoders.modeling.modeling_contextmatch import ConTeXTMatchModel
        for name in ("training.loop", "evaluation.benchmarks", "model_cards.render", "space.app", "cli", "batch"):
            importlib.import_module("labor_encoders." + name)
        stray = [n for n in ("modeling", "training", "evaluation", "model_cards", "space")
                 if importlib.util.find_spec(n)]
        words = "we need python and sql team work".split()
        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
        open("vocab.txt", "w").write("\\n".join(vocab) + "\\n")
        tokenizer = BertTokenizerFast(vocab="vocab.txt")
        torch.manual_seed(0)
        encoder = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=32).to_dict()
        model = ConTeXTMatchModel(ConTeXTMatchConfig(encoder_config=encoder, threshold=0.0)).eval()
        model.tokenizer = tokenizer
        model.set_skill_index(["python", "sql", "team work"], ["a", "b", "c"], taxonomy="tiny")
        save_model(model, "tiny")
        loaded = AutoModel.from_pretrained("tiny", trust_remote_code=True)
        result = loaded.extract(["we need python and sql"])[0]
        print(json.dumps({
            "package": labor_encoders.__file__,
            "stray": stray,
            "remote_class": type(loaded).__module__,
            "skills": [s["label"] for s in result["skills"]],
            "same": [s["label"] for s in model.extract(["we need python and sql"])[0]["skills"]],
        }))
        """
    )
    done = run([clean_env, "-c", script], cwd=tmp_path)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert str(clean_env.parents[1]) in report["package"]  # the installed copy, not the checkout
    assert report["stray"] == []
    assert report["remote_class"].startswith("transformers_modules.")  # the folder's own copy of the modeling code
    assert report["skills"] and report["skills"] == report["same"]


def test_the_modeling_files_import_only_their_siblings() -> None:
    """The Hub copies of ``modeling/`` run without the project: no import of any project package in them."""
    project = re.compile(rf"^\s*(from|import)\s+({'|'.join(('labor_encoders', *SUBPACKAGES))})\b")
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted((REPO / "modeling").glob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if project.match(line)
    ]
    assert offenders == []
