"""The ConTeXT-match formula against a plain per-token loop, and the pure helpers around it."""

from __future__ import annotations

import math

import pytest
import torch

from labor_encoders.modeling.modeling_contextmatch import contextmatch_scores, mean_pool, split_sentences


def loop_scores(tokens: torch.Tensor, mask: torch.Tensor, skills: torch.Tensor) -> torch.Tensor:
    """DESIGN.md's formula written out token by token, in float64."""
    out = torch.zeros(tokens.shape[0], skills.shape[0], dtype=torch.float64)
    for b in range(tokens.shape[0]):
        real = [j for j in range(tokens.shape[1]) if mask[b, j]]
        for s in range(skills.shape[0]):
            z_s = skills[s].double()
            dots = [float(tokens[b, j].double() @ z_s) for j in real]
            top = max(dots)
            weights = [math.exp(d - top) for d in dots]
            total = sum(weights)
            for w, j in zip(weights, real, strict=True):
                z = tokens[b, j].double()
                out[b, s] += w / total * float(z @ z_s / (z.norm() * z_s.norm()))
    return out


@pytest.mark.parametrize("max_block", [1 << 23, 50, 1])
def test_scores_equal_the_per_token_loop(max_block: int) -> None:
    torch.manual_seed(0)
    tokens = torch.randn(3, 6, 8) * 2
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    skills = torch.randn(11, 8)
    expected = loop_scores(tokens, mask, skills)
    got = contextmatch_scores(tokens, mask, skills, max_block=max_block)
    assert got.shape == (3, 11)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-5)


def test_padding_never_changes_a_score() -> None:
    torch.manual_seed(1)
    tokens = torch.randn(1, 4, 8)
    skills = torch.randn(5, 8)
    padded = torch.cat([tokens, torch.randn(1, 3, 8) * 100], dim=1)
    mask = torch.tensor([[True] * 4 + [False] * 3])
    torch.testing.assert_close(
        contextmatch_scores(padded, mask, skills),
        contextmatch_scores(tokens, torch.ones(1, 4, dtype=torch.bool), skills),
    )


def test_a_sentence_without_tokens_scores_zero_and_empty_index_gives_no_columns() -> None:
    tokens = torch.randn(2, 3, 4)
    mask = torch.tensor([[False] * 3, [True] * 3])
    scores = contextmatch_scores(tokens, mask, torch.randn(2, 4))
    assert scores[0].tolist() == [0.0, 0.0] and torch.isfinite(scores).all()
    assert contextmatch_scores(tokens, mask, torch.zeros(0, 4)).shape == (2, 0)


def test_scores_are_bounded_like_a_cosine() -> None:
    torch.manual_seed(2)
    scores = contextmatch_scores(torch.randn(4, 7, 16), torch.ones(4, 7, dtype=torch.bool), torch.randn(30, 16))
    assert scores.min() >= -1 and scores.max() <= 1


def test_mean_pool_ignores_masked_tokens() -> None:
    tokens = torch.tensor([[[1.0, 1.0], [3.0, 5.0], [100.0, 100.0]]])
    assert mean_pool(tokens, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("", []),
        ("   \n\n  ", []),
        ("One sentence without end", ["One sentence without end"]),
        ("Knowledge of SQL, e.g. joins. Python is a plus!", ["Knowledge of SQL, e.g. joins.", "Python is a plus!"]),
        (
            "Profile:\n\u2022 5+ years Java\n  - Spark\r\nTeam player.",
            ["Profile:", "5+ years Java", "Spark", "Team player."],
        ),
        ("Version 2.5 of the tool. 3 years needed.", ["Version 2.5 of the tool.", "3 years needed."]),
        ("Vous parlez français. Wir sprechen Deutsch.", ["Vous parlez français.", "Wir sprechen Deutsch."]),
        ("数据分析。熟悉SQL", ["数据分析。熟悉SQL"]),
    ],
)
def test_split_sentences_keeps_character_offsets(text: str, sentences: list[str]) -> None:
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == sentences
    assert all(0 <= s < e <= len(text) for s, e in spans)
    assert [s for s, _ in spans] == sorted(s for s, _ in spans)


def test_split_sentences_is_linear_on_a_huge_ad() -> None:
    text = "Experience with Python and SQL is required. " * 20_000
    spans = split_sentences(text)
    assert len(spans) == 20_000 and text[spans[-1][0] : spans[-1][1]] == "Experience with Python and SQL is required."
