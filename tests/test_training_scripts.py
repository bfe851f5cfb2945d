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
from labor_encoders.training.loop import common_arguments, parse_with_config
from tests.conftest import REPO, TINY_SKILLS, WORDS, make_tiny_model
from tests.test_jobbert import JOBBERT_OUTPUTS, make_tiny_jobbert
from tests.test_remote_code import load_in_fresh_process

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


@pytest.mark.slow
def test_accelerate_launch_trains_contextmatch_and_saves_a_hub_folder(workdir, tmp_path) -> None:
    output = tmp_path / "run"
    done = run(
        [
            *ACCELERATE,
            "-m",
            "labor_encoders.training.train_contextmatch",
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


@pytest.mark.slow
def test_accelerate_launch_trains_jobbert_and_saves_a_hub_folder(workdir, tmp_path) -> None:
    output = tmp_path / "run"
    run(
        [
            *ACCELERATE,
            "-m",
            "labor_encoders.training.train_jobbert",
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


@pytest.mark.slow
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
            "labor_encoders.training.train_contextmatch",
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
            "labor_encoders.training.train_contextmatch",
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


@pytest.mark.slow
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
    run(
        [
            PYTHON,
            "-m",
            "labor_encoders.training.train_contextmatch",
            *common,
            "--max_steps",
            "4",
            "--output_dir",
            str(tmp_path / "a"),
        ]
    )
    assert (tmp_path / "a/checkpoints/step-4").is_dir()
    done = run(
        [
            PYTHON,
            "-m",
            "labor_encoders.training.train_contextmatch",
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_the_setup_merges_the_shipped_adapter_without_training_and_rebuilds_when_it_changes(
    tiny_encoder_dir, workdir, tmp_path, monkeypatch
) -> None:
    """`labor-encoders setup`'s default: the shipped adapter (sha256 checked) merged onto the backbone, the index
    encoded, nothing trained; a changed adapter rebuilds the folder, a damaged one is refused."""
    import labor_encoders.adapter as adapter_module
    import labor_encoders.assets as assets
    import labor_encoders.build as build
    from labor_encoders.adapter import AdapterError, merge_lora, read_record, write_record
    from labor_encoders.assets import ESCO_SKILLS, MPNET

    run(
        [
            PYTHON, "-m", "labor_encoders.training.train_contextmatch", "--model", str(tiny_encoder_dir),
            "--data", str(workdir / "skills.csv"), "--output_dir", str(tmp_path / "run"), "--batch_size", "8",
            "--learning_rate", "1e-3", "--max_steps", "2", "--warmup_ratio", "0", "--no_validation",
            "--lora_rank", "2", "--lora_targets", "query,value",
        ]
    )  # fmt: skip
    shipped = tmp_path / "weights" / build.DEFAULT_MODEL_NAME
    shutil.copytree(tmp_path / "run" / "adapter", shipped)
    write_record(shipped, read_record(shipped) | {"threshold": 0.61})
    monkeypatch.setattr(adapter_module, "WEIGHTS", tmp_path / "weights")
    monkeypatch.setattr(assets, "ensure_mpnet", lambda force=False: tiny_encoder_dir)
    import labor_encoders.taxonomy as taxonomy

    tiny = taxonomy.Taxonomy(
        TINY_SKILLS,
        [f"s{i}" for i, _ in enumerate(TINY_SKILLS)],
        [[]] * len(TINY_SKILLS),
        [""] * len(TINY_SKILLS),
        "tiny",
    )
    monkeypatch.setattr(taxonomy, "load_esco_skills", lambda path=None: tiny)
    output = tmp_path / "models" / build.DEFAULT_MODEL_NAME
    monkeypatch.setattr(build, "default_contextmatch_dir", lambda: output)

    def no_training(*args, **kwargs):
        raise AssertionError("the setup must never train")

    monkeypatch.setattr(subprocess, "run", no_training)
    assert build.ensure_default_contextmatch() == output
    model = build.load_contextmatch(output)
    assert (
        model.config.trained is True and model.config.threshold == 0.61 and model.config.num_skills == len(TINY_SKILLS)
    )
    assert json.loads((output / "training_args.json").read_text())["steps"] == 2
    start = build.build_contextmatch(tiny_encoder_dir, None)
    merged = merge_lora(start.encoder, shipped).state_dict()
    assert all(torch.equal(merged[k], v) for k, v in model.encoder.state_dict().items())
    assert build.default_model_state(output, (MPNET, ESCO_SKILLS), build._adapter_fingerprint()) == "built"
    first = load_file(output / "model.safetensors")
    assert build.ensure_default_contextmatch() == output  # built: nothing happens
    assert load_file(output / "model.safetensors").keys() == first.keys()

    weights = load_file(shipped / "adapter_model.safetensors")
    from safetensors.torch import save_file

    save_file({k: v * 2 for k, v in weights.items()}, shipped / "adapter_model.safetensors")
    write_record(shipped, read_record(shipped))  # a new adapter, recorded: the default is outdated and rebuilt
    assert build.default_model_state(output, (MPNET, ESCO_SKILLS), build._adapter_fingerprint()) == "outdated"
    build.ensure_default_contextmatch()
    second = load_file(output / "model.safetensors")
    assert any(not torch.equal(first[name], second[name]) for name in first)

    save_file({k: v * 3 for k, v in weights.items()}, shipped / "adapter_model.safetensors")  # not recorded
    with pytest.raises(AdapterError, match="sha256 differs.*git checkout"):
        build.ensure_default_contextmatch(force=True)
    assert build.load_contextmatch(output).config.num_skills == model.config.num_skills  # the built one is kept


@pytest.mark.slow
def test_lora_training_writes_a_small_reproducible_adapter_that_merges_into_the_trained_model(
    workdir, tmp_path
) -> None:
    """``--lora_rank``: the adapter (PEFT format, with its record of sha256 sums) is what ships; merged onto the start
    model it gives exactly the trained model's encoder, and a second run writes the same bytes."""
    from labor_encoders.adapter import merge_lora, verify
    from labor_encoders.build import load_contextmatch

    lists = tmp_path / "lists.csv"  # SkillSkape's layout: the skills of a sentence as a Python list literal
    with lists.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "skills"])
        for i in range(24):
            skills = TINY_SKILLS[i % 3 : i % 3 + 2]
            writer.writerow([f"we need {' and '.join(skills)} {WORDS[i % len(WORDS)]}", repr(skills)])
    common = [
        "-m",
        "labor_encoders.training.train_contextmatch",
        "--model",
        str(workdir / "contextmatch"),
        "--data",
        str(lists),
    ]
    common += ["--skill_column", "skills", "--skill_list", "--batch_size", "8", "--learning_rate", "1e-3"]
    common += ["--max_steps", "3", "--warmup_ratio", "0", "--no_validation", "--seed", "3"]
    common += ["--lora_rank", "4", "--lora_targets", "query,value", "--lora_layers", "1"]
    done = run([PYTHON, *common, "--output_dir", str(tmp_path / "a")])
    assert "48 pairs" in done.stderr  # two skills a sentence: two pairs
    adapter = tmp_path / "a" / "adapter"
    record = verify(adapter)
    assert set(record["files"]) == {"adapter_config.json", "adapter_model.safetensors"}
    assert record["training_files"] == {"lists.csv": record["training_files"]["lists.csv"]} and record["steps"] == 3
    weights = load_file(adapter / "adapter_model.safetensors")
    assert weights and all("lora_" in name and ".layer.1." in name for name in weights)  # only layer 1, only LoRA

    trained = load_contextmatch(tmp_path / "a" / "model")
    start = load_contextmatch(workdir / "contextmatch")
    merged = merge_lora(start.encoder, adapter).state_dict()
    assert merged.keys() == trained.encoder.state_dict().keys()
    assert all(torch.allclose(merged[k], v, atol=1e-6) for k, v in trained.encoder.state_dict().items())
    assert not torch.equal(merged["encoder.layer.1.attention.self.query.weight"],
                           load_contextmatch(workdir / "contextmatch").encoder.state_dict()[
                               "encoder.layer.1.attention.self.query.weight"])  # fmt: skip

    run([PYTHON, *common, "--output_dir", str(tmp_path / "b")])
    second = tmp_path / "b" / "adapter" / "adapter_model.safetensors"
    assert second.read_bytes() == (adapter / "adapter_model.safetensors").read_bytes()
    (adapter / "adapter_model.safetensors").write_bytes(second.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ValueError, match="sha256 differs"):
        verify(adapter)


@pytest.mark.slow
def test_build_adapter_and_push_adapter_from_the_command_line(tiny_encoder_dir, workdir, tmp_path) -> None:
    """`labor-encoders build --adapter` merges a trained adapter into a remote-code folder equal to the training's own
    merged model; `push adapter --dry-run` writes the adapter's repository (PEFT files, record, card); a damaged
    adapter is refused with the fix and nothing is written."""
    from labor_encoders.build import load_contextmatch

    skills = tmp_path / "skills.txt"
    skills.write_text("\n".join(TINY_SKILLS) + "\n")
    run(
        [
            PYTHON, "-m", "labor_encoders.training.train_contextmatch", "--model", str(tiny_encoder_dir),
            "--data", str(workdir / "skills.csv"), "--output_dir", str(tmp_path / "run"), "--batch_size", "8",
            "--learning_rate", "1e-3", "--max_steps", "2", "--warmup_ratio", "0", "--no_validation",
            "--lora_rank", "2", "--lora_targets", "query,value", "--taxonomy", str(skills),
        ]
    )  # fmt: skip
    cli = [PYTHON, "-m", "labor_encoders.cli"]
    adapter = tmp_path / "run" / "adapter"
    common = ["build", "--backbone", str(tiny_encoder_dir), "--taxonomy", str(skills)]
    run([*cli, *common, "--adapter", str(adapter), "--output", str(tmp_path / "built"), "--threshold", "0.7"])
    built, trained = load_contextmatch(tmp_path / "built"), load_contextmatch(tmp_path / "run" / "model")
    assert built.config.threshold == 0.7 and built.skill_labels == trained.skill_labels
    assert all(torch.allclose(v, trained.encoder.state_dict()[k]) for k, v in built.encoder.state_dict().items())
    assert torch.allclose(built.skill_embeddings, trained.skill_embeddings, atol=1e-5)

    run(
        [
            *cli,
            "push",
            "adapter",
            str(adapter),
            "--repo-id",
            "org/tiny-adapter",
            "--dry-run",
            "--output",
            str(tmp_path / "repo"),
        ]
    )
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == [
        ".gitattributes", "README.md", "adapter_config.json", "adapter_model.safetensors", "record.json"
    ]  # fmt: skip
    card = (tmp_path / "repo" / "README.md").read_text()
    assert "PeftModel.from_pretrained" in card and "org/tiny-adapter" in card

    (adapter / "adapter_config.json").write_text("{}")
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [*cli, *common, "--adapter", str(adapter), "--output", str(tmp_path / "bad")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and "error:" in done.stderr and "sha256 differs" in done.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_calibrate_in_training_finds_the_threshold_labor_encoders_calibrate_finds(
    workdir, shared_data, tmp_path
) -> None:
    """``--calibrate`` (the default's recipe) sets the τ that `labor-encoders calibrate` reports for the same model."""
    import argparse
    import re

    from labor_encoders.build import load_contextmatch
    from labor_encoders.training.train_contextmatch import calibrate

    data = shared_data / "skillspan-esco"
    files = [str(data / "house_validation_annotations.csv"), str(data / "tech_validation_annotations.csv")]
    labels = str(data / "skills_en_label.txt")
    args = argparse.Namespace(validation=files, validation_labels=labels)
    tau = calibrate(load_contextmatch(workdir / "contextmatch"), args)
    cli = [PYTHON, "-m", "labor_encoders.cli", "calibrate", "--model", str(workdir / "contextmatch")]
    done = run([*cli, "--annotations", *files, "--labels", labels, "--no-write", "--output", str(tmp_path)])
    assert float(re.search(r"best τ = ([0-9.]+)", done.stdout).group(1)) == pytest.approx(tau)
    with pytest.raises(ValueError, match="--calibrate needs"):
        calibrate(
            load_contextmatch(workdir / "contextmatch"), argparse.Namespace(validation=[], validation_labels=None)
        )


@pytest.mark.slow
def test_calibrate_record_puts_tau_into_the_adapter_record_and_the_next_build_uses_it(
    tiny_encoder_dir, workdir, shared_data, tmp_path
) -> None:
    """`labor-encoders calibrate --record ADAPTER` (how the shipped default got its τ) writes the calibrated τ and
    what it was measured on into the adapter's record without touching its weights or their sums; a build from the
    adapter then carries that τ, and the model card says where it came from."""
    import re

    from labor_encoders.adapter import read_record, verify
    from labor_encoders.build import load_contextmatch
    from labor_encoders.model_cards import render_model_card

    run(
        [
            PYTHON, "-m", "labor_encoders.training.train_contextmatch", "--model", str(tiny_encoder_dir),
            "--data", str(workdir / "skills.csv"), "--output_dir", str(tmp_path / "run"), "--batch_size", "8",
            "--learning_rate", "1e-3", "--max_steps", "2", "--warmup_ratio", "0", "--no_validation",
            "--lora_rank", "2", "--lora_targets", "query,value",
        ]
    )  # fmt: skip
    adapter, model = tmp_path / "run" / "adapter", tmp_path / "run" / "model"
    before = read_record(adapter)
    data = shared_data / "skillspan-esco"
    files = [str(data / "house_validation_annotations.csv"), str(data / "tech_validation_annotations.csv")]
    cli = [PYTHON, "-m", "labor_encoders.cli"]
    done = run(
        [*cli, "calibrate", "--model", str(model), "--annotations", *files,
         "--labels", str(data / "skills_en_label.txt"), "--no-write", "--output", str(tmp_path / "report"),
         "--record", str(adapter)]
    )  # fmt: skip
    tau = float(re.search(r"best τ = ([0-9.]+)", done.stdout).group(1))
    record = verify(adapter)  # the weights still match their sums
    assert record["threshold"] == tau == record["calibration"]["tau"] and record["files"] == before["files"]
    assert set(record["calibration"]["data"]) == {Path(f).name for f in files} | {"skills_en_label.txt"}
    assert "--record" in record["calibration"]["command"] and "--output" not in record["calibration"]["command"]
    assert record["calibration"]["after_filter"]["f1"] >= 0 and record["calibration"]["sentences"] > 0
    assert load_contextmatch(model).config.threshold == before.get(
        "threshold", load_contextmatch(model).config.threshold
    )

    skills = tmp_path / "skills.txt"
    skills.write_text("\n".join(TINY_SKILLS) + "\n")
    build = ["build", "--backbone", str(tiny_encoder_dir), "--taxonomy", str(skills), "--adapter", str(adapter)]
    run([*cli, *build, "--output", str(tmp_path / "built")])
    assert load_contextmatch(tmp_path / "built").config.threshold == tau
    card = str(render_model_card(tmp_path / "built", "org/tiny"))
    assert "calibrated: the best F1 after the redundancy filter" in card and "labor-encoders calibrate" in card
