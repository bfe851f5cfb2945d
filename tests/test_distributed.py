"""In-batch negatives across processes: two real gloo processes (torchrun) each holding part of a batch of 8 take
the very step that one process takes on all 8: the same global loss, gradients and updated weights.

One torchrun launch runs every case of ``tests/distributed_step.py`` and saves rank 0's results; each test compares
one case with :func:`tests.distributed_step.step` run here without a process group (the plain single-process loss).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

from labor_encoders.training import distributed
from labor_encoders.training.distributed import (
    all_gather_ints,
    average_gradients,
    broadcast_parameters,
    gather,
    gather_embedded,
    gather_keys,
    gather_with_grad,
    world,
)
from labor_encoders.training.losses import _check_metadata
from tests.conftest import REPO
from tests.distributed_step import (
    CASES,
    SENTENCES,
    SKILL_LISTS,
    SKILLS,
    build_loss,
    build_model,
    features,
    local_rows,
    step,
)

COMPARED = [name for name, case in CASES.items() if not case.local_only]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory) -> dict:
    """Rank 0's results of every case, from one ``torchrun --nproc_per_node 2`` launch on gloo."""
    output = tmp_path_factory.mktemp("distributed") / "results.pt"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "tests/distributed_step.py",
        str(output),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return torch.load(output)


@pytest.fixture(scope="module")
def single_process_results(tiny_tokenizer) -> dict:
    assert world() == (0, 1)
    return {name: step(CASES[name], tiny_tokenizer) for name in COMPARED}


def assert_same_step(expected: dict, actual: dict) -> None:
    torch.testing.assert_close(actual["loss"], expected["loss"], atol=1e-5, rtol=1e-5)
    assert actual["grads"].keys() == expected["grads"].keys() and len(expected["grads"]) > 30
    for name, grad in expected["grads"].items():
        torch.testing.assert_close(actual["grads"][name], grad, atol=1e-5, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")
    assert actual["state"].keys() == expected["state"].keys()
    for name, value in expected["state"].items():
        assert torch.allclose(actual["state"][name], value, atol=1e-5), name


# ------------------------------------------------------------------------------------------- the test batch itself
def test_the_only_duplicate_pair_sits_on_two_ranks_whose_batches_pad_to_different_lengths(tiny_tokenizer) -> None:
    for case in CASES.values():
        keys = SKILLS if case.model == "contextmatch" else SKILL_LISTS
        duplicates = [(i, j) for i in range(8) for j in range(i + 1, 8) if keys[i] == keys[j]]
        assert len(duplicates) == 1
        first, second = (local_rows(case, rank, 2) for rank in (0, 1))
        i, j = duplicates[0]
        assert first.start <= i < first.stop and second.start <= j < second.stop  # i on rank 0, j on rank 1
    rows = [local_rows(CASES["plain"], rank, 2) for rank in (0, 1)]
    widths = {features(tiny_tokenizer, SENTENCES[r])["input_ids"].shape[1] for r in rows}
    assert len(widths) == 2  # token vectors (B, L, H) of a different L per rank: the gather pads them


def test_the_cross_rank_duplicate_changes_the_global_loss(tiny_tokenizer) -> None:
    """So matching the single-process loss (which masks it) proves the distributed loss masked it too."""
    case = CASES["plain"]
    loss_fn = build_loss(case, build_model(case, tiny_tokenizer))
    sentence_features, skill_features = features(tiny_tokenizer, SENTENCES), features(tiny_tokenizer, SKILLS)
    with torch.no_grad():
        masked, unmasked = (
            loss_fn(sentence_features, skill_features, SKILLS),
            loss_fn(sentence_features, skill_features, None),
        )
    assert abs(masked - unmasked) > 1e-3


# ----------------------------------------------------------------------------------------- two processes == one
@pytest.mark.parametrize("name", COMPARED)
@pytest.mark.slow
def test_two_processes_take_the_single_process_step_on_the_global_batch(
    two_process_results, single_process_results, tiny_tokenizer, name
) -> None:
    """Loss, averaged gradients and SGD-updated weights on 2 ranks x 4 pairs (3 + 5 and 6 + 2 in the uneven cases)
    equal those of one process on all 8 pairs; in "broadcast" rank 1 starts from other weights."""
    expected = single_process_results[name]
    assert_same_step(expected, two_process_results[name])
    start = build_model(CASES[name], tiny_tokenizer).state_dict()
    assert max((expected["state"][n] - value).abs().max() for n, value in start.items()) > 0.05  # a real step


def test_with_local_negatives_only_the_step_differs(two_process_results, single_process_results) -> None:
    """The control: had each rank contrasted its 4 pairs with its own negatives only, nothing would match."""
    expected, local = single_process_results["plain"], two_process_results["local_only"]
    assert abs(local["loss"] - expected["loss"]) > 0.1
    with pytest.raises(AssertionError):
        assert_same_step(expected, local)


def test_an_empty_rank_makes_every_rank_raise_instead_of_hanging(two_process_results) -> None:
    for loss in ("plain", "cached"):
        result = two_process_results["empty_batch"][loss]
        assert result["ranks_raised"] == 2, result
        assert "rank 1 has an empty batch" in result["message"]


# --------------------------------------------------------------------------------------------- one process
def test_without_a_process_group_everything_is_the_identity_or_a_no_op() -> None:
    assert world() == (0, 1)
    vectors, mask, keys = torch.randn(3, 5, 4, requires_grad=True), torch.ones(3, 5, dtype=torch.bool), torch.arange(3)
    assert gather_with_grad(vectors) is vectors and gather(mask) is mask and gather_keys(keys) is keys
    assert gather_embedded(vectors, mask) == (vectors, mask) and gather_embedded(vectors)[1] is None
    assert all_gather_ints([4, -1]) == [[4, -1]]
    layer = torch.nn.Linear(3, 2)
    layer(torch.randn(4, 3)).sum().backward()
    before = {name: (p.detach().clone(), p.grad, p.grad.clone()) for name, p in layer.named_parameters()}
    average_gradients(layer.parameters())
    broadcast_parameters(layer.parameters())
    for name, p in layer.named_parameters():
        value, grad_object, grad = before[name]
        assert p.grad is grad_object and torch.equal(p.grad, grad) and torch.equal(p, value)
    with pytest.raises(TypeError, match="int64"):
        gather_keys(torch.zeros(3))


def test_padding_extends_every_dimension_at_its_end_with_zeros_or_false() -> None:
    tokens = torch.ones(2, 3, 4)
    padded = distributed._pad_to(tokens, [5, 6, 4])
    assert padded.shape == (5, 6, 4) and padded.sum() == tokens.sum() and torch.equal(padded[:2, :3], tokens)
    mask = distributed._pad_to(torch.ones(2, 3, dtype=torch.bool), [2, 5])
    assert mask.dtype == torch.bool and mask.sum() == 6 and not mask[:, 3:].any()
    assert distributed._pad_to(tokens, [2, 3, 4]) is tokens


def test_inconsistent_ranks_are_reported_from_the_gathered_metadata() -> None:
    """Rows: [anchors, positives, keys or -1, anchor mask, positive mask, symmetric, bad keys] per rank."""
    _check_metadata([[4, 4, 4, 1, 0, 0, 0], [3, 3, 3, 1, 0, 0, 0]])  # unequal sizes are fine
    problems = {
        "rank 1 has an empty batch": [[4, 4, 4, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0]],
        "rank 0 has 4 anchors but 3 positives": [[4, 3, -1, 0, 0, 0, 0], [4, 4, -1, 0, 0, 0, 0]],
        "rank 1 got 2 keys for a batch of 4 pairs": [[4, 4, 4, 0, 0, 0, 0], [4, 4, 2, 0, 0, 0, 0]],
        r"ranks disagree on keys: \[True, False\]": [[4, 4, 4, 0, 0, 0, 0], [4, 4, -1, 0, 0, 0, 0]],
        "ranks disagree on symmetric": [[4, 4, 4, 0, 0, 1, 0], [4, 4, 4, 0, 0, 0, 0]],
        "rank 0 passed keys that are not strings": [[4, 4, 4, 0, 0, 0, 1], [4, 4, 4, 0, 0, 0, 0]],
    }
    for message, metadata in problems.items():
        with pytest.raises(ValueError, match=message):
            _check_metadata(metadata)
