"""Speed of the light default beside the MPNet default and the peer method of ``esco-skill-extractor`` (all-MiniLM-L6-v2
embeddings of text pieces against ESCO skill descriptions, one cosine each) on the same real ads.

    .venv/bin/python -m labor_encoders.evaluation.benchmark_light --ads ../shared/data/job-ads/nhs-jobs-2020.parquet \\
        --count 50 [--threads 2]

Every method gets the same ``--count`` whole ads (their ``description``), one warm-up call on the first two, then one
timed call over all of them, with ``torch.set_num_threads(--threads)``. ``esco-skill-extractor`` is not a dependency
of this project: install it beside (``pip install --no-deps --target DIR esco-skill-extractor`` and
``PYTHONPATH=DIR``) to include it; it runs on the setup's all-MiniLM-L6-v2 folder (no Hub), and its one-time encoding
of the 13,939 skill descriptions is reported apart. Prints one JSON object and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _time(call, texts: list[str]) -> tuple[float, list]:
    call(texts[:2])  # warm-up: first-call allocations and kernel choices stay out of the timing
    start = time.perf_counter()
    results = call(texts)
    return time.perf_counter() - start, results


def _row(method: str, seconds: float, texts: list[str], words: int, skills: int, evidence: str) -> dict:
    """One method's figures over ``texts`` (``words`` words, ``skills`` skills found in all)."""
    return {
        "method": method,
        "seconds": round(seconds, 2),
        "ads_per_second": round(len(texts) / seconds, 2),
        "words_per_second": round(words / seconds),
        "skills_per_ad": round(skills / len(texts), 1),
        "evidence": evidence,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ads", type=Path, required=True, help="Parquet/CSV of job ads with a description column")
    parser.add_argument("--column", default="description")
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import pandas as pd
    import torch

    from labor_encoders.build import load_contextmatch, resolve_model_dir

    torch.set_num_threads(args.threads)
    read = pd.read_parquet if args.ads.suffix == ".parquet" else pd.read_csv
    texts = [str(t) for t in read(args.ads)[args.column].dropna().head(args.count)]
    words = sum(len(t.split()) for t in texts)
    rows = []
    for name in ("default", "light"):
        model = load_contextmatch(resolve_model_dir(name))
        backbone = getattr(model.config.encoder_config, "_name_or_path", "")
        seconds, results = _time(model.extract, texts)
        skills = sum(len(r["skills"]) for r in results)
        method = f"labor-encoders --model {name} ({backbone})"
        rows.append(_row(method, seconds, texts, words, skills, "words per skill"))
    try:
        from esco_skill_extractor import SkillExtractor
    except ImportError:
        rows.append({"method": "esco-skill-extractor", "skipped": "not installed (see the module docstring)"})
    else:
        from importlib.metadata import version

        from labor_encoders.assets import ensure_minilm

        start = time.perf_counter()
        extractor = SkillExtractor(model=str(ensure_minilm()), device="cpu")
        setup = time.perf_counter() - start
        seconds, results = _time(extractor.get_skills, texts)
        method = f"esco-skill-extractor {version('esco-skill-extractor')} (MiniLM, descriptions, 0.6)"
        row = _row(method, seconds, texts, words, sum(len(r) for r in results), "none")
        rows.append(row | {"first_run_setup_seconds": round(setup, 1)})
    print(json.dumps({"ads": len(texts), "words": words, "threads": args.threads, "rows": rows}, indent=2))
    print("\n| method | ads/s | words/s | skills per ad | evidence |\n|---|---|---|---|---|")
    for row in rows:
        if "skipped" not in row:
            print(
                f"| {row['method']} | {row['ads_per_second']} | {row['words_per_second']:,} | "
                f"{row['skills_per_ad']} | {row['evidence']} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
