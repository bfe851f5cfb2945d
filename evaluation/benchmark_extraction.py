"""CPU throughput and memory of ConTeXT-match extraction against bare sentence-transformers encoding.

Inputs: the 136 SkillSpan-ESCO validation sentences (house 61 + tech 75, read in place with
``labor_encoders.evaluation.skillspan``), each passed as one text. Every timing follows one warm-up pass and is the
median over
``--repeats`` runs, with ``torch.set_num_threads(--threads)``:

1. ``encode``  - ``SentenceTransformer(ensure_mpnet()).encode(sentences, batch_size=bs)``: the bare bi-encoder;
2. ``extract`` - ``model.extract(sentences, batch_size=bs)`` against the full ESCO index, and its ratio to (1)
   (the project target is >= 0.90);
3. ``rank``    - ``model.rank(sentences, top_k=10)``: the ConTeXT-match scoring path without extract's per-sentence
   post-processing (and the ``scoring="mean-pool"`` baseline for reference);
4. ``profile`` - where extract's time goes, timed over the model's own pieces on exactly the batches extract forms:
   sentence splitting, tokenization + encoder forward (``encode_segments``), scoring against the skill index
   (``score`` with the configured pre-ranking shortlist), and the rest (threshold, redundancy filter, evidence,
   formatting: the residual against a full ``extract`` timed in the same repeat). Interleaved in the same process,
   for references robust to other load on the machine: (1) again, (1) fed extract's length buckets (a like-for-like
   bare encode: sentence-transformers sorts longest first in fixed batches, so its padding differs), and
   ``extract(threshold=inf)`` (no skills, no post-processing).

Each phase runs in a fresh subprocess (``python -m labor_encoders.evaluation.benchmark_extraction --phase NAME``) so
that its peak
RSS (``resource.getrusage().ru_maxrss``) is its own; ``--in-process`` runs them all here instead (peaks accumulate).

Run from the repository root (takes a few minutes on 2 cores)::

    .venv/bin/python -m labor_encoders.evaluation.benchmark_extraction [--model DIR] [--repeats 3] [--batch-size 32] \
        [--threads 2] [--data DIR] [--json OUT]

This is a benchmark, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "skillspan-esco"
ANNOTATION_FILES = ("house_validation_annotations.csv", "tech_validation_annotations.csv")
VOCABULARY_FILE = "skills_en_label.txt"
PHASES = ("encode", "extract", "rank", "profile")
PROFILE_PARTS = {
    "split": "split_sentences",
    "segments": "tokenize + encoder forward (encode_segments)",
    "score": "scoring vs skill index (_score, shortlist)",
}


# --------------------------------------------------------------------------------------------------- helpers
def load_sentences(data_dir: Path) -> tuple[list[str], dict[str, int]]:
    """The validation sentences of both SkillSpan-ESCO parts, in first-seen order, and how many each part gives."""
    from labor_encoders.evaluation.skillspan import load_skillspan, read_labels

    vocabulary = read_labels(data_dir / VOCABULARY_FILE)
    files = [data_dir / name for name in ANNOTATION_FILES]
    missing = [str(f) for f in [*files, data_dir / VOCABULARY_FILE] if not f.is_file()]
    if missing:
        raise SystemExit(f"benchmark data not found: {', '.join(missing)} (pass --data DIR)")
    counts = {f.name.split("_")[0]: len(load_skillspan([f], vocabulary)) for f in files}
    return [example.sentence for example in load_skillspan(files, vocabulary)], counts


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20) if sys.platform == "darwin" else peak / 1024, 1)


def time_runs(fn: Callable[[], Any], repeats: int, warmup: bool = True) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn``, after one untimed warm-up call."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def throughput(times: list[float], n: int) -> dict[str, Any]:
    """Median seconds and sentences per second of a list of timings over ``n`` sentences."""
    median = statistics.median(times)
    return {
        "seconds": [round(t, 4) for t in times],
        "median_s": round(median, 4),
        "sentences_per_s": round(n / median, 2),
    }


def setup_torch(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def load_model(model_dir: str | None):
    from labor_encoders.build import load_contextmatch, resolve_model_dir

    path = resolve_model_dir(model_dir)
    return load_contextmatch(path), str(path)


# ---------------------------------------------------------------------------------------------------- phases
def load_sentence_transformer():
    """all-mpnet-base-v2 as a plain sentence-transformers model on CPU, and its folder."""
    from sentence_transformers import SentenceTransformer

    from labor_encoders.assets import ensure_mpnet

    path = ensure_mpnet()
    return SentenceTransformer(str(path), device="cpu"), str(path)


def st_padded_tokens(model, sentences: list[str], batch_size: int) -> int:
    """Token slots (padding included) of the batches encode forms: longest texts first, padded per batch."""
    order = sorted(sentences, key=len, reverse=True)
    return sum(
        model.preprocess(order[start : start + batch_size])["input_ids"].numel()
        for start in range(0, len(order), batch_size)
    )


def phase_encode(sentences: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """(1) Bare sentence-transformers encoding of the sentences with all-mpnet-base-v2."""
    rss = {"start": peak_rss_mb()}
    model, path = load_sentence_transformer()
    rss["after_load"] = peak_rss_mb()
    times = time_runs(
        lambda: model.encode(sentences, batch_size=args.batch_size, show_progress_bar=False), args.repeats
    )
    rss["peak"] = peak_rss_mb()
    return {
        "model": path,
        "max_seq_length": model.max_seq_length,
        **throughput(times, len(sentences)),
        "padded_tokens": st_padded_tokens(model, sentences, args.batch_size),
        "load_average": os.getloadavg(),
        "rss_mb": rss,
    }


def phase_extract(sentences: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """(2) ``model.extract`` against the full skill index."""
    rss = {"start": peak_rss_mb()}
    model, path = load_model(args.model)
    rss["after_load"] = peak_rss_mb()
    results: list[Any] = []
    times = time_runs(lambda: results.append(model.extract(sentences, batch_size=args.batch_size)), args.repeats)
    rss["peak"] = peak_rss_mb()
    skills = [len(r["skills"]) for r in results[-1]]
    return {
        "model": path,
        "num_skills": model.config.num_skills,
        "threshold": model.config.threshold,
        "redundancy_filter": model.config.redundancy_filter,
        **throughput(times, len(sentences)),
        "skills_per_sentence": round(sum(skills) / len(skills), 2),
        "load_average": os.getloadavg(),
        "rss_mb": rss,
    }


def phase_rank(sentences: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """(3) ``model.rank(top_k=10)`` with ConTeXT-match scoring and with the mean-pool baseline.

    The warm-up passes run one after the other (the RSS after the contextmatch one is its own peak); the timed
    runs alternate between the two, so that their difference (the scoring cost) is robust to other load.
    """
    rss = {"start": peak_rss_mb()}
    model, path = load_model(args.model)
    rss["after_load"] = peak_rss_mb()
    runs = {
        scoring: lambda scoring=scoring: model.rank(sentences, top_k=10, scoring=scoring, batch_size=args.batch_size)
        for scoring in ("contextmatch", "mean-pool")
    }
    for scoring, run in runs.items():
        run()
        rss[f"peak_after_{scoring}"] = peak_rss_mb()
    times: dict[str, list[float]] = {scoring: [] for scoring in runs}
    for _ in range(args.repeats):
        for scoring, run in runs.items():
            times[scoring] += time_runs(run, 1, warmup=False)
    out = {scoring: throughput(values, len(sentences)) for scoring, values in times.items()}
    return {"model": path, **out, "load_average": os.getloadavg(), "rss_mb": rss}


def profile_pass(model, sentences: list[str], batch_size: int) -> tuple[dict[str, float], dict[str, int]]:
    """Extract's own pieces, timed on exactly the batches extract forms: sentence splitting, the model's
    tokenization + encoder forward (``encode_segments``) and its scoring (``score`` with the configured shortlist).
    The rest of extract (threshold, redundancy filter, evidence, formatting) is the residual against a full run."""
    import torch

    from labor_encoders.modeling.modeling_contextmatch import split_sentences

    times = {"split": 0.0, "segments": 0.0, "score": 0.0}
    stats = {"pieces": 0, "windows": 0, "batches": 0, "real_tokens": 0, "padded_tokens": 0, "kept_before_filter": 0}
    with torch.inference_mode():
        clock = time.perf_counter()
        pieces = [text[s:e] for text in sentences for s, e in split_sentences(text)]
        times["split"] = time.perf_counter() - clock
        clock = time.perf_counter()
        for rows, _, encoded, _ in model.encode_segments(pieces, batch_size):
            scored = time.perf_counter()
            times["segments"] += scored - clock
            scores = model.score(encoded, shortlist=model.config.prerank_candidates)
            clock = time.perf_counter()
            times["score"] += clock - scored
            stats["windows"] += len(rows)
            stats["batches"] += 1
            stats["real_tokens"] += int(encoded["attention_mask"].sum())
            stats["padded_tokens"] += encoded["attention_mask"].numel()
            stats["kept_before_filter"] += int((scores >= model.config.threshold).sum())
    stats["pieces"] = len(pieces)
    return times, stats


def extract_like_chunks(model, sentences: list[str], batch_size: int) -> list[list[str]]:
    """The sentences in the length buckets extract forms (for a like-for-like bare encode)."""
    from labor_encoders.modeling.encoder_utils import length_buckets

    ids = model.tokenizer(sentences, truncation=True, max_length=model.config.max_seq_length)["input_ids"]
    return [[sentences[i] for i in rows] for rows in length_buckets([len(x) for x in ids], batch_size)]


def plain_tokenize(model, sentences: list[str], batch_size: int) -> None:
    """Reference: the tokenization sentence-transformers does (per batch, padded tensors, no offsets)."""
    for start in range(0, len(sentences), batch_size):
        model.tokenizer(
            sentences[start : start + batch_size],
            padding=True,
            truncation=True,
            max_length=model.config.max_seq_length,
            return_tensors="pt",
        )


def phase_profile(sentences: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """(4) Split of extract's time. Each repeat times, interleaved (robust to other load on the machine): a bare
    encode, the same encode fed extract's length buckets, a full extract (for the residual), extract with an
    unreachable threshold (no post-processing), plain tokenization, and the model's own pieces."""
    rss = {"start": peak_rss_mb()}
    model, path = load_model(args.model)
    st_model, _ = load_sentence_transformer()
    rss["after_load"] = peak_rss_mb()
    chunks = extract_like_chunks(model, sentences, args.batch_size)
    runs = {
        "encode": lambda: st_model.encode(sentences, batch_size=args.batch_size, show_progress_bar=False),
        "encode_same_batches": lambda: [
            st_model.encode(chunk, batch_size=args.batch_size, show_progress_bar=False) for chunk in chunks
        ],
        "extract": lambda: model.extract(sentences, batch_size=args.batch_size),
        "extract_no_skills": lambda: model.extract(sentences, threshold=float("inf"), batch_size=args.batch_size),
        "plain_tokenize": lambda: plain_tokenize(model, sentences, args.batch_size),
    }
    for run in runs.values():
        run()
    profile_pass(model, sentences, args.batch_size)
    names = [*runs, *PROFILE_PARTS, "rest", "ratio", "ratio_same_batches"]
    timings: dict[str, list[float]] = {name: [] for name in names}
    stats: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, run in runs.items():
            timings[name] += time_runs(run, 1, warmup=False)
        parts, stats = profile_pass(model, sentences, args.batch_size)
        for name, seconds in parts.items():
            timings[name].append(seconds)
        timings["rest"].append(timings["extract"][-1] - sum(parts.values()))
        timings["ratio"].append(timings["encode"][-1] / timings["extract"][-1])
        timings["ratio_same_batches"].append(timings["encode_same_batches"][-1] / timings["extract"][-1])
    rss["peak"] = peak_rss_mb()
    medians = {name: round(statistics.median(values), 4) for name, values in timings.items()}
    return {
        "model": path,
        "encode_median_s": medians["encode"],
        "encode_same_batches_median_s": medians["encode_same_batches"],
        "extract_median_s": medians["extract"],
        "extract_no_skills_median_s": medians["extract_no_skills"],
        "extract_vs_encode_interleaved": round(medians["ratio"], 3),
        "extract_vs_encode_same_batches": round(medians["ratio_same_batches"], 3),
        "parts_median_s": {name: medians[name] for name in [*PROFILE_PARTS, "rest"]},
        "plain_tokenize_median_s": medians["plain_tokenize"],
        **stats,
        "load_average": os.getloadavg(),
        "rss_mb": rss,
    }


PHASE_FUNCTIONS: dict[str, Callable[[list[str], argparse.Namespace], dict[str, Any]]] = {
    "encode": phase_encode,
    "extract": phase_extract,
    "rank": phase_rank,
    "profile": phase_profile,
}


def run_phase(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Load the sentences, set the threads and run one phase in this process."""
    setup_torch(args.threads)
    sentences, _ = load_sentences(Path(args.data))
    return PHASE_FUNCTIONS[name](sentences, args)


def run_phase_subprocess(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one phase in a fresh Python process, so that its peak RSS is its own."""
    with tempfile.TemporaryDirectory(prefix="bench-extraction-") as tmp:
        out = Path(tmp) / f"{name}.json"
        command = [
            sys.executable,
            "-m",
            "labor_encoders.evaluation.benchmark_extraction",
            "--phase",
            name,
            "--json",
            str(out),
        ]
        command += ["--repeats", str(args.repeats), "--batch-size", str(args.batch_size)]
        command += ["--threads", str(args.threads), "--data", str(args.data)]
        if args.model:
            command += ["--model", str(args.model)]
        subprocess.run(command, cwd=REPO_ROOT, check=True)
        return json.loads(out.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------------- report
def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": metadata.version("torch"),
        "transformers": metadata.version("transformers"),
        "sentence_transformers": metadata.version("sentence-transformers"),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "in_process": args.in_process,
        "load_average_at_start": os.getloadavg(),
    }


def summarize(results: dict[str, Any], counts: dict[str, int], n: int, machine: dict[str, Any]) -> dict[str, Any]:
    """All figures in one JSON-ready dict, with the extract/encode ratio."""
    encode = results["encode"]["sentences_per_s"]
    ratio = round(results["extract"]["sentences_per_s"] / encode, 3)
    profile = results["profile"]
    own_forward = round(profile["parts_median_s"]["segments"] / profile["extract_median_s"], 3)
    return {
        "benchmark": "SkillSpan-ESCO validation sentences",
        "sentences": n,
        "sentences_per_part": counts,
        "machine": machine,
        "isolated_processes": not machine["in_process"],
        "extract_vs_encode": ratio,
        "target_extract_vs_encode": 0.90,
        "encoder_forward_share_of_extract": own_forward,
        **results,
    }


def format_table(summary: dict[str, Any]) -> str:
    """The human-readable report."""
    m, enc, ext, rank, prof = (summary[k] for k in ("machine", "encode", "extract", "rank", "profile"))
    parts = " + ".join(f"{k} {v}" for k, v in summary["sentences_per_part"].items())
    lines = [
        f"ConTeXT-match extraction benchmark: {summary['sentences']} SkillSpan-ESCO validation sentences ({parts})",
        f"machine: os.cpu_count()={m['cpu_count']} ({m['processor']}), Python {m['python']}, torch {m['torch']}, "
        f"transformers {m['transformers']}, sentence-transformers {m['sentence_transformers']}",
        f"settings: torch threads {m['threads']}, batch size {m['batch_size']}, median of {m['repeats']} runs "
        f"after 1 warm-up; {'one process per phase' if summary['isolated_processes'] else 'all in one process'}",
        f"model: {ext['model']} ({ext['num_skills']:,} skills, threshold {ext['threshold']}, "
        f"redundancy filter {ext['redundancy_filter']})",
        "",
        f"{'phase':<44}{'median s':>10}{'sent/s':>10}{'vs (1)':>9}{'RSS load MB':>13}{'peak RSS MB':>13}",
    ]
    enc_rate = enc["sentences_per_s"]

    def row(label: str, figures: dict[str, Any], rss: dict[str, float], peak: float) -> str:
        rate = figures["sentences_per_s"]
        return (
            f"{label:<44}{figures['median_s']:>10.3f}{rate:>10.1f}{rate / enc_rate:>9.2f}"
            f"{rss['after_load']:>13.0f}{peak:>13.0f}"
        )

    lines += [
        row("(1) SentenceTransformer.encode", enc, enc["rss_mb"], enc["rss_mb"]["peak"]),
        row("(2) model.extract", ext, ext["rss_mb"], ext["rss_mb"]["peak"]),
        row(
            "(3) model.rank top_k=10 (contextmatch)",
            rank["contextmatch"],
            rank["rss_mb"],
            rank["rss_mb"]["peak_after_contextmatch"],
        ),
        row(
            "    model.rank top_k=10 (mean-pool)",
            rank["mean-pool"],
            rank["rss_mb"],
            rank["rss_mb"]["peak_after_mean-pool"],
        ),
        "",
        f"extract/encode throughput ratio: {summary['extract_vs_encode']:.3f} from (1) and (2); "
        f"{prof['extract_vs_encode_interleaved']:.3f} interleaved in one process "
        f"(encode {prof['encode_median_s']:.3f} s, extract {prof['extract_median_s']:.3f} s); target >= 0.90",
        f"same batch layout (encode fed extract's length buckets, interleaved): "
        f"encode {prof['encode_same_batches_median_s']:.3f} s, "
        f"extract/encode {prof['extract_vs_encode_same_batches']:.3f}",
        f"extract spends {summary['encoder_forward_share_of_extract']:.3f} of its time tokenizing and encoding",
        f"token slots incl. padding: encode {enc['padded_tokens']} (longest texts first, padded per batch), "
        f"extract {prof['padded_tokens']} (length buckets, {prof['real_tokens']} real tokens)",
        f"scoring cost seen by rank: contextmatch - mean-pool = "
        f"{rank['contextmatch']['median_s'] - rank['mean-pool']['median_s']:.3f} s; "
        f"extract - rank(contextmatch) = {ext['median_s'] - rank['contextmatch']['median_s']:.3f} s",
        f"extract found {ext['skills_per_sentence']} skills per sentence on average",
        "",
        "(4) extract time split over the model's own pieces (medians; rest = extract in the same repeat - parts)",
        f"{'stage':<48}{'s':>9}{'% extract':>11}",
    ]
    total = prof["extract_median_s"]
    labels = {**PROFILE_PARTS, "rest": "rest: threshold, filter, evidence, format"}
    for name, seconds in prof["parts_median_s"].items():
        lines.append(f"  {labels[name]:<46}{seconds:>9.3f}{100 * seconds / total:>10.1f}%")
    plain, no_skills = prof["plain_tokenize_median_s"], prof["extract_no_skills_median_s"]
    lines += [
        f"  {'extract (whole)':<46}{total:>9.3f}{100.0:>10.1f}%",
        f"  {'reference: plain tokenization, as ST does it':<46}{plain:>9.3f}{100 * plain / total:>10.1f}%",
        f"  {'reference: extract(threshold=inf), no skills':<46}{no_skills:>9.3f}{100 * no_skills / total:>10.1f}%",
        f"  {'  => post-processing (extract - that)':<46}{total - no_skills:>9.3f}"
        f"{100 * (total - no_skills) / total:>10.1f}%",
        f"  {'reference: SentenceTransformer.encode':<46}{prof['encode_median_s']:>9.3f}"
        f"{100 * prof['encode_median_s'] / total:>10.1f}%",
        f"  {'reference: the same, extract batch layout':<46}{prof['encode_same_batches_median_s']:>9.3f}"
        f"{100 * prof['encode_same_batches_median_s'] / total:>10.1f}%",
        f"extract batches: {prof['pieces']} sentence pieces -> {prof['windows']} windows in {prof['batches']} batches",
        f"{prof['kept_before_filter']} (window, skill) pairs reach the threshold before the redundancy filter",
        f"profile process: RSS after load (both models) {prof['rss_mb']['after_load']:.0f} MB, "
        f"peak {prof['rss_mb']['peak']:.0f} MB",
        "load average (1/5/15 min) at the start "
        + "/".join(f"{x:.1f}" for x in m["load_average_at_start"])
        + " and at the end of each phase: "
        + "; ".join(
            f"{name} {'/'.join(f'{x:.1f}' for x in summary[name]['load_average'])}"
            for name in ("encode", "extract", "rank", "profile")
        ),
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="ConTeXT-match folder (default: the embedded default model)")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="folder with the SkillSpan-ESCO files")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median reported)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--json", default=None, help="write the figures as JSON to this file")
    parser.add_argument("--phase", choices=PHASES, default=None, help="run one phase only (used for subprocesses)")
    parser.add_argument("--in-process", action="store_true", help="run all phases in this process (peaks accumulate)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.batch_size < 1 or args.threads < 1:
        parser.error("--repeats, --batch-size and --threads must be positive")
    return args


def write_json(data: dict[str, Any], path: str) -> None:
    Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.phase:
        result = run_phase(args.phase, args)
        if args.json:
            write_json(result, args.json)
        else:
            print(json.dumps(result, indent=2))
        return
    sentences, counts = load_sentences(Path(args.data))
    machine = machine_info(args)
    results = {}
    for name in PHASES:
        print(f"running phase {name} ...", file=sys.stderr, flush=True)
        results[name] = run_phase(name, args) if args.in_process else run_phase_subprocess(name, args)
    summary = summarize(results, counts, len(sentences), machine)
    print(format_table(summary))
    if args.json:
        write_json(summary, args.json)


if __name__ == "__main__":
    main()
