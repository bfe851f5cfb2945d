"""Threshold sweeps for ConTeXT-match: precision, recall, F1 and redundancy at every τ, before and after the
redundancy filter, from one encoding pass.

For each sentence the exact match score of every skill is computed once, and so are the token-skill dot products.
The skills above τ are a prefix of the skills sorted by score, so the skill that wins a token among them is a running
arg-max along that order (``cummax``): every τ of the sweep costs one gather, not a new pass. Predictions before the
filter are only needed where they are gold labels (they set ``correct``, ``covered`` and ``redundant``); their count
comes from the sorted scores. The counts then go through the ``skill_extraction`` metric's own definitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

TAUS = tuple(round(step / 100, 2) for step in range(101))


@dataclass
class SentenceTable:
    """One sentence: the match score of every skill, and per τ the skills the redundancy filter keeps."""

    scores: torch.Tensor
    filtered: list[set[int]] = field(default_factory=list)


@torch.inference_mode()
def score_tables(model, sentences: Sequence[str], taus: Sequence[float] = TAUS, batch_size: int = 32):
    """A :class:`SentenceTable` per sentence: exact scores of the sentence as one piece (a benchmark sentence is not
    split further, unlike ``extract`` does with a text). A sentence scored in windows keeps each skill's best window
    score and the union of the windows' filtered skills; a blank sentence predicts nothing."""
    tables = [
        SentenceTable(torch.full((model.config.num_skills,), float("-inf")), [set() for _ in taus]) for _ in sentences
    ]
    skills = model.skill_embeddings.float()
    thresholds = torch.tensor(taus, dtype=torch.float32)
    texts = [i for i, sentence in enumerate(sentences) if str(sentence).strip()]  # a blank one predicts nothing
    for rows, _, encoded, _ in model.encode_segments([str(sentences[i]) for i in texts], batch_size):
        scores = model.score(encoded)  # (B, N), exact: no shortlist
        for row, text_index in enumerate(rows):
            table = tables[texts[text_index]]
            table.scores = torch.maximum(table.scores, scores[row])
            mask = encoded["score_mask"][row]
            dots = encoded["token_embeddings"][row][mask] @ skills.T  # (T, N)
            order = scores[row].argsort(descending=True)
            winners = dots[:, order].cummax(dim=1).indices  # (T, N): position in ``order`` of each prefix's winner
            kept = torch.searchsorted(-scores[row][order].contiguous(), -thresholds, right=True)  # skills >= tau
            for t, count in enumerate(kept.tolist()):
                if count:
                    table.filtered[t].update(order[winners[:, count - 1]].tolist())
    return tables


def sweep(
    tables: Sequence[SentenceTable],
    skill_labels: Sequence[str],
    references: Sequence[Sequence[Sequence[str]]],
    taus: Sequence[float] = TAUS,
) -> list[dict]:
    """Per τ: the ``skill_extraction`` metrics before and after the redundancy filter.

    ``references`` holds each sentence's gold clusters (lists of equivalent labels; a plain gold set is one label per
    cluster). Gold labels that are not in the index count as gold but can never be found.
    """
    from labor_encoders.evaluation.metrics.skill_extraction.skill_extraction import metrics_from_counts, sentence_counts

    if len(tables) != len(references):
        raise ValueError(f"{len(tables)} score tables for {len(references)} references")
    position = {label: i for i, label in enumerate(skill_labels)}
    rows = []
    sorted_scores = [table.scores.sort().values for table in tables]
    for t, tau in enumerate(taus):
        before, after = [], []
        for table, ascending, clusters in zip(tables, sorted_scores, references, strict=True):
            gold = {label for cluster in clusters for label in cluster if label in position}
            found = [label for label in gold if table.scores[position[label]] >= tau]
            counts = sentence_counts(found, clusters)
            counts["predicted"] = len(ascending) - int(torch.searchsorted(ascending, torch.tensor(tau)))
            before.append(counts)
            after.append(sentence_counts([skill_labels[i] for i in table.filtered[t]], clusters))
        rows.append(
            {"tau": tau, "before_filter": metrics_from_counts(before), "after_filter": metrics_from_counts(after)}
        )
    return rows


def best_threshold(rows: Sequence[dict], stage: str = "after_filter", metric: str = "f1") -> dict:
    """The sweep row with the highest ``metric`` at ``stage`` (ties: the lowest τ)."""
    return max(rows, key=lambda row: (row[stage][metric], -row["tau"]))


def plot_sweep(rows: Sequence[dict], path, title: str) -> None:
    """Precision, recall, F1 (before and after the filter) and redundancy against τ, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    taus = [row["tau"] for row in rows]
    figure, axes = plt.subplots(figsize=(8, 5))
    for stage, style in (("before_filter", "--"), ("after_filter", "-")):
        for metric, color in (("precision", "tab:blue"), ("recall", "tab:orange"), ("f1", "tab:green")):
            label = f"{metric} ({stage.replace('_', ' ')})"
            axes.plot(taus, [row[stage][metric] for row in rows], style, color=color, label=label)
        axes.plot(
            taus,
            [row[stage]["redundancy"] for row in rows],
            style,
            color="tab:red",
            label=f"redundancy ({stage.replace('_', ' ')})",
        )
    best = best_threshold(rows)
    axes.axvline(best["tau"], color="grey", linewidth=0.8)
    axes.set(
        xlabel="threshold τ",
        ylabel="score",
        title=f"{title}: best F1 {best['after_filter']['f1']:.3f} at τ = {best['tau']:.2f}",
    )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
