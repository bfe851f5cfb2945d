"""Response times of the web demo's actions (space/app.py) on the embedded default models, on this machine's CPU.

Each figure is the median of ``--repeats`` runs after one warm-up, of the same function the page calls:

- ``extract_skills`` on the three example ads, and on a 20,000-word ad (the nurse example repeated), which the page
  cuts at ``MAX_WORDS`` (5,000) words and says so;
- ``normalize_titles`` for 1 and for 200 titles (the page's limit);
- ``run_batch`` on 1,000 ads (the page's limit), built by cycling the three example ads, with titles;
- two 5,000-word extractions at once from two threads, as two users of the page (the extraction tab runs two at a
  time).

Run from the repository root::

    .venv/bin/python -m labor_encoders.evaluation.benchmark_demo [--repeats 3] [--threads 2]

This is a benchmark, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import torch

from labor_encoders.space.app import EXAMPLES, MAX_WORDS, extract_skills, limit_words, normalize_titles, run_batch

TITLES = ["senior data engineer", "registered nurse", "sous chef", "warehouse operative", "primary school teacher"]


def median_seconds(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def concurrent_seconds(function, users: int) -> float:
    threads = [threading.Thread(target=function) for _ in range(users)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from labor_encoders.build import load_contextmatch, resolve_model_dir
    from labor_encoders.jobbert import load_jobbert, resolve_jobbert_dir

    contextmatch = load_contextmatch(resolve_model_dir(None))
    jobbert = load_jobbert(resolve_jobbert_dir(None))
    ads = {name: path.read_text(encoding="utf-8") for name, path in EXAMPLES.items()}
    nurse = ads["Nurse (long, several paragraphs)"]
    huge = "\n\n".join([nurse] * (20_000 // len(nurse.split()) + 1))
    huge = limit_words(huge, 20_000)[0]

    print(f"torch threads: {args.threads}; median of {args.repeats} after a warm-up\n")
    print("| action | input | seconds |\n|---|---|---|")
    for name, text in ads.items():
        seconds = median_seconds(lambda text=text: extract_skills(contextmatch, text), args.repeats)
        print(f"| extract | {name}: {len(text.split()):,} words | {seconds:.2f} |")
    result = extract_skills(contextmatch, huge)
    seconds = median_seconds(lambda: extract_skills(contextmatch, huge), args.repeats)
    print(f"| extract | {len(huge.split()):,}-word ad, cut at {MAX_WORDS:,} words | {seconds:.2f} |")
    both = concurrent_seconds(lambda: extract_skills(contextmatch, huge), users=2)
    print(f"| extract, 2 users at once | two {len(huge.split()):,}-word ads | {both:.2f} (both done) |")
    for count in (1, 200):
        titles = "\n".join((TITLES * count)[:count])
        seconds = median_seconds(lambda titles=titles: normalize_titles(jobbert, titles), args.repeats)
        print(f"| job titles | {count} titles | {seconds:.2f} |")
    with tempfile.TemporaryDirectory() as folder:
        rows = [{"title": TITLES[i % 3], "text": list(ads.values())[i % 3]} for i in range(1_000)]
        path = Path(folder) / "ads.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
        started = time.perf_counter()
        batch = run_batch(contextmatch, jobbert, path, "text", "title", None, "csv", folder)
        seconds = time.perf_counter() - started
    print(f"| batch | 1,000 ads ({sum(len(r['text'].split()) for r in rows):,} words), CSV | {seconds:.1f} |")
    print(f"\n20,000-word ad notice: {result['notice']}")
    print(f"batch: {batch['summary']}")


if __name__ == "__main__":
    main()
