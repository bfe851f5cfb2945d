"""The training loop both scripts share, in the shape of the Accelerate examples.

``accelerate launch -m labor_encoders.training.train_contextmatch --config cfg.yaml [flags]`` (or ``torchrun``, or plain
``python -m``) runs the same code on one CPU, one GPU, several GPUs and several nodes:

- flags, with defaults from a YAML file (``--config``; its keys are the flag names), then ``set_seed``;
- pairs (first text, second text) → ``DataLoader`` of ``--batch_size`` pairs per process, ``drop_last`` so every
  process holds the same number; ``prepare`` splits the batches across processes;
- the loss is InfoNCE with in-batch negatives gathered from **every** process
  (``labor_encoders.training.distributed``), so a step
  sees ``batch_size × processes`` negatives; with ``--mini_batch_size`` it is gradient-cached, so a batch of 4,096
  needs the memory of one mini-batch;
- the model is *not* wrapped in DistributedDataParallel: the gradient cache re-runs the model inside the backward
  pass, which DDP's reducer does not expect. Gradients are averaged across processes explicitly after the backward
  of the last accumulation step (``average_gradients``): the same update DDP would make;
- gradient accumulation, mixed precision (``--mixed_precision bf16|fp16|no``, through ``accelerator.autocast``),
  ``save_state`` every ``--save_steps`` and ``--resume_from_checkpoint``, validation every ``--eval_steps`` with
  the project's evaluation runners, a loss log (``training_log.jsonl``) and optional trackers (``--report_to``);
- at the end, a remote-code model folder with its skill or title index rebuilt from the trained weights, and the
  training arguments (``training_args.json``) for the model card.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

logger = logging.getLogger("training")


@dataclass
class Task:
    """What differs between ConTeXT-match and JobBERT: the model, the data, the loss, validation and saving."""

    name: str
    load_model: Callable[[argparse.Namespace], nn.Module]
    load_pairs: Callable[[argparse.Namespace], Any]  # -> labor_encoders.training.data.PairSet
    make_loss: Callable[[nn.Module, argparse.Namespace], nn.Module]
    validate: Callable[[nn.Module, argparse.Namespace], dict[str, float]] | None
    finalize: Callable[[nn.Module, argparse.Namespace], Path]
    max_lengths: Callable[[nn.Module, argparse.Namespace], tuple[int, int]]


def common_arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    add = parser.add_argument
    add("--config", help="YAML file of defaults for these flags (keys are flag names); flags given here win")
    add("--model", help="start from: a sentence-transformers folder, or a model folder / Hub repo of this project")
    add("--output_dir", required=True, help="where the trained model folder, checkpoints and logs go")
    add("--data", help="training pairs: CSV/TSV/JSONL/JSON/Parquet file or a Hugging Face dataset id")
    add("--split", default="train", help="dataset split for a Hub id (default train)")
    add("--limit", type=int, help="use at most this many pairs")
    add("--batch_size", type=int, default=32, help="pairs per process per step: the in-batch negatives (default 32)")
    add("--mini_batch_size", type=int, default=0, help="gradient caching in chunks of this size (0: off)")
    add("--gradient_accumulation_steps", type=int, default=1)
    add("--learning_rate", type=float, default=2e-5)
    add("--optimizer", choices=["adamw", "sgd"], default="adamw", help="AdamW (default) or plain SGD")
    add("--weight_decay", type=float, default=0.01)
    add("--warmup_ratio", type=float, default=0.1)
    add("--max_grad_norm", type=float, default=1.0)
    add("--epochs", type=float, default=1.0)
    add("--max_steps", type=int, default=0, help="stop after this many optimizer steps (0: run --epochs)")
    add("--scale", type=float, default=20.0, help="InfoNCE scale = 1 / temperature (default 20)")
    add("--symmetric", action="store_true", help="also the reverse direction of the InfoNCE loss")
    add("--freeze_layers", type=int, default=0, help="freeze the embeddings and this many lower encoder layers")
    add("--lora_rank", type=int, default=0, help="train a PEFT LoRA adapter of this rank instead of the weights")
    add("--lora_alpha", type=float, default=0.0, help="LoRA scaling numerator (default: twice the rank)")
    add("--lora_targets", default="q,k,v,o", help="comma-separated names of the linear layers LoRA adapts (q,k,v,o)")
    add("--lora_layers", help="comma-separated encoder layers LoRA adapts (default: those above --freeze_layers)")
    add("--max_seq_length", type=int, help="tokens per text (default: the model's)")
    add("--mixed_precision", choices=["no", "fp16", "bf16"], default="no")
    add("--cpu", action="store_true", help="train on the CPU even when a GPU is there")
    add("--seed", type=int, default=42)
    add("--logging_steps", type=int, default=10)
    add("--eval_steps", type=int, default=0, help="validate every this many steps (0: only at the end)")
    add("--save_steps", type=int, default=0, help="save_state every this many steps (0: never)")
    add("--save_total_limit", type=int, default=0, help="keep only this many newest checkpoints (0: keep all)")
    add("--resume_from_checkpoint", help="a checkpoint folder from --save_steps, or 'latest'")
    add("--report_to", nargs="*", default=[], help="trackers for accelerate (tensorboard, wandb, ...)")
    add("--no_validation", action="store_true", help="skip validation, also at the end")
    return parser


def parse_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Flags over the ``--config`` YAML file over the parser's defaults; unknown YAML keys are an error."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    first, _ = pre.parse_known_args(argv)
    if first.config:
        import yaml

        with open(first.config, encoding="utf-8") as handle:
            values = yaml.safe_load(handle) or {}
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(values) - known)
        if unknown:
            parser.error(f"{first.config}: unknown keys {unknown}; the flags are {sorted(known - {'help'})}")
        parser.set_defaults(**values)
        for action in parser._actions:  # a required flag the YAML file provides is no longer required
            if action.dest in values:
                action.required = False
    return parser.parse_args(argv)


def freeze_lower_layers(encoder: nn.Module, layers: int) -> int:
    """Freeze the embeddings and the first ``layers`` transformer layers; returns how many parameters stay trainable."""
    if layers > 0:
        for parameter in encoder.embeddings.parameters():
            parameter.requires_grad_(False)
        blocks = encoder.encoder.layer
        if layers > len(blocks):
            raise ValueError(f"--freeze_layers {layers}: the encoder has only {len(blocks)} layers")
        for block in blocks[:layers]:
            for parameter in block.parameters():
                parameter.requires_grad_(False)
    return sum(p.numel() for p in encoder.parameters() if p.requires_grad)


def add_lora(encoder: nn.Module, args: argparse.Namespace) -> nn.Module:
    """Wrap ``encoder`` in a PEFT LoRA model: only the adapter's matrices train, the backbone stays as it is."""
    from peft import LoraConfig, get_peft_model

    blocks = len(encoder.encoder.layer)
    if args.lora_layers:
        layers = [int(layer) for layer in str(args.lora_layers).split(",")]
    else:
        layers = list(range(args.freeze_layers, blocks))
    if not layers or min(layers) < 0 or max(layers) >= blocks:
        raise ValueError(f"--lora_layers {layers}: the encoder has layers 0 to {blocks - 1}")
    config = LoraConfig(
        r=args.lora_rank,
        lora_alpha=args.lora_alpha or 2 * args.lora_rank,
        lora_dropout=0.0,
        target_modules=[name.strip() for name in args.lora_targets.split(",")],
        layers_to_transform=layers,
        layers_pattern="layer",
    )
    return get_peft_model(encoder, config)


def training_files(args: argparse.Namespace) -> dict[str, str]:
    """sha256 of every local training and validation file the arguments name (a Hub id is kept by name)."""
    from labor_encoders.assets import sha256_file

    names: list[str] = []
    for key in ("data", "validation", "validation_labels"):
        value = getattr(args, key, None)
        names += [value] if isinstance(value, str) else list(value or [])
    files = {Path(name).name: sha256_file(name) if Path(name).is_file() else "hub" for name in names}
    if hasattr(args, "esco_pairs") and (args.esco_pairs or not args.data):  # ConTeXT-match's offline ESCO set
        from labor_encoders.assets import ESCO_SKILLS, asset_fingerprint

        files[ESCO_SKILLS] = asset_fingerprint(ESCO_SKILLS)
    return files


def train(task: Task, args: argparse.Namespace) -> Path:
    """Run the whole training; returns the saved model folder (on every process).

    The main process (global rank 0, as ``RANK`` says under ``accelerate launch`` and ``torchrun``) holds the lock
    of ``--output_dir`` (:func:`labor_encoders.locking.output_lock`): a second run on the same folder stops at once.
    """
    if int(os.environ.get("RANK", "0")) != 0:
        return _train(task, args)
    from labor_encoders.locking import output_lock

    with output_lock(args.output_dir, f"training ({task.name})"):
        return _train(task, args)


def _train(task: Task, args: argparse.Namespace) -> Path:
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, set_seed
    from transformers import get_linear_schedule_with_warmup

    from .data import PairCollator, PairDataset
    from .distributed import average_gradients, broadcast_parameters

    output = Path(args.output_dir)
    # Several processes without CUDA (torchrun on CPUs): Accelerate sets up gloo only when told to use the CPU.
    several_cpu_processes = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    accelerator = Accelerator(
        cpu=args.cpu or several_cpu_processes,
        # one shuffled order from the seed, whatever the number of processes (and restored on resume)
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=args.report_to or None,
        project_dir=str(output),
    )
    logging.basicConfig(level=logging.INFO if accelerator.is_main_process else logging.WARNING, format="%(message)s")
    set_seed(args.seed)
    model = task.load_model(args)
    if args.lora_rank:
        model.encoder = add_lora(model.encoder, args)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    else:
        trainable = freeze_lower_layers(model.encoder, args.freeze_layers)
    pairs = task.load_pairs(args)
    logger.info("%s: %s", task.name, pairs.summary())
    if len(pairs.pairs) < args.batch_size * accelerator.num_processes:
        raise ValueError(
            f"{len(pairs.pairs)} pairs cannot fill one batch of {args.batch_size} on each of "
            f"{accelerator.num_processes} processes: lower --batch_size or add data"
        )
    first_length, second_length = task.max_lengths(model, args)
    loader = torch.utils.data.DataLoader(
        PairDataset(pairs.pairs),
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        collate_fn=PairCollator(model.tokenizer, first_length, second_length),
    )
    loss_function = task.make_loss(model, args)
    parameters = [p for p in model.parameters() if p.requires_grad]
    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(parameters, lr=args.learning_rate, weight_decay=args.weight_decay)
    else:
        optimizer = torch.optim.AdamW(parameters, lr=args.learning_rate, weight_decay=args.weight_decay)
    steps_per_epoch = max(1, len(loader) // accelerator.num_processes // args.gradient_accumulation_steps)
    total_steps = args.max_steps or math.ceil(args.epochs * steps_per_epoch)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup_ratio * total_steps), total_steps)
    model.to(accelerator.device)
    broadcast_parameters(model.parameters())  # every process starts from rank 0's weights (no DDP to do it)
    # The scheduler is not prepared: Accelerate would step it once per process, for a schedule counted in batches;
    # ours counts optimizer steps and steps once per optimizer step.
    optimizer, loader = accelerator.prepare(optimizer, loader)
    accelerator.register_for_checkpointing(model, scheduler)
    step, skip = resume(accelerator, args, output, steps_per_epoch)
    if args.report_to:
        accelerator.init_trackers(task.name, config={k: v for k, v in vars(args).items() if _plain(v)})
    logger.info(
        "%s: %d processes × %d pairs a step (%s), %d trainable parameters, %d steps",
        task.name, accelerator.num_processes, args.batch_size,
        f"gradient cache in chunks of {args.mini_batch_size}" if args.mini_batch_size else "no gradient cache",
        trainable, total_steps,
    )  # fmt: skip
    log_path = output / "training_log.jsonl"
    started, running, history = time.perf_counter(), [], []
    model.train()
    while step < total_steps:
        batches = accelerator.skip_first_batches(loader, skip) if skip else loader
        skip = 0
        for first, second, keys in batches:
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    loss = loss_function(first, second, keys)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    average_gradients(parameters)
                    accelerator.clip_grad_norm_(parameters, args.max_grad_norm)
                optimizer.step()  # skipped by Accelerate until the last accumulation step
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad()
            running.append(accelerator.reduce(loss.detach().float(), reduction="mean").item())
            if not accelerator.sync_gradients:
                continue
            step += 1
            if step % args.logging_steps == 0 or step == total_steps:
                entry = {"step": step, "loss": sum(running) / len(running), "lr": scheduler.get_last_lr()[0]}
                entry["seconds"] = round(time.perf_counter() - started, 2)
                history.append(entry)
                running = []
                accelerator.log({"train/loss": entry["loss"], "train/lr": entry["lr"]}, step=step)
                if accelerator.is_main_process:
                    logger.info("step %d/%d  loss %.4f  lr %.2e", step, total_steps, entry["loss"], entry["lr"])
                    output.mkdir(parents=True, exist_ok=True)
                    with log_path.open("a", encoding="utf-8") as handle:
                        handle.write(json.dumps(entry) + "\n")
            if args.save_steps and step % args.save_steps == 0:
                accelerator.save_state(str(output / "checkpoints" / f"step-{step}"))
                if accelerator.is_main_process and args.save_total_limit:
                    for old in checkpoints(output)[: -args.save_total_limit]:
                        shutil.rmtree(old)
            if args.eval_steps and step % args.eval_steps == 0 and step < total_steps:
                validate(task, model, args, accelerator, step)
            if step >= total_steps:
                break
    seconds = time.perf_counter() - started
    metrics = validate(task, model, args, accelerator, step)
    accelerator.wait_for_everyone()
    folder = output / "model"
    if accelerator.is_main_process:
        model.eval()
        adapter = None
        if args.lora_rank:  # the adapter alone (what ships), then the merged weights for the model folder
            adapter = output / "adapter"
            model.encoder.save_pretrained(str(adapter))
            model.encoder = model.encoder.merge_and_unload()
        folder = task.finalize(model, args)
        summary = {"steps": step, "seconds": round(seconds, 1), "processes": accelerator.num_processes}
        summary |= {"validation": metrics, "loss": history[-1]["loss"] if history else None}
        # the recipe, not where this machine wrote it: the record travels with the model folder (and its card)
        arguments = {
            k: v for k, v in vars(args).items() if _plain(v) and k not in ("output_dir", "resume_from_checkpoint")
        }
        record = {"task": task.name, "arguments": arguments, **summary}
        (folder / "training_args.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
        if adapter is not None:
            from labor_encoders.adapter import write_record

            threshold = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("threshold")
            extra = {"threshold": threshold} if threshold is not None else {}
            extra["command"] = f"python -m labor_encoders.training.train_{task.name}" + (
                f" --config {args.config}" if args.config else ""
            )
            write_record(adapter, record | {"training_files": training_files(args)} | extra)
        logger.info("saved the trained model to %s", folder)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return folder


def checkpoints(output: Path) -> list[Path]:
    """The ``save_state`` folders under ``output/checkpoints``, oldest first."""
    return sorted((output / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))


def resume(accelerator, args: argparse.Namespace, output: Path, steps_per_epoch: int) -> tuple[int, int]:
    """Load a checkpoint; returns (optimizer steps done, batches of the current epoch to skip)."""
    if not args.resume_from_checkpoint:
        return 0, 0
    path = Path(args.resume_from_checkpoint)
    if args.resume_from_checkpoint == "latest":
        found = checkpoints(output)
        if not found:
            raise FileNotFoundError(f"--resume_from_checkpoint latest: no checkpoint in {output / 'checkpoints'}")
        path = found[-1]
    if not path.is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint: {path} is not a checkpoint folder")
    accelerator.load_state(str(path))
    step = int(path.name.split("-")[1])
    logger.info("resumed from %s (step %d)", path, step)
    batches_done = step * args.gradient_accumulation_steps
    return step, batches_done % (steps_per_epoch * args.gradient_accumulation_steps)


def validate(task: Task, model: nn.Module, args: argparse.Namespace, accelerator, step: int) -> dict[str, float]:
    """The task's validation on the main process (the others wait); logged and returned."""
    if task.validate is None or args.no_validation:
        return {}
    metrics: dict[str, float] = {}
    if accelerator.is_main_process:
        model.eval()
        metrics = task.validate(model, args)
        model.train()
    if metrics:
        logger.info("validation at step %d: %s", step, json.dumps(metrics))
        accelerator.log({f"validation/{k}": v for k, v in metrics.items()}, step=step)
        with (Path(args.output_dir) / "validation_log.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, **metrics}) + "\n")
    accelerator.wait_for_everyone()
    return metrics


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list)
