"""How many skills a whole real ad gets, and whether their evidence points at words, at several thresholds.

    .venv/bin/python -m labor_encoders.evaluation.evidence_spans --ads ../shared/data/job-ads/nhs-jobs-2020.parquet \\
        --count 15 --thresholds 0.48 0.55 [--model DIR]

For the first ``--count`` ads of the file (their ``description``, one text each, as ``labor-encoders extract`` and
``batch`` see them) it prints, per τ: skills kept in all and per ad (after the redundancy filter), and the share of
kept skills whose longest evidence span is longer than ``--long`` words (8): such a highlight covers most of a
sentence and explains little. It also counts skills whose evidence is a whole sentence of the ad (of two words or more).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from labor_encoders.modeling.modeling_contextmatch import split_sentences


def span_figures(results: list[dict], long: int = 8) -> dict:
    """Counts over ``extract`` results: skills, skills per text, and evidence spans longer than ``long`` words.

    >>> evidence = [{"start": 0, "end": 8, "text": "Use SQL."}], [{"start": 4, "end": 7, "text": "SQL"}]
    >>> results = [{"text": "Use SQL.", "skills": [{"evidence": evidence[0]}, {"evidence": evidence[1]}]}]
    >>> figures = span_figures(results, long=1)
    >>> figures["long_evidence_share"], figures["whole_sentence_evidence_share"]
    (0.5, 0.5)
    """
    skills = [(result, skill) for result in results for skill in result["skills"]]
    longest = [max((len(e["text"].split()) for e in s["evidence"]), default=0) for _, s in skills]
    sentences = [{(a, b) for a, b in split_sentences(result["text"]) if len(result["text"][a:b].split()) > 1}
                 for result in results]  # fmt: skip
    spans = {id(result): sentence for result, sentence in zip(results, sentences, strict=True)}
    whole = sum(any((e["start"], e["end"]) in spans[id(r)] for e in s["evidence"]) for r, s in skills)
    per_text = [len(result["skills"]) for result in results]
    return {
        "texts": len(results),
        "skills": len(skills),
        "skills_per_text": round(statistics.mean(per_text), 2) if per_text else 0.0,
        "long_evidence_share": round(sum(n > long for n in longest) / len(skills), 4) if skills else 0.0,
        "whole_sentence_evidence_share": round(whole / len(skills), 4) if skills else 0.0,
        "median_longest_span_words": statistics.median(longest) if longest else 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ads", type=Path, required=True, help="Parquet/CSV of job ads with a description column")
    parser.add_argument("--column", default="description")
    parser.add_argument("--count", type=int, default=15)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.48, 0.55])
    parser.add_argument("--long", type=int, default=8, help="a span longer than this many words is 'long'")
    parser.add_argument("--model", type=Path, help="ConTeXT-match folder (default: the embedded default)")
    args = parser.parse_args(argv)

    import pandas as pd

    from labor_encoders.build import load_contextmatch, resolve_model_dir

    read = pd.read_parquet if args.ads.suffix == ".parquet" else pd.read_csv
    texts = [str(t) for t in read(args.ads)[args.column].dropna().head(args.count)]
    model = load_contextmatch(resolve_model_dir(args.model))
    rows = []
    for tau in args.thresholds:
        rows.append({"threshold": tau, **span_figures(model.extract(texts, threshold=tau), args.long)})
    print(json.dumps({"model": str(resolve_model_dir(args.model)), "ads": str(args.ads), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
