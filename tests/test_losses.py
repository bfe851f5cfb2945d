"""InfoNCE losses and their gradient-cached versions, on tiny models: duplicate masking, both directions, and the
cached gradients equal to the uncached ones (also under dropout, which proves the RNG replay)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from labor_encoders.modeling.modeling_contextmatch import contextmatch_scores
from labor_encoders.training import gradcache
from labor_encoders.training.gradcache import CachedContextMatchInfoNCE, CachedJobBERTInfoNCE, split_features
from labor_encoders.training.losses import ContextMatchInfoNCE, JobBERTInfoNCE, duplicate_mask, hash_keys, info_nce
from tests.conftest import make_tiny_model
from tests.test_jobbert import make_tiny_jobbert

# Seven pairs: mini-batches of 3 are short (rows 0-2), long (3-5) and medium (6), so their padded lengths differ.
SENTENCES = [
    "python",
    "sql skills",
    "team work",
    "strong knowledge of databases such as postgresql and experience with spark airflow in english dutch is a plus "
    "you will design build maintain pipelines",
    "we offer a bike",
    "machine learning models in the cloud aws",
    "agile mentoring and communication skills with the team",
]
SKILLS = ["python", "sql", "team work", "data analysis", "python", "machine learning", "communication"]
TITLES = ["python developer", "data analysis", "project manager", "java", "cloud data engineer", "sql", "team lead"]
SKILL_LISTS = [
    "python, sql",
    "data analysis, sql, python, machine learning, communication",
    "manage project, team work",
    "java",
    "python, sql",
    "cloud, aws, spark, airflow, pipelines, design",
    "team work, mentoring, agile",
]


def features(tokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    return dict(tokenizer(texts, padding=True, return_tensors="pt"))


def gradients(model: torch.nn.Module, compute_loss) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss and every parameter's gradient after one backward pass from zero gradients."""
    model.zero_grad(set_to_none=True)
    loss = compute_loss()
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def assert_same_gradients(expected: dict[str, torch.Tensor], actual: dict[str, torch.Tensor], atol=1e-5) -> None:
    assert expected.keys() == actual.keys()
    assert sum(int(g.abs().sum() > 0) for g in expected.values()) > 10, "too few parameters got a gradient"
    for name, grad in expected.items():
        torch.testing.assert_close(actual[name], grad, atol=atol, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")


def hand_info_nce(logits: torch.Tensor, excluded: set[tuple[int, int]]) -> torch.Tensor:
    """Mean over rows of -logit[i, i] + logsumexp over the columns of row i that are not excluded."""
    rows = []
    for i in range(logits.shape[0]):
        kept = [j for j in range(logits.shape[1]) if (i, j) not in excluded]
        rows.append(torch.logsumexp(logits[i, kept], dim=0) - logits[i, i])
    return torch.stack(rows).mean()


@pytest.fixture(scope="module")
def _contextmatch_bert(tiny_tokenizer):
    return make_tiny_model(tiny_tokenizer, "bert", seed=1)


@pytest.fixture
def contextmatch(_contextmatch_bert):
    return copy.deepcopy(_contextmatch_bert)


@pytest.fixture(scope="module")
def _jobbert_with_trained_heads(tiny_tokenizer):
    model = make_tiny_jobbert(tiny_tokenizer, seed=2)
    with torch.no_grad():  # identity heads would make the two sides too alike to test the side routing
        for head in (model.title_head, model.skills_head):
            head.weight.add_(0.1 * torch.randn_like(head.weight))
    return model


@pytest.fixture
def jobbert(_jobbert_with_trained_heads):
    return copy.deepcopy(_jobbert_with_trained_heads)


# ------------------------------------------------------------------------------------------------ pure functions
def test_info_nce_matches_a_hand_computed_value() -> None:
    scores = torch.tensor([[0.9, 0.1, 0.4], [0.2, 0.8, 0.3], [0.5, 0.5, 0.6]])
    rows = [
        -0.9 * 2 + torch.log(torch.exp(torch.tensor([1.8, 0.2, 0.8])).sum()),
        -0.8 * 2 + torch.log(torch.exp(torch.tensor([0.4, 1.6, 0.6])).sum()),
        -0.6 * 2 + torch.log(torch.exp(torch.tensor([1.0, 1.0, 1.2])).sum()),
    ]
    torch.testing.assert_close(info_nce(scores, scale=2.0), torch.stack(rows).mean())
    dup = torch.tensor([[False, False, True], [False, False, False], [True, False, False]])  # pairs (0, 2), (2, 0)
    masked = [
        -0.9 * 2 + torch.log(torch.exp(torch.tensor([1.8, 0.2])).sum()),
        rows[1],
        -0.6 * 2 + torch.log(torch.exp(torch.tensor([1.0, 1.2])).sum()),
    ]
    torch.testing.assert_close(info_nce(scores, scale=2.0, duplicates=dup), torch.stack(masked).mean())
    # the target column is never masked, even if a caller marks it
    torch.testing.assert_close(info_nce(scores, 2.0, dup | torch.eye(3, dtype=torch.bool)), torch.stack(masked).mean())


def test_duplicate_mask_marks_equal_keys_off_the_diagonal_for_strings_and_int_tensors() -> None:
    keys = ["python", "sql", "python", "team work", "python"]
    expected = torch.tensor(
        [
            [0, 0, 1, 0, 1],
            [0, 0, 0, 0, 0],
            [1, 0, 0, 0, 1],
            [0, 0, 0, 0, 0],
            [1, 0, 1, 0, 0],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(duplicate_mask(keys), expected)
    assert torch.equal(duplicate_mask(hash_keys(keys)), expected)
    assert not duplicate_mask(["a", "b", "c"]).any()
    with pytest.raises(ValueError, match="one-dimensional"):
        duplicate_mask(torch.zeros(2, 2, dtype=torch.int64))


def test_hash_keys_is_a_stable_blake2b_hash_not_pythons_randomized_hash() -> None:
    hashed = hash_keys(["python", "team work", "python", ""])
    assert hashed.dtype == torch.int64
    # computed once: int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)
    assert hashed[:2].tolist() == [-5636006863077591384, -9162802493228685650]
    assert hashed[0] == hashed[2] and hashed[0] != hashed[1]
    assert hash_keys([]).shape == (0,)


# ------------------------------------------------------------------------------------------- ConTeXT-match loss
def test_a_shared_skill_is_left_out_of_the_other_rows_denominator(contextmatch, tiny_tokenizer) -> None:
    sentences = ["python developer", "we use python and sql", "team work"]
    skills = ["python", "python", "team work"]
    loss_fn = ContextMatchInfoNCE(contextmatch, scale=20.0)
    sf, kf = features(tiny_tokenizer, sentences), features(tiny_tokenizer, skills)
    with torch.no_grad():
        out = contextmatch(**sf)
        logits = 20.0 * contextmatch_scores(
            out.token_embeddings, out.attention_mask, contextmatch(**kf).pooled_embeddings
        )
        loss = loss_fn(sf, kf, skills)
        unmasked = loss_fn(sf, kf, None)
        hashed = loss_fn(sf, kf, hash_keys(skills))
    torch.testing.assert_close(loss, hand_info_nce(logits, {(0, 1), (1, 0)}))
    torch.testing.assert_close(unmasked, hand_info_nce(logits, set()))
    torch.testing.assert_close(hashed, loss)
    assert loss < unmasked
    with pytest.raises(ValueError, match="2 keys for a batch of 3"):
        loss_fn(sf, kf, skills[:2])


def test_contextmatch_loss_gradients_reach_the_encoder(contextmatch, tiny_tokenizer) -> None:
    contextmatch.train()
    loss = ContextMatchInfoNCE(contextmatch)(
        features(tiny_tokenizer, SENTENCES), features(tiny_tokenizer, SKILLS), SKILLS
    )
    loss.backward()
    encoder_grads = [p.grad for p in contextmatch.encoder.parameters()]
    assert all(g is not None for g in encoder_grads) and sum(g.abs().sum() for g in encoder_grads) > 0
    assert torch.isfinite(loss) and loss > 0


def test_symmetric_loss_is_the_mean_of_both_directions_computed_independently(contextmatch, tiny_tokenizer) -> None:
    sf, kf = features(tiny_tokenizer, SENTENCES), features(tiny_tokenizer, SKILLS)
    with torch.no_grad():
        out = contextmatch(**sf)
        logits = 5.0 * contextmatch_scores(
            out.token_embeddings, out.attention_mask, contextmatch(**kf).pooled_embeddings
        )
        one_way = ContextMatchInfoNCE(contextmatch, scale=5.0)(sf, kf, SKILLS)
        both_ways = ContextMatchInfoNCE(contextmatch, scale=5.0, symmetric=True)(sf, kf, SKILLS)
    duplicates = {(0, 4), (4, 0)}  # "python" twice
    forward, backward = hand_info_nce(logits, duplicates), hand_info_nce(logits.T, duplicates)
    torch.testing.assert_close(one_way, forward)
    torch.testing.assert_close(both_ways, (forward + backward) / 2)
    assert abs(both_ways - one_way) > 1e-4


def test_losses_report_their_config_and_cite_the_paper(contextmatch, jobbert) -> None:
    base = ContextMatchInfoNCE(contextmatch, scale=10.0, symmetric=True)
    assert base.get_config_dict() == {"scale": 10.0, "symmetric": True}
    assert JobBERTInfoNCE(jobbert).get_config_dict() == {"scale": 20.0, "symmetric": False}
    cached = CachedContextMatchInfoNCE(base, mini_batch_size=8)
    assert cached.get_config_dict() == {"scale": 10.0, "symmetric": True, "mini_batch_size": 8}
    assert "2505.24640" in base.citation and "2101.06983" in cached.citation and cached.model is contextmatch
    with pytest.raises(TypeError, match="caches a JobBERTInfoNCE"):
        CachedJobBERTInfoNCE(base)
    with pytest.raises(ValueError, match="scale must be positive"):
        ContextMatchInfoNCE(contextmatch, scale=0.0)


# ------------------------------------------------------------------------------------------------ JobBERT loss
def test_jobbert_loss_uses_the_title_head_for_titles_and_the_skills_head_for_skill_lists(jobbert, tiny_tokenizer):
    tf, sf = features(tiny_tokenizer, TITLES), features(tiny_tokenizer, SKILL_LISTS)
    loss = JobBERTInfoNCE(jobbert)(tf, sf, SKILL_LISTS)
    with torch.no_grad():
        titles = F.normalize(jobbert(**tf, side="title").embeddings, dim=-1)
        lists = F.normalize(jobbert(**sf, side="skills").embeddings, dim=-1)
    expected = hand_info_nce(20.0 * titles @ lists.T, {(0, 4), (4, 0)})  # "python, sql" twice
    torch.testing.assert_close(loss.detach(), expected)
    swapped = hand_info_nce(20.0 * lists @ titles.T, {(0, 4), (4, 0)})
    assert abs(loss.detach() - swapped) > 1e-4  # the heads differ, so routing matters
    loss.backward()
    assert jobbert.title_head.weight.grad.abs().sum() > 0 and jobbert.skills_head.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------- cached == uncached
def test_the_mini_batches_of_the_test_batch_have_different_padded_lengths(tiny_tokenizer) -> None:
    full = features(tiny_tokenizer, SENTENCES)
    widths = [chunk["input_ids"].shape[1] for chunk in split_features(full, 3)]
    assert len(widths) == 3 and len(set(widths)) == 3 and max(widths) == full["input_ids"].shape[1]
    for chunk, begin in zip(split_features(full, 3), (0, 3, 6), strict=True):  # only padding was cut
        rows = full["attention_mask"][begin : begin + 3]
        assert chunk["attention_mask"].sum() == rows.sum()
        assert torch.equal(chunk["input_ids"], full["input_ids"][begin : begin + 3, : chunk["input_ids"].shape[1]])


@pytest.mark.parametrize("kind", ["bert", "mpnet"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_cached_contextmatch_loss_and_gradients_equal_the_uncached_ones(tiny_tokenizer, kind, symmetric) -> None:
    model = make_tiny_model(tiny_tokenizer, kind, seed=3)  # eval mode: no dropout, the full batch is the reference
    sf, kf = features(tiny_tokenizer, SENTENCES), features(tiny_tokenizer, SKILLS)
    base = ContextMatchInfoNCE(model, scale=20.0, symmetric=symmetric)
    expected_loss, expected = gradients(model, lambda: base(sf, kf, SKILLS))
    cached = CachedContextMatchInfoNCE(base, mini_batch_size=3)
    loss, actual = gradients(model, lambda: cached(sf, kf, SKILLS))
    torch.testing.assert_close(loss, expected_loss, atol=1e-5, rtol=1e-5)
    assert_same_gradients(expected, actual)


@pytest.mark.parametrize("symmetric", [False, True])
def test_cached_jobbert_loss_and_gradients_equal_the_uncached_ones(jobbert, tiny_tokenizer, symmetric) -> None:
    tf, sf = features(tiny_tokenizer, TITLES), features(tiny_tokenizer, SKILL_LISTS)
    base = JobBERTInfoNCE(jobbert, symmetric=symmetric)
    expected_loss, expected = gradients(jobbert, lambda: base(tf, sf, SKILL_LISTS))
    loss, actual = gradients(jobbert, lambda: CachedJobBERTInfoNCE(base, mini_batch_size=3)(tf, sf, SKILL_LISTS))
    torch.testing.assert_close(loss, expected_loss, atol=1e-5, rtol=1e-5)
    assert_same_gradients(expected, actual)
    assert actual["title_head.weight"].abs().sum() > 0 and actual["skills_head.weight"].abs().sum() > 0


def test_dropout_is_active_in_train_mode(contextmatch, tiny_tokenizer) -> None:
    assert contextmatch.encoder.config.hidden_dropout_prob > 0
    contextmatch.train()
    sf = features(tiny_tokenizer, SENTENCES[:2])
    with torch.no_grad():
        first, second = contextmatch(**sf).pooled_embeddings, contextmatch(**sf).pooled_embeddings
    assert not torch.allclose(first, second)


@pytest.mark.parametrize("which", ["contextmatch", "jobbert"])
def test_one_cached_mini_batch_under_dropout_equals_the_uncached_loss(contextmatch, jobbert, tiny_tokenizer, which):
    """With one mini-batch the model sees the very inputs of the uncached loss in the same order, so under the same
    seed the dropout masks agree: equal gradients mean the re-embedding pass replayed the first pass's RNG state."""
    setups = {
        "contextmatch": (contextmatch, ContextMatchInfoNCE(contextmatch), CachedContextMatchInfoNCE, SENTENCES, SKILLS),
        "jobbert": (jobbert, JobBERTInfoNCE(jobbert), CachedJobBERTInfoNCE, TITLES, SKILL_LISTS),
    }
    model, base, cached_class, anchor_texts, positive_texts = setups[which]
    model.train()
    anchors, positives = features(tiny_tokenizer, anchor_texts), features(tiny_tokenizer, positive_texts)
    torch.manual_seed(11)
    expected_loss, expected = gradients(model, lambda: base(anchors, positives, positive_texts))
    torch.manual_seed(11)
    cached = cached_class(base, mini_batch_size=len(anchor_texts))
    loss, actual = gradients(model, lambda: cached(anchors, positives, positive_texts))
    torch.testing.assert_close(loss, expected_loss, atol=1e-5, rtol=1e-5)
    assert_same_gradients(expected, actual)


def minibatched_contextmatch_loss(model, base, sf, kf, keys, size: int) -> torch.Tensor:
    """The ConTeXT-match loss with every mini-batch embedded with grad (trimmed to its longest text, as the cache
    does), in the order of the cached loss's first pass: what the cache computes, had we the memory."""
    tokens, masks, skills = [], [], []
    for begin in range(0, len(keys), size):
        rows = slice(begin, begin + size)
        length = int(sf["attention_mask"][rows].sum(1).max())  # right padding: trailing pad columns
        out = model(**{k: v[rows, :length] for k, v in sf.items()})
        tokens.append(out.token_embeddings)
        masks.append(out.attention_mask.bool())
    for begin in range(0, len(keys), size):
        rows = slice(begin, begin + size)
        length = int(kf["attention_mask"][rows].sum(1).max())
        skills.append(model(**{k: v[rows, :length] for k, v in kf.items()}).pooled_embeddings)
    width = max(t.shape[1] for t in tokens)
    tokens = torch.cat([F.pad(t, (0, 0, 0, width - t.shape[1])) for t in tokens])
    masks = torch.cat([F.pad(m, (0, width - m.shape[1]), value=False) for m in masks])
    return base.loss_from_embeddings(tokens, masks, torch.cat(skills), keys)


def test_cached_gradients_under_dropout_equal_the_minibatched_uncached_ones(contextmatch, tiny_tokenizer) -> None:
    """Several mini-batches of different padded lengths, dropout on: the replayed RNG state must reproduce every
    mini-batch's dropout masks (the full-batch loss draws other masks, so the reference embeds the same chunks)."""
    contextmatch.train()
    sf, kf = features(tiny_tokenizer, SENTENCES), features(tiny_tokenizer, SKILLS)
    base = ContextMatchInfoNCE(contextmatch, symmetric=True)
    torch.manual_seed(5)
    expected_loss, expected = gradients(
        contextmatch, lambda: minibatched_contextmatch_loss(contextmatch, base, sf, kf, SKILLS, 3)
    )
    torch.manual_seed(5)
    loss, actual = gradients(contextmatch, lambda: CachedContextMatchInfoNCE(base, mini_batch_size=3)(sf, kf, SKILLS))
    torch.testing.assert_close(loss, expected_loss, atol=1e-5, rtol=1e-5)
    assert_same_gradients(expected, actual)


def test_without_the_rng_replay_dropout_breaks_the_cached_gradients(contextmatch, tiny_tokenizer, monkeypatch) -> None:
    """The control of the test above: if the re-embedding pass drew fresh dropout masks, the gradients would differ."""
    contextmatch.train()
    sf, kf = features(tiny_tokenizer, SENTENCES), features(tiny_tokenizer, SKILLS)
    base = ContextMatchInfoNCE(contextmatch)
    torch.manual_seed(5)
    _, expected = gradients(contextmatch, lambda: minibatched_contextmatch_loss(contextmatch, base, sf, kf, SKILLS, 3))
    monkeypatch.setattr(gradcache.RandomState, "__enter__", lambda self: None)
    monkeypatch.setattr(gradcache.RandomState, "__exit__", lambda self, *exc: None)
    torch.manual_seed(5)
    _, actual = gradients(contextmatch, lambda: CachedContextMatchInfoNCE(base, mini_batch_size=3)(sf, kf, SKILLS))
    with pytest.raises(AssertionError):
        assert_same_gradients(expected, actual)


def test_cached_backward_is_scaled_by_the_incoming_gradient(jobbert, tiny_tokenizer) -> None:
    """Like a gradient scaler or gradient accumulation: backward of 0.25 * loss gives a quarter of the gradients."""
    tf, sf = features(tiny_tokenizer, TITLES), features(tiny_tokenizer, SKILL_LISTS)
    cached = CachedJobBERTInfoNCE(JobBERTInfoNCE(jobbert), mini_batch_size=2)
    _, full = gradients(jobbert, lambda: cached(tf, sf, SKILL_LISTS))
    _, quarter = gradients(jobbert, lambda: 0.25 * cached(tf, sf, SKILL_LISTS))
    assert_same_gradients({name: g / 4 for name, g in full.items()}, quarter, atol=1e-6)


def test_cached_loss_without_grad_just_evaluates(contextmatch, tiny_tokenizer) -> None:
    sf, kf = features(tiny_tokenizer, SENTENCES), features(tiny_tokenizer, SKILLS)
    base = ContextMatchInfoNCE(contextmatch)
    with torch.no_grad():
        loss = CachedContextMatchInfoNCE(base, mini_batch_size=2)(sf, kf, SKILLS)
        expected = base(sf, kf, SKILLS)
    assert not loss.requires_grad
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    assert all(p.grad is None for p in contextmatch.parameters())


def test_a_few_cached_optimizer_steps_reduce_the_loss_on_the_batch(contextmatch, tiny_tokenizer) -> None:
    sf, kf = features(tiny_tokenizer, SENTENCES), features(tiny_tokenizer, SKILLS)
    base = ContextMatchInfoNCE(contextmatch)
    cached = CachedContextMatchInfoNCE(base, mini_batch_size=3)
    with torch.no_grad():
        before = base(sf, kf, SKILLS)
    optimizer = torch.optim.AdamW(contextmatch.parameters(), lr=1e-3)
    contextmatch.train()
    for _ in range(3):
        optimizer.zero_grad()
        cached(sf, kf, SKILLS).backward()
        optimizer.step()
    contextmatch.eval()
    with torch.no_grad():
        after = base(sf, kf, SKILLS)
    assert after < before - 0.1, (before, after)


def test_the_cached_replay_runs_under_the_autocast_of_the_forward_pass(tiny_tokenizer) -> None:
    """bf16 autocast on CPU: the cached gradients equal the uncached ones computed under the same autocast."""
    from labor_encoders.training.gradcache import autocast_state

    model = make_tiny_model(tiny_tokenizer, "bert", seed=3).eval()
    sentences = ["python and sql skills.", "team work", "we offer a bike and great communication", "data analysis"]
    skills = ["python", "team work", "communication", "data analysis"]
    features = [tiny_tokenizer(texts, padding=True, return_tensors="pt") for texts in (sentences, skills)]
    gradients, seen = [], []
    cached = ContextMatchInfoNCE(model)
    embed = cached.embed_anchors
    cached.embed_anchors = lambda features: (seen.append(torch.is_autocast_enabled("cpu")), embed(features))[1]
    for loss in (ContextMatchInfoNCE(model), CachedContextMatchInfoNCE(cached, mini_batch_size=3)):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert autocast_state() == [("cpu", torch.bfloat16)]
            value = loss(*features, skills)
        value.backward()
        gradients.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert autocast_state() == []
    assert seen == [True, True, True, True]  # two chunks embedded without grad, then replayed: all under autocast
    assert gradients[0].keys() == gradients[1].keys()
    for name, grad in gradients[0].items():  # bf16 has about 3 significant digits
        torch.testing.assert_close(gradients[1][name], grad, atol=2e-2, rtol=5e-2, msg=name)
