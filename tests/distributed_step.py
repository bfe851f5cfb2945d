"""One SGD step of each distributed-loss case, the script that ``tests/test_distributed.py`` runs under torchrun:

    python -m torch.distributed.run --nproc_per_node 2 tests/distributed_step.py OUTPUT.pt

Every rank builds the same tiny model, takes its slice of a fixed global batch of 8 pairs, computes the loss,
backpropagates, calls :func:`labor_encoders.training.distributed.average_gradients` and takes one SGD step; rank 0
saves, per case,
the global loss (mean of the ranks' losses), the averaged gradients and the updated state_dict. The test runs
:func:`step` in its own process on all 8 pairs (no process group: the plain single-process loss) and compares.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from unittest import mock

import torch
import torch.distributed as dist
from transformers import BertTokenizerFast

from labor_encoders.training import losses
from labor_encoders.training.distributed import average_gradients, broadcast_parameters, world
from labor_encoders.training.gradcache import CachedContextMatchInfoNCE, CachedJobBERTInfoNCE
from labor_encoders.training.losses import ContextMatchInfoNCE, JobBERTInfoNCE
from tests.conftest import WORDS, make_tiny_model
from tests.test_jobbert import make_tiny_jobbert

# The only duplicate skill is rows 1 and 5, on different ranks for every split used below (3, 4 and 6 rows on rank 0).
SENTENCES = [
    "sql skills",
    "we use python and sql",
    "team work",
    "strong knowledge of databases such as postgresql and experience with spark airflow in english dutch",
    "we offer a bike",
    "python pipelines in the cloud aws",
    "agile mentoring and communication skills with the team",
    "machine learning models",
]
SKILLS = [
    "sql",
    "python",
    "team work",
    "data analysis",
    "manage project",
    "python",
    "communication",
    "machine learning",
]
# JobBERT: the only duplicate skill list is rows 2 and 6.
TITLES = ["python developer", "data analysis", "project manager", "java", "cloud data engineer", "sql", "team", "ml"]
SKILL_LISTS = [
    "python, sql",
    "data analysis, sql, python, machine learning, communication",
    "manage project, team work",
    "java",
    "cloud, aws, spark, airflow, pipelines, design",
    "sql",
    "manage project, team work",
    "machine learning, python, data analysis",
]
LEARNING_RATE = 0.1


@dataclass(frozen=True)
class Case:
    model: str  # "contextmatch" or "jobbert"
    cached: bool
    symmetric: bool
    split: int = 4  # rank 0 holds rows [0, split), rank 1 the rest
    local_only: bool = False  # control: every rank contrasts with its own pairs only (no gather)
    perturb: bool = False  # rank 1 starts from other weights, which broadcast_parameters must overwrite


CASES = {
    "plain": Case("contextmatch", cached=False, symmetric=False),
    "plain_symmetric": Case("contextmatch", cached=False, symmetric=True),
    "cached": Case("contextmatch", cached=True, symmetric=False),
    "cached_symmetric": Case("contextmatch", cached=True, symmetric=True),
    "jobbert_cached": Case("jobbert", cached=True, symmetric=False),
    "jobbert_cached_symmetric": Case("jobbert", cached=True, symmetric=True),
    "uneven_cached_symmetric": Case("contextmatch", cached=True, symmetric=True, split=3),
    "uneven_jobbert_symmetric": Case("jobbert", cached=False, symmetric=True, split=6),
    "broadcast": Case("contextmatch", cached=False, symmetric=True, perturb=True),
    "local_only": Case("contextmatch", cached=False, symmetric=False, local_only=True),
}


def build_tokenizer(folder: Path) -> BertTokenizerFast:
    """The tiny WordPiece tokenizer, built exactly as conftest's ``tiny_tokenizer`` fixture builds it."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *".,;:!?()-/+", *"abcdefghijklmnopqrstuvwxyz0123456789"]
    vocab += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + WORDS
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    return BertTokenizerFast(vocab=str(folder / "vocab.txt"))


def build_model(case: Case, tokenizer) -> torch.nn.Module:
    """The same weights in every process (fixed seeds), eval mode (no dropout)."""
    if case.model == "contextmatch":
        return make_tiny_model(tokenizer, "bert", seed=4)
    model = make_tiny_jobbert(tokenizer, seed=5)
    torch.manual_seed(6)
    with torch.no_grad():  # identity heads would make both sides alike
        for head in (model.title_head, model.skills_head):
            head.weight.add_(0.1 * torch.randn_like(head.weight))
    return model


def build_loss(case: Case, model: torch.nn.Module) -> torch.nn.Module:
    if case.model == "contextmatch":
        base = ContextMatchInfoNCE(model, scale=20.0, symmetric=case.symmetric)
        return CachedContextMatchInfoNCE(base, mini_batch_size=3) if case.cached else base
    base = JobBERTInfoNCE(model, scale=20.0, symmetric=case.symmetric)
    return CachedJobBERTInfoNCE(base, mini_batch_size=3) if case.cached else base


def pairs(case: Case) -> tuple[list[str], list[str]]:
    return (SENTENCES, SKILLS) if case.model == "contextmatch" else (TITLES, SKILL_LISTS)


def local_rows(case: Case, rank: int, world_size: int) -> slice:
    """All 8 rows in one process; with two, rank 0 has ``[0, split)`` and rank 1 the rest."""
    if world_size == 1:
        return slice(0, len(SKILLS))
    if world_size != 2:
        raise ValueError(f"the cases are written for 2 processes, got {world_size}")
    return slice(0, case.split) if rank == 0 else slice(case.split, len(SKILLS))


def features(tokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    return dict(tokenizer(texts, padding=True, return_tensors="pt"))  # padded to this rank's own longest text


def step(case: Case, tokenizer) -> dict[str, object]:
    """One training step on this process's rows: the global loss, the averaged gradients, the updated state."""
    rank, size = world()
    model = build_model(case, tokenizer)
    if case.perturb and rank == 1:
        with torch.no_grad():
            for param in model.parameters():
                param.add_(0.5)
    broadcast_parameters(model.parameters())
    anchors, positives = pairs(case)
    rows = local_rows(case, rank, size)
    anchor_features, positive_features = features(tokenizer, anchors[rows]), features(tokenizer, positives[rows])
    loss_fn = build_loss(case, model)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    optimizer.zero_grad(set_to_none=True)
    if case.local_only:  # the control: the losses believe they are alone, so each rank uses local negatives only
        with mock.patch.object(losses, "world", return_value=(0, 1)):
            loss = loss_fn(anchor_features, positive_features, positives[rows])
            loss.backward()
    else:
        loss = loss_fn(anchor_features, positive_features, positives[rows])
        loss.backward()
    average_gradients(model.parameters())
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    optimizer.step()
    global_loss = loss.detach().clone()
    if size > 1:
        dist.all_reduce(global_loss)
        global_loss /= size
    state = {name: value.detach().clone() for name, value in model.state_dict().items()}
    return {"loss": global_loss, "grads": grads, "state": state}


def empty_batch_errors(tokenizer) -> dict[str, object]:
    """Rank 1 brings no pairs: every rank must raise (none may wait in a collective). Returns, per loss, how many
    ranks raised the ValueError and rank 0's message."""
    rank, _ = world()
    results: dict[str, object] = {}
    case = CASES["cached_symmetric"]
    for name, cached in (("plain", False), ("cached", True)):
        model = build_model(case, tokenizer)
        loss_fn = build_loss(Case("contextmatch", cached=cached, symmetric=True), model)
        anchor_features, positive_features = features(tokenizer, SENTENCES[:4]), features(tokenizer, SKILLS[:4])
        keys = SKILLS[:4]
        if rank == 1:
            anchor_features = {k: v[:0] for k, v in anchor_features.items()}
            positive_features = {k: v[:0] for k, v in positive_features.items()}
            keys = []
        message = ""
        try:
            loss_fn(anchor_features, positive_features, keys).backward()
        except ValueError as error:
            message = str(error)
        raised = torch.tensor(int(bool(message)))
        dist.all_reduce(raised)
        results[name] = {"ranks_raised": int(raised), "message": message}
    return results


def main(output: str) -> None:
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))  # a hang becomes an error within a minute
    rank, _ = world()
    with tempfile.TemporaryDirectory() as folder:
        tokenizer = build_tokenizer(Path(folder))
        results: dict[str, object] = {name: step(case, tokenizer) for name, case in CASES.items()}
        results["empty_batch"] = empty_batch_errors(tokenizer)
    if rank == 0:
        torch.save(results, output)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
