"""How much of exact ConTeXT-match extraction survives the mean-pooled pre-ranking shortlist.

For every sentence, exact scoring puts some skills above the threshold tau; the pre-ranking keeps only the top-C
skills by cosine of mean-pooled vectors before the token attention. Recall is the share of the exact above-tau
(sentence, skill) pairs that are inside the shortlist, so extraction with the shortlist finds them too.

    .venv/bin/python -m labor_encoders.evaluation.prerank_recall [--model DIR] [--candidates 256 512 1024]
    [--skill-xl-sentences 400]

Sentences: the SkillSpan-ESCO HOUSE + TECH validation sentences and the first N distinct sentences of the Skill-XL
development half, read in place from ../shared/data. Prints JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from labor_encoders.evaluation.skillspan import load_skillspan, read_labels

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shortlist_recall(model, texts: list[str], candidates: list[int], thresholds: list[float]) -> dict:
    """Recall of the above-threshold pairs of exact scoring inside each shortlist size (windows as sentences)."""
    exact, shortlisted = [], {c: [] for c in candidates}
    with torch.inference_mode():
        for _, _, encoded, _ in model.encode_segments(texts, 32):
            exact.append(model.score(encoded))
            for c in candidates:
                shortlisted[c].append(torch.isfinite(model.score(encoded, shortlist=c)))
    scores = torch.cat(exact)
    out = {"sentences": len(texts)}
    for tau in thresholds:
        above = scores >= tau
        out[f"tau={tau}"] = {"pairs_above": int(above.sum())}
        for c in candidates:
            kept = (above & torch.cat(shortlisted[c])).sum().item()
            out[f"tau={tau}"][f"recall@{c}"] = round(kept / max(1, int(above.sum())), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    from labor_encoders.build import load_contextmatch, resolve_model_dir

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--candidates", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--thresholds", type=float, nargs="+", default=None, help="default: the model's tau")
    parser.add_argument("--skill-xl-sentences", type=int, default=400)
    args = parser.parse_args(argv)
    model = load_contextmatch(resolve_model_dir(args.model))
    thresholds = args.thresholds or [model.config.threshold]
    labels = read_labels(args.data / "skillspan-esco" / "skills_en_label.txt")
    files = [args.data / "skillspan-esco" / f"{s}_validation_annotations.csv" for s in ("house", "tech")]
    skillspan = [e.sentence for e in load_skillspan(files, labels)]
    with open(args.data / "skill-xl" / "development_a.csv", encoding="utf-8", newline="") as f:
        skill_xl = list(dict.fromkeys(row["sentence"].strip() for row in csv.DictReader(f)))[: args.skill_xl_sentences]
    report = {
        "model": str(resolve_model_dir(args.model)),
        "skills": model.config.num_skills,
        "skillspan_validation": shortlist_recall(model, skillspan, args.candidates, thresholds),
        "skill_xl_development_a": shortlist_recall(model, skill_xl, args.candidates, thresholds),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
