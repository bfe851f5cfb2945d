"""Throughput, memory and ranking quality of the ConTeXT-match inference backends: PyTorch fp32, ONNX fp32, ONNX int8.

Corpus: ``--ads N`` synthetic job ads (default 10,000), built deterministically (``--seed``) from real sentences: the
SkillSpan-ESCO HOUSE and TECH validation sentences and the Skill-XL development sentences in ``../shared/data``,
shuffled, then dealt into ads whose sentence counts are drawn from the real Skill-XL ads' counts. Sentences are joined
by newlines, so ``extract`` splits them back. The summary states words and sentences per ad.

Phases, each in its own subprocess (``--phase``) so that its peak RSS (``ru_maxrss``) is its own:

1. ``encode``: bare ``SentenceTransformer(all-mpnet-base-v2).encode`` of the same sentences (as ``extract`` splits
   them), fed ad chunk by ad chunk like the extract runs;
2. ``speed``, per backend: ``load_extractor(model, backend).extract(ads)`` in chunks of ``--chunk`` ads (as a batch
   run streams them) after one warm-up chunk: ads/s and sentences/s, load time, RSS after loading and peak.
   With ``--rounds R`` the corpus is dealt into R parts and each part is timed by (1) and every backend in turn, so
   that other load on a shared machine falls on all of them alike;
3. ``quality``, per backend: MRR / RP@5 / RP@10 on HOUSE, TECH and HOUSE + TECH validation with the runner of
   ``labor-encoders evaluate skill-extraction`` (13,896 ESCO v1.1.0 labels); the label vectors are the PyTorch fp32
   ones (cached on disk), for every backend, as a deployed folder carries an index encoded once: only the sentence
   side changes. Also ``extract`` on the 136 validation sentences with the model's own index, compared with PyTorch's
   (Jaccard of the (sentence, skill) pairs, and the share of sentences with the same skills).

The ONNX graphs must exist (``labor-encoders export-onnx MODEL --int8``; ``--export`` writes them into a copy of the
model folder under ``--work`` first). Run from the repository root::

    .venv/bin/python -m labor_encoders.evaluation.benchmark_backends [--model DIR] [--ads 10000] [--output results.json]

A benchmark, not a test: it asserts nothing. 10,000 ads take hours on 2 CPU cores; try ``--ads 200`` first.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from labor_encoders.evaluation.benchmark_extraction import (
    ANNOTATION_FILES,
    DEFAULT_DATA,
    REPO_ROOT,
    VOCABULARY_FILE,
    load_sentence_transformer,
    peak_rss_mb,
    write_json,
)

BACKENDS = ("torch", "onnx", "onnx-int8")
SKILL_XL = DEFAULT_DATA.parent / "skill-xl" / "development_a.csv"


# ---------------------------------------------------------------------------------------------------- corpus
def sentence_pool(data_dir: Path, skill_xl: Path) -> tuple[list[str], list[int]]:
    """Unique real sentences (SkillSpan HOUSE/TECH validation, Skill-XL development) and the sentence count of each
    Skill-XL ad."""
    sentences: dict[str, None] = {}
    for name in ANNOTATION_FILES:
        with (data_dir / name).open(encoding="utf-8", newline="") as f:
            sentences.update((row["sentence"].strip(), None) for row in csv.DictReader(f) if row["sentence"].strip())
    per_ad: dict[str, int] = {}
    with skill_xl.open(encoding="utf-8", newline="") as f:
        seen = set()
        for row in csv.DictReader(f):
            sentence = row["sentence"].strip()
            if sentence and (row["ID"], sentence) not in seen:
                seen.add((row["ID"], sentence))
                sentences[sentence] = None
                per_ad[row["ID"]] = per_ad.get(row["ID"], 0) + 1
    return list(sentences), list(per_ad.values())


def synthetic_ads(n: int, seed: int, data_dir: Path, skill_xl: Path) -> list[str]:
    """``n`` ads of real sentences, one a line, with Skill-XL's sentences-per-ad distribution (deterministic)."""
    pool, lengths = sentence_pool(data_dir, skill_xl)
    rng = random.Random(seed)
    deck: list[str] = []
    ads = []
    for _ in range(n):
        count = rng.choice(lengths)
        while len(deck) < count:
            fresh = list(pool)
            rng.shuffle(fresh)
            deck += fresh
        ads.append("\n".join(deck[:count]))
        del deck[:count]
    return ads


def corpus_stats(ads: list[str]) -> dict[str, Any]:
    from labor_encoders.modeling.modeling_contextmatch import split_sentences

    sentences = [len(split_sentences(ad)) for ad in ads]
    words = [len(ad.split()) for ad in ads]
    return {
        "ads": len(ads),
        "sentences": sum(sentences),
        "words": sum(words),
        "sentences_per_ad": round(statistics.mean(sentences), 1),
        "words_per_ad": round(statistics.mean(words), 1),
        "words_per_sentence": round(sum(words) / max(1, sum(sentences)), 1),
    }


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


# ---------------------------------------------------------------------------------------------------- phases
def timed_chunks(run, parts: list[list[str]], label: str) -> float:
    """Seconds to ``run`` every chunk, with a progress line on standard error every ~30 s."""
    start = last = time.perf_counter()
    for number, part in enumerate(parts, 1):
        run(part)
        now = time.perf_counter()
        if now - last > 30 or number == len(parts):
            print(f"  {label}: {number}/{len(parts)} chunks, {now - start:.0f} s", file=sys.stderr, flush=True)
            last = now
    return time.perf_counter() - start


def phase_encode(ads: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Bare sentence-transformers encoding of the corpus's sentences, ad chunk by ad chunk."""
    from labor_encoders.modeling.modeling_contextmatch import split_sentences

    rss = {"start": peak_rss_mb()}
    clock = time.perf_counter()
    model, path = load_sentence_transformer()
    if args.device:
        model.to(args.device)
    load_s = time.perf_counter() - clock
    rss["after_load"] = peak_rss_mb()
    parts = [[ad[s:e] for ad in part for s, e in split_sentences(ad)] for part in chunks(ads, args.chunk)]

    def encode(sentences: list[str]) -> None:
        model.encode(sentences, batch_size=args.batch_size, show_progress_bar=False)

    encode(parts[0][: args.batch_size * 2])  # warm-up
    seconds = timed_chunks(encode, parts, "encode")
    rss["peak"] = peak_rss_mb()
    n = sum(len(p) for p in parts)
    return {
        "what": f"SentenceTransformer({Path(path).name}).encode",
        "load_s": round(load_s, 2),
        "seconds": round(seconds, 2),
        "ads": len(ads),
        "sentences": n,
        "ads_per_s": round(len(ads) / seconds, 3),
        "sentences_per_s": round(n / seconds, 2),
        "load_average": os.getloadavg(),
        "rss_mb": rss,
    }


def phase_speed(ads: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """``extract`` of the corpus by one backend, in chunks of ``--chunk`` ads after a warm-up chunk."""
    from labor_encoders.backends import load_extractor

    rss = {"start": peak_rss_mb()}
    clock = time.perf_counter()
    model = load_extractor(args.model, args.backend, device=args.device, threads=args.threads)
    load_s = time.perf_counter() - clock
    rss["after_load"] = peak_rss_mb()
    found = [0]

    def extract(part: list[str]) -> None:
        found[0] += sum(len(r["skills"]) for r in model.extract(part, batch_size=args.batch_size))

    extract(ads[: args.chunk])  # warm-up
    found[0] = 0
    seconds = timed_chunks(extract, chunks(ads, args.chunk), args.backend)
    rss["peak"] = peak_rss_mb()
    stats = corpus_stats(ads)
    return {
        "backend": args.backend,
        "load_s": round(load_s, 2),
        "seconds": round(seconds, 2),
        "ads": len(ads),
        "sentences": stats["sentences"],
        "skills": found[0],
        "ads_per_s": round(len(ads) / seconds, 3),
        "sentences_per_s": round(stats["sentences"] / seconds, 2),
        "skills_per_ad": round(found[0] / len(ads), 2),
        "load_average": os.getloadavg(),
        "rss_mb": rss,
    }


def phase_quality(_: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Ranking metrics on HOUSE, TECH and HOUSE + TECH validation, and extract's predictions on those sentences."""
    import torch
    from safetensors.torch import load_file

    from labor_encoders.backends import load_extractor
    from labor_encoders.evaluation.skillspan import evaluate_ranking, load_skillspan, read_labels

    data = Path(args.data)
    labels = read_labels(data / VOCABULARY_FILE)
    files = {name.split("_")[0]: data / name for name in ANNOTATION_FILES}
    examples = {split: load_skillspan([path], labels) for split, path in files.items()}
    examples["house+tech"] = load_skillspan(list(files.values()), labels)
    model = load_extractor(args.model, args.backend, device=args.device, threads=args.threads)
    sentences = [e.sentence for e in examples["house+tech"]]
    predicted = [sorted(s["id"] for s in r["skills"]) for r in model.extract(sentences, batch_size=args.batch_size)]
    if args.index_file:
        index_file = args.index_file
        model.set_skill_index(labels, embeddings=load_file(index_file)["embeddings"], taxonomy=VOCABULARY_FILE)
    else:  # the PyTorch model encodes the benchmark labels once (cached on disk for the next runs)
        from labor_encoders.index_cache import set_cached_skill_index

        index_file = str(set_cached_skill_index(model, labels, taxonomy=VOCABULARY_FILE))
    with torch.inference_mode():
        metrics = {split: evaluate_ranking(model, items) for split, items in examples.items()}
    keep = ("n", "mrr", "rp@1", "rp@5", "rp@10")
    return {
        "backend": args.backend,
        "index_file": index_file,
        "ranking": {split: {k: m[k] for k in keep if k in m} for split, m in metrics.items()},
        "extract_ids": predicted,
    }


PHASES = {"encode": phase_encode, "speed": phase_speed, "quality": phase_quality}


def run_phase_subprocess(phase: str, args: argparse.Namespace, backend: str | None = None, **extra) -> dict:
    """One phase in a fresh Python process (its own peak RSS); its JSON result."""
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as tmp:
        out = Path(tmp) / "result.json"
        command = [
            sys.executable,
            "-m",
            "labor_encoders.evaluation.benchmark_backends",
            "--phase",
            phase,
            "--output",
            str(out),
        ]
        command += ["--ads", str(args.ads), "--seed", str(args.seed), "--chunk", str(args.chunk)]
        command += ["--batch-size", str(args.batch_size), "--threads", str(args.threads), "--data", str(args.data)]
        for flag, value in (("--model", args.model), ("--device", args.device), ("--backend", backend)):
            if value:
                command += [flag, str(value)]
        if args.rounds > 1:
            command += ["--rounds", str(args.rounds)]
        for flag, value in extra.items():
            command += [f"--{flag.replace('_', '-')}", str(value)]
        print(f"running {phase} {backend or ''} ...", file=sys.stderr, flush=True)
        subprocess.run(command, cwd=REPO_ROOT, check=True)
        return json.loads(out.read_text(encoding="utf-8"))


def timed_rounds(args: argparse.Namespace) -> tuple[dict | None, dict[str, dict]]:
    """The encode and speed phases, round by round: every round times one part of the corpus (every R-th ad) with
    each of them in turn, so that other load on the machine falls on all of them alike. Returns the merged figures."""
    runs: dict[str, list[dict]] = {}
    names = ([] if "encode" in args.skip else ["encode"]) + ([] if "speed" in args.skip else list(args.backends))
    for number in range(args.rounds):
        for name in names:
            phase, backend = ("encode", None) if name == "encode" else ("speed", name)
            runs.setdefault(name, []).append(run_phase_subprocess(phase, args, backend, round=number))
    merged = {name: merge_rounds(parts) for name, parts in runs.items()}
    return merged.pop("encode", None), merged


def merge_rounds(parts: list[dict]) -> dict:
    """One phase's figures over all rounds: totals, rates over the totals, the highest peak RSS, the mean load time."""
    total = {key: sum(p[key] for p in parts) for key in ("ads", "sentences", "seconds")}
    merged = dict(parts[0]) | {key: round(value, 2) for key, value in total.items()}
    merged["ads_per_s"] = round(total["ads"] / total["seconds"], 3)
    merged["sentences_per_s"] = round(total["sentences"] / total["seconds"], 2)
    merged["load_s"] = round(statistics.mean(p["load_s"] for p in parts), 2)
    merged["rss_mb"] = {key: max(p["rss_mb"][key] for p in parts) for key in parts[0]["rss_mb"]}
    merged["load_average"] = [p["load_average"] for p in parts]
    merged["rounds"] = [{"ads": p["ads"], "sentences": p["sentences"], "seconds": p["seconds"]} for p in parts]
    merged["median_round_sentences_per_s"] = round(statistics.median(p["sentences"] / p["seconds"] for p in parts), 2)
    if "skills" in parts[0]:
        merged["skills"] = sum(p["skills"] for p in parts)
        merged["skills_per_ad"] = round(merged["skills"] / total["ads"], 2)
    return merged


# --------------------------------------------------------------------------------------------------- report
def agreement(reference: list[list[str]], other: list[list[str]]) -> dict[str, float]:
    """Jaccard of the (sentence, skill) pairs two backends predict, and the share of sentences predicted the same."""
    ref = {(i, s) for i, ids in enumerate(reference) for s in ids}
    got = {(i, s) for i, ids in enumerate(other) for s in ids}
    same = sum(a == b for a, b in zip(reference, other, strict=True))
    return {
        "pair_jaccard": round(len(ref & got) / max(1, len(ref | got)), 4),
        "same_sentences": round(same / max(1, len(reference)), 4),
    }


def summarize(args: argparse.Namespace, stats: dict, encode: dict | None, speed: dict, quality: dict) -> dict:
    summary: dict[str, Any] = {
        "benchmark": "ConTeXT-match inference backends",
        "corpus": stats | {"seed": args.seed, "source": "SkillSpan HOUSE/TECH validation + Skill-XL development"},
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            **{name: metadata.version(name) for name in ("torch", "onnxruntime", "sentence-transformers")},
            "threads": args.threads,
            "batch_size": args.batch_size,
            "chunk_ads": args.chunk,
            "device": args.device or "cpu",
            "load_average_at_start": os.getloadavg(),
        },
        "encode": encode,
        "backends": {},
    }
    torch_speed = speed.get("torch", {}).get("sentences_per_s")
    torch_quality = quality.get("torch")
    for backend in args.backends:
        row: dict[str, Any] = {}
        if backend in speed:
            row["speed"] = speed[backend]
            if encode:
                row["vs_bare_encode"] = round(speed[backend]["sentences_per_s"] / encode["sentences_per_s"], 3)
            if torch_speed:
                row["vs_torch"] = round(speed[backend]["sentences_per_s"] / torch_speed, 3)
        if backend in quality:
            row["ranking"] = quality[backend]["ranking"]
            if torch_quality:
                row["extract_agreement_with_torch"] = agreement(
                    torch_quality["extract_ids"], quality[backend]["extract_ids"]
                )
                both = torch_quality["ranking"]["house+tech"], row["ranking"]["house+tech"]
                row["mrr_change_points"] = round(100 * (both[1]["mrr"] - both[0]["mrr"]), 2)
        summary["backends"][backend] = row
    return summary


def format_table(summary: dict) -> str:
    c, m = summary["corpus"], summary["machine"]
    lines = [
        f"ConTeXT-match backends: {c['ads']:,} synthetic ads (seed {c['seed']}), {c['sentences']:,} sentences, "
        f"{c['sentences_per_ad']} sentences and {c['words_per_ad']} words per ad",
        f"machine: {m['cpu_count']} CPUs ({m['processor']}), torch {m['torch']}, onnxruntime {m['onnxruntime']}, "
        f"{m['threads']} threads, batch {m['batch_size']}, chunks of {m['chunk_ads']} ads, device {m['device']}",
        "",
        f"{'what':<46}{'ads/s':>9}{'sent/s':>9}{'vs encode':>11}{'vs torch':>10}{'load s':>8}{'peak RSS MB':>13}"
        f"{'MRR':>8}{'RP@5':>8}{'RP@10':>8}{'agree':>7}",
    ]
    encode = summary["encode"]
    if encode:
        lines.append(
            f"{encode['what']:<46}{encode['ads_per_s']:>9.2f}{encode['sentences_per_s']:>9.1f}{1.0:>11.2f}"
            f"{'':>10}{encode['load_s']:>8.1f}{encode['rss_mb']['peak']:>13.0f}"
        )
    for backend, row in summary["backends"].items():
        s, q = row.get("speed"), row.get("ranking", {}).get("house+tech")
        line = f"{'extract, ' + backend:<46}"
        line += (
            f"{s['ads_per_s']:>9.2f}{s['sentences_per_s']:>9.1f}{row.get('vs_bare_encode', float('nan')):>11.2f}"
            f"{row.get('vs_torch', float('nan')):>10.2f}{s['load_s']:>8.1f}{s['rss_mb']['peak']:>13.0f}"
            if s
            else " " * 60
        )
        if q:
            agree = row.get("extract_agreement_with_torch", {}).get("pair_jaccard", float("nan"))
            line += f"{q['mrr']:>8.3f}{q['rp@5']:>8.2f}{q['rp@10']:>8.2f}{agree:>7.3f}"
        lines.append(line)
    lines += [
        "",
        "MRR / RP@k: HOUSE + TECH validation (136 sentences, 13,896 ESCO v1.1.0 labels encoded by PyTorch fp32);",
        "agree: Jaccard of the (sentence, skill) pairs extract predicts on those sentences, against PyTorch.",
    ]
    for backend, row in summary["backends"].items():
        if "ranking" in row:
            per_split = "; ".join(
                f"{split} {r['mrr']:.3f} / {r['rp@5']:.2f} / {r['rp@10']:.2f}" for split, r in row["ranking"].items()
            )
            lines.append(f"  {backend}: MRR / RP@5 / RP@10 {per_split}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="ConTeXT-match folder (default: the embedded default model)")
    parser.add_argument("--ads", type=int, default=10_000, help="synthetic ads in the corpus (default 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--skip", nargs="*", choices=("encode", "speed", "quality"), default=[], help="phases to skip")
    parser.add_argument("--chunk", type=int, default=100, help="ads per extract call (default 100)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="split the corpus in R parts timed in turn by every backend (default 1)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch threads and onnxruntime intra-op threads")
    parser.add_argument("--device", default=None, help="torch device for the torch backend and bare encode")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="folder with the SkillSpan-ESCO files")
    parser.add_argument("--skill-xl", default=str(SKILL_XL), help="Skill-XL development CSV (sentences, ad lengths)")
    parser.add_argument("--export", action="store_true", help="export the ONNX graphs into a copy under --work first")
    parser.add_argument("--work", default=None, help="folder for the --export copy (default: a temporary folder)")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    parser.add_argument("--phase", choices=tuple(PHASES), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--backend", choices=BACKENDS, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--index-file", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.ads, args.chunk, args.batch_size, args.threads, args.rounds) < 1:
        parser.error("--ads, --chunk, --batch-size, --threads and --rounds must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.phase:
        import torch

        torch.set_num_threads(args.threads)
        ads = (
            [] if args.phase == "quality" else synthetic_ads(args.ads, args.seed, Path(args.data), Path(args.skill_xl))
        )
        ads = ads[args.round :: args.rounds]
        result = PHASES[args.phase](ads, args)
        if args.output:
            write_json(result, args.output)
        else:
            print(json.dumps(result, indent=2))
        return
    from labor_encoders.build import resolve_model_dir

    args.model = str(resolve_model_dir(args.model))
    with tempfile.TemporaryDirectory(prefix="bench-backends-model-") as tmp:
        if args.export and any(b != "torch" for b in args.backends):
            from labor_encoders.backends.onnx_export import export_onnx

            target = Path(args.work or tmp) / "model"
            print(f"exporting ONNX graphs into {target} ...", file=sys.stderr, flush=True)
            export_onnx(args.model, output=target, int8="onnx-int8" in args.backends)
            args.model = str(target)
        stats = corpus_stats(synthetic_ads(args.ads, args.seed, Path(args.data), Path(args.skill_xl)))
        encode, speed = timed_rounds(args)
        quality: dict[str, Any] = {}
        if "quality" not in args.skip:
            order = ["torch", *[b for b in args.backends if b != "torch"]]  # torch first: it writes the label index
            for backend in order:
                extra = {"index_file": quality["torch"]["index_file"]} if "torch" in quality else {}
                quality[backend] = run_phase_subprocess("quality", args, backend, **extra)
    summary = summarize(args, stats, encode, speed, quality)
    print(format_table(summary))
    if args.output:
        write_json(summary, args.output)


if __name__ == "__main__":
    main()
