"""How close an ONNX graph's token vectors are to PyTorch fp32, and how long the encoder alone takes.

For each graph (default: the embedded default model's ``onnx/model.onnx`` and ``onnx/model_int8.onnx``), the first
``--sentences`` Skill-XL development sentences (shuffled with seed 1, then sorted by length) go through PyTorch and
through the graph in batches of ``--batch-size``; the cosine of every real token's vectors is summarised (mean, 1st
percentile, minimum) beside the seconds of each encoder. Run from the repository root::

    .venv/bin/python -m labor_encoders.evaluation.int8_fidelity [GRAPH ...] [--model DIR] [--sentences 640]

A measurement, not a test: it asserts nothing. The README's int8 table comes from it.
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path

import numpy as np
import torch

from labor_encoders.evaluation.benchmark_backends import SKILL_XL


def skill_xl_sentences(path: Path, count: int) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        sentences = list(dict.fromkeys(row["sentence"].strip() for row in csv.DictReader(f) if row["sentence"].strip()))
    random.Random(1).shuffle(sentences)
    return sorted(sentences[:count], key=len)


def main(argv: list[str] | None = None) -> None:
    import onnxruntime

    from labor_encoders.backends.onnx_export import INPUT_NAMES, OUTPUT_NAMES, onnx_path, session_options
    from labor_encoders.build import load_contextmatch, resolve_model_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("graphs", nargs="*", type=Path, help="ONNX graphs (default: the model folder's two)")
    parser.add_argument("--model", type=Path, default=None, help="ConTeXT-match folder (default: the embedded default)")
    parser.add_argument("--sentences", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skill-xl", type=Path, default=SKILL_XL)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    folder = resolve_model_dir(args.model)
    model = load_contextmatch(folder).eval()
    graphs = args.graphs or [onnx_path(folder), onnx_path(folder, "onnx-int8")]
    sentences = skill_xl_sentences(args.skill_xl, args.sentences)
    batches = [
        model.tokenizer(sentences[i : i + args.batch_size], padding=True, truncation=True, return_tensors="pt")
        for i in range(0, len(sentences), args.batch_size)
    ]
    start = time.perf_counter()
    with torch.inference_mode():
        reference = [model.encoder(**batch)[0].numpy() for batch in batches]
    print(
        f"{len(sentences)} sentences, {len(batches)} batches; PyTorch fp32 encoder {time.perf_counter() - start:.2f} s"
    )
    for graph in graphs:
        session = onnxruntime.InferenceSession(
            str(graph), session_options(args.threads), providers=["CPUExecutionProvider"]
        )
        feeds = [{name: batch[name].numpy() for name in INPUT_NAMES} for batch in batches]
        session.run([OUTPUT_NAMES[0]], feeds[0])  # warm-up
        start = time.perf_counter()
        outputs = [session.run([OUTPUT_NAMES[0]], feed)[0] for feed in feeds]
        seconds = time.perf_counter() - start
        cosines = []
        for got, expected, batch in zip(outputs, reference, batches, strict=True):
            real = batch["attention_mask"].numpy().astype(bool)
            norms = np.linalg.norm(got, axis=-1) * np.linalg.norm(expected, axis=-1)
            cosines.append(((got * expected).sum(-1) / np.maximum(norms, 1e-12))[real])
        cosine = np.concatenate(cosines)
        print(
            f"{graph}: {seconds:.2f} s; token cosine to fp32 mean {cosine.mean():.4f}, "
            f"1st percentile {np.percentile(cosine, 1):.4f}, min {cosine.min():.4f}"
        )


if __name__ == "__main__":
    main()
