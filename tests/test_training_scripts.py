"""The training scripts really launched (accelerate launch, torchrun with two gloo processes, the CLI) on tiny models.

Each run trains for a few steps on a few rows and must leave a remote-code folder that loads with
``AutoModel.from_pretrained(..., trust_remote_code=True)`` in a process that cannot import this project.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from labor_encoders.build import save_model
from tests.conftest import REPO, TINY_SKILLS, WORDS, make_tiny_model
from tests.test_jobbert import JOBBERT_OUTPUTS, make_tiny_jobbert
from tests.test_remote_code import load_in_fresh_process
from training.loop import common_arguments, parse_with_config

PYTHON = sys.executable
ACCELERATE = [
    PYTHON,
    "-m",
    "accelerate.commands.launch",
    "--config_file",
    str(REPO / "training/configs/accelerate_cpu.yaml"),
]
TITLES = ["data analysis", "python", "project manager"]


def run(command: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def logged_losses(output: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (output / "training_log.jsonl").read_text().splitlines()]


def without_dropout(folder: Path) -> Path:
    """The same model with dropout off, so runs on different numbers of processes can be compared exactly."""
    config = json.loads((folder / "config.json").read_text())
    config["encoder_config"] |= {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_tokenizer) -> Path:
    """Tiny start models and small pair files (with one bad row each)."""
    root = tmp_path_factory.mktemp("training")
    without_dropout(save_model(make_tiny_model(tiny_tokenizer), root / "contextmatch"))
    save_model(make_tiny_jobbert(tiny_tokenizer), root / "jobbert")
    rng = random.Random(0)
    with (root / "skills.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "skill"])
        for i in range(48):
            skill = TINY_SKILLS[i % len(TINY_SKILLS)]
            writer.writerow([" ".join(rng.choices(WORDS, k=4) + skill.split() + rng.choices(WORDS, k=3)), skill])
        writer.writerow(["a sentence without its skill", ""])
    with (root / "titles.jsonl").open("w") as handle:
        for i in range(48):
            title = f"{TITLES[i % 3]} {rng.choice(WORDS)}"
            skills = ", ".join(TINY_SKILLS[(i % 3) * 2 : (i % 3) * 2 + 2])
            handle.write(json.dumps({"title": title, "skills": skills}) + "\n")
        handle.write("not json\n")
    return root


def test_yaml_config_gives_defaults_and_flags_win(tmp_path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("output_dir: from-yaml\nbatch_size: 64\nlearning_rate: 1.0e-4\nsymmetric: true\n")
    args = parse_with_config(common_arguments("test"), ["--config", str(config), "--batch_size", "16"])
    assert (args.output_dir, args.batch_size, args.learning_rate, args.symmetric) == ("from-yaml", 16, 1e-4, True)
    config.write_text("output_dir: x\nbatch_sise: 64\n")
    with pytest.raises(SystemExit):
        parse_with_config(common_arguments("test"), ["--config", str(config)])


def test_accelerate_launch_trains_contextmatch_and_saves_a_hub_folder(workdir, tmp_path) -> None:
    output = tmp_path / "run"
    done = run(
        [
            *ACCELERATE,
            "-m",
            "training.train_contextmatch",
            "--model",
            str(workdir / "contextmatch"),
            "--data",
            str(workdir / "skills.csv"),
            "--output_dir",
            str(output),
            "--batch_size",
            "8",
            "--mini_batch_size",
            "3",
            "--learning_rate",
            "1e-3",
            "--max_steps",
            "12",
            "--logging_steps",
            "3",
            "--warmup_ratio",
            "0",
        ]
    )
    assert "48 pairs" in done.stderr and "1 bad row" in done.stderr  # reported, not fatal
    losses = logged_losses(output)
    assert len(losses) == 4 and losses[-1] < losses[0]
    record = json.loads((output / "model" / "training_args.json").read_text())
    assert record["task"] == "contextmatch" and record["steps"] == 12 and record["arguments"]["mini_batch_size"] == 3
    config = json.loads((output / "model" / "config.json").read_text())
    assert config["trained"] is True and config["num_skills"] == len(TINY_SKILLS)
    loaded = load_in_fresh_process(output / "model", tmp_path)
    assert loaded["class"].startswith("transformers_modules.") and len(loaded["extract"]) == 3


def test_accelerate_launch_trains_jobbert_and_saves_a_hub_folder(workdir, tmp_path) -> None:
    output = tmp_path / "run"
    run(
        [
            *ACCELERATE,
            "-m",
            "training.train_jobbert",
            "--model",
            str(workdir / "jobbert"),
            "--data",
            str(workdir / "titles.jsonl"),
            "--output_dir",
            str(output),
            "--batch_size",
            "6",
            "--mini_batch_size",
            "4",
            "--learning_rate",
            "1e-3",
            "--max_steps",
            "12",
            "--logging_steps",
            "3",
            "--symmetric",
            "--warmup_ratio",
            "0",
        ]
    )
    losses = logged_losses(output)
    assert losses[-1] < losses[0]
    config = json.loads((output / "model" / "config.json").read_text())
    assert config["trained"] is True and config["num_titles"] > 0
    loaded = load_in_fresh_process(output / "model", tmp_path, JOBBERT_OUTPUTS, ["python", "team work"])
    assert loaded["class"].startswith("transformers_modules.")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_take_the_same_steps_as_one_process_on_the_global_batch(workdir, tmp_path) -> None:
    common = [
        "--model",
        str(workdir / "contextmatch"),
        "--data",
        str(workdir / "skills.csv"),
        "--optimizer",
        "sgd",
        "--learning_rate",
        "0.5",
        "--max_steps",
        "2",
        "--logging_steps",
        "1",
        "--warmup_ratio",
        "0",
        "--mini_batch_size",
        "3",
        "--symmetric",
        "--no_validation",
    ]
    torchrun = [PYTHON, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1"]
    run(
        [
            *torchrun,
            "--master_port",
            str(free_port()),
            "-m",
            "training.train_contextmatch",
            *common,
            "--batch_size",
            "4",
            "--output_dir",
            str(tmp_path / "two"),
        ]
    )
    run(
        [
            PYTHON,
            "-m",
            "training.train_contextmatch",
            *common,
            "--batch_size",
            "8",
            "--output_dir",
            str(tmp_path / "one"),
        ]
    )
    assert json.loads((tmp_path / "two/model/training_args.json").read_text())["processes"] == 2
    assert logged_losses(tmp_path / "two") == pytest.approx(logged_losses(tmp_path / "one"), abs=1e-5)
    rates = [
        [json.loads(line)["lr"] for line in (tmp_path / d / "training_log.jsonl").read_text().splitlines()]
        for d in ("two", "one")
    ]
    assert rates[0] == rates[1]  # one schedule step per optimizer step, whatever the number of processes
    two, one = (load_file(tmp_path / run_dir / "model" / "model.safetensors") for run_dir in ("two", "one"))
    start = load_file(workdir / "contextmatch" / "model.safetensors")
    moved = max((one[name] - start[name]).abs().max().item() for name in one if name.startswith("encoder."))
    assert moved > 1e-3  # the steps really changed the weights
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-5, rtol=1e-4, msg=name)


def test_an_interrupted_run_resumes_from_its_last_checkpoint(workdir, tmp_path) -> None:
    common = [
        "--model",
        str(workdir / "contextmatch"),
        "--data",
        str(workdir / "skills.csv"),
        "--batch_size",
        "8",
        "--learning_rate",
        "1e-3",
        "--logging_steps",
        "1",
        "--warmup_ratio",
        "0",
        "--save_steps",
        "2",
        "--no_validation",
    ]
    run([PYTHON, "-m", "training.train_contextmatch", *common, "--max_steps", "4", "--output_dir", str(tmp_path / "a")])
    assert (tmp_path / "a/checkpoints/step-4").is_dir()
    done = run(
        [
            PYTHON,
            "-m",
            "training.train_contextmatch",
            *common,
            "--max_steps",
            "6",
            "--output_dir",
            str(tmp_path / "a"),
            "--resume_from_checkpoint",
            "latest",
        ]
    )
    assert "resumed from" in done.stderr and "step-4" in done.stderr
    steps = [json.loads(line)["step"] for line in (tmp_path / "a/training_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # continued at step 5, nothing repeated


def test_the_cli_wrapper_and_the_jobbert_pair_pipeline(workdir, tmp_path) -> None:
    ads = tmp_path / "ads.csv"
    ads.write_text("title,text\npython developer,python and sql skills\n,team work\ncook,\n", encoding="utf-8")
    cli = [PYTHON, "-m", "labor_encoders.cli"]
    done = run(
        [
            *cli,
            "jobbert-pairs",
            str(ads),
            "--output",
            str(tmp_path / "pairs.csv"),
            "--model",
            str(workdir / "contextmatch"),
            "--threshold",
            "0",
        ]
    )
    assert "2 bad rows" in done.stderr and "line 3: empty 'title'" in done.stderr  # reported, not fatal
    assert "wrote 1 pairs" in done.stderr and "from 1 ads" in done.stderr
    with (tmp_path / "pairs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["title"] for row in rows] == ["python developer"] and rows[0]["skills"].count(",") >= 1
    done = run(
        [
            *cli,
            "train",
            "contextmatch",
            "--model",
            str(workdir / "contextmatch"),
            "--data",
            str(workdir / "skills.csv"),
            "--output_dir",
            str(tmp_path / "cli-run"),
            "--batch_size",
            "8",
            "--max_steps",
            "2",
            "--no_validation",
        ]
    )
    assert Path(done.stdout.strip().splitlines()[-1]) == tmp_path / "cli-run" / "model"
    done = subprocess.run(
        [*cli, "train", "jobbert", "--output_dir", str(tmp_path / "x")], capture_output=True, text=True
    )
    assert done.returncode != 0 and "labor-encoders jobbert-pairs" in done.stderr


def test_the_setup_trains_the_default_from_its_recipe_resumes_and_retrains_when_the_recipe_changes(
    workdir, tmp_path, monkeypatch
) -> None:
    """`labor-encoders setup`'s trained default, on a tiny recipe: the same code path, minutes become seconds."""
    import labor_encoders.build as build
    from labor_encoders.assets import ESCO_SKILLS, MPNET

    assets = (MPNET, ESCO_SKILLS)

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"model: {workdir / 'contextmatch'}\ndata: {workdir / 'skills.csv'}\nbatch_size: 8\nlearning_rate: 1.0e-3\n"
        "max_steps: 4\nsave_steps: 2\nlogging_steps: 1\nwarmup_ratio: 0\n"
    )
    output = tmp_path / "models" / "contextmatch-default"
    work = output.with_name("contextmatch-default.training")
    monkeypatch.setattr(build, "default_recipe", lambda: recipe)
    monkeypatch.setattr(build, "default_contextmatch_dir", lambda: output)
    # an earlier setup stopped after its checkpoint at step 2: no model yet, only the checkpoint and the log
    run([PYTHON, "-m", "training.train_contextmatch", "--config", str(recipe), "--output_dir", str(work)])
    for leftover in (work / "model", work / "checkpoints" / "step-4"):
        shutil.rmtree(leftover)
    log = work / "training_log.jsonl"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:2]))

    assert build.ensure_default_contextmatch() == output
    assert [json.loads(line)["step"] for line in (output / "training_log.jsonl").read_text().splitlines()] == [
        1, 2, 3, 4
    ]  # fmt: skip
    assert not work.exists()
    config = json.loads((output / "config.json").read_text())
    assert config["trained"] is True and config["threshold"] == build.DEFAULT_MODEL_THRESHOLD
    assert json.loads((output / "training_args.json").read_text())["steps"] == 4
    assert build.default_model_state(output, assets, build._recipe_fingerprint()) == "built"
    first = load_file(output / "model.safetensors")

    def no_training(*args, **kwargs):
        raise AssertionError("a finished default must not be trained again")

    monkeypatch.setattr(subprocess, "run", no_training)
    assert build.ensure_default_contextmatch() == output  # built: nothing runs
    monkeypatch.undo()
    monkeypatch.setattr(build, "default_recipe", lambda: recipe)
    monkeypatch.setattr(build, "default_contextmatch_dir", lambda: output)
    recipe.write_text(recipe.read_text().replace("1.0e-3", "2.0e-3"))
    assert build.default_model_state(output, assets, build._recipe_fingerprint()) == "outdated"
    build.ensure_default_contextmatch()
    second = load_file(output / "model.safetensors")
    assert any(not torch.equal(first[name], second[name]) for name in first)
