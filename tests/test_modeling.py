"""Mechanics of ConTeXTMatchModel on tiny randomly initialised BERT and MPNet encoders."""

from __future__ import annotations

import torch

from labor_encoders.modeling.modeling_contextmatch import contextmatch_scores, split_sentences

AD = "We offer a bike. Python skills; SQL is a plus.\n- Great team work and communication!"


def test_forward_gives_token_vectors_mask_and_pooled_vectors(tiny_model) -> None:
    batch = tiny_model.tokenizer(["python sql", "team"], padding=True, return_tensors="pt")
    out = tiny_model(batch["input_ids"], batch["attention_mask"])
    assert out.token_embeddings.shape == (2, batch["input_ids"].shape[1], 32)
    assert out.pooled_embeddings.shape == (2, 32)
    assert torch.equal(out.attention_mask, batch["attention_mask"])


def test_gradients_reach_the_encoder_through_the_match(tiny_model) -> None:
    tiny_model.train()
    batch = tiny_model.tokenizer(["python sql", "team work"], padding=True, return_tensors="pt")
    labels = tiny_model.tokenizer(["python", "team work"], padding=True, return_tensors="pt")
    sentences = tiny_model(batch["input_ids"], batch["attention_mask"])
    skills = tiny_model(labels["input_ids"], labels["attention_mask"]).pooled_embeddings
    scores = contextmatch_scores(sentences.token_embeddings, batch["attention_mask"], skills)
    torch.nn.functional.cross_entropy(scores * 20, torch.arange(2)).backward()
    grads = [p.grad for p in tiny_model.encoder.parameters() if p.requires_grad]
    assert sum(g is not None and g.abs().sum() > 0 for g in grads) > len(grads) // 2
    assert tiny_model.skill_embeddings.grad is None  # the index is a buffer, never trained by accident


def test_rank_scores_equal_the_formula_on_the_encoder_output(tiny_model) -> None:
    texts = ["python and sql", "great team work"]
    ranking = tiny_model.rank(texts)
    assert ranking.values.shape == ranking.indices.shape == (2, len(tiny_model.skill_labels))
    assert (ranking.values[:, :-1] >= ranking.values[:, 1:]).all()
    batch = tiny_model.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        tokens = tiny_model(batch["input_ids"], batch["attention_mask"]).token_embeddings
    expected = contextmatch_scores(tokens, batch["attention_mask"], tiny_model.skill_embeddings)
    torch.testing.assert_close(ranking.values, expected.gather(1, ranking.indices), atol=1e-5, rtol=1e-5)
    assert tiny_model.rank(texts, top_k=3).indices.shape == (2, 3)
    mean_pool = tiny_model.rank(texts, scoring="mean-pool")
    assert not torch.allclose(mean_pool.values, ranking.values)


def test_extract_returns_skills_with_evidence_spans_of_the_input(tiny_model) -> None:
    [result] = tiny_model.extract([AD])
    assert result["text"] == AD and result["skills"]
    for skill in result["skills"]:
        assert skill["label"] in tiny_model.skill_labels
        assert skill["id"] == tiny_model.skill_ids[tiny_model.skill_labels.index(skill["label"])]
        assert skill["score"] >= tiny_model.config.threshold
        for span in skill["evidence"]:
            assert AD[span["start"] : span["end"]] == span["text"] and span["text"].strip()
    scores = [skill["score"] for skill in result["skills"]]
    assert scores == sorted(scores, reverse=True)


def test_extract_is_the_union_of_its_sentences(tiny_model) -> None:
    whole = {s["label"]: s["score"] for s in tiny_model.extract(AD)[0]["skills"]}
    per_sentence: dict[str, float] = {}
    for start, end in split_sentences(AD):
        for skill in tiny_model.extract(AD[start:end])[0]["skills"]:
            per_sentence[skill["label"]] = max(per_sentence.get(skill["label"], -1.0), skill["score"])
    assert whole.keys() == per_sentence.keys()
    for label, score in whole.items():
        assert abs(score - per_sentence[label]) < 1e-3


def test_redundancy_filter_keeps_only_skills_that_win_a_token(tiny_model) -> None:
    filtered = tiny_model.extract(AD, redundancy_filter=True)[0]["skills"]
    unfiltered = tiny_model.extract(AD, redundancy_filter=False)[0]["skills"]
    assert {s["label"] for s in filtered} <= {s["label"] for s in unfiltered}
    assert len(unfiltered) == len(tiny_model.skill_labels)  # threshold 0.0 keeps everything before the filter
    # In one short sentence at most one skill wins each token, so fewer skills than the index holds survive.
    short = "python sql."
    tokens = len(tiny_model.tokenizer(short)["input_ids"])
    assert tokens < len(tiny_model.skill_labels)
    assert 1 <= len(tiny_model.extract(short, redundancy_filter=True)[0]["skills"]) <= tokens
    assert len(tiny_model.extract(short, redundancy_filter=False)[0]["skills"]) == len(tiny_model.skill_labels)


def test_threshold_and_top_k(tiny_model) -> None:
    assert tiny_model.extract(AD, threshold=1.01)[0]["skills"] == []
    assert len(tiny_model.extract(AD, top_k=2, redundancy_filter=False)[0]["skills"]) == 2
    tiny_model.config.threshold = 1.01  # the config's tau is the default
    assert tiny_model.extract(AD)[0]["skills"] == []


def test_empty_whitespace_and_non_latin_texts_give_sane_results(tiny_model) -> None:
    results = tiny_model.extract(["", "   \n\t ", "数据分析和机器学习", "Опыт работы с Python", "🙂🙂"])
    assert [r["skills"] for r in results[:2]] == [[], []]
    assert all(isinstance(r["skills"], list) for r in results)
    assert tiny_model.extract([]) == []
    assert tiny_model.rank([""]).values.shape == (1, len(tiny_model.skill_labels))


def test_a_sentence_longer_than_the_window_is_scored_in_windows(tiny_tokenizer) -> None:
    from tests.conftest import make_tiny_model

    model = make_tiny_model(tiny_tokenizer, max_seq_length=12, window_stride=4)
    sentence = " ".join(["python sql java team work skills data analysis"] * 6)
    [result] = model.extract(sentence, redundancy_filter=False)
    assert result["skills"]
    ends = [span["end"] for skill in result["skills"] for span in skill["evidence"]]
    assert max(ends) > len(sentence) // 2  # evidence found beyond the first window
    assert model.rank([sentence]).values.shape == (1, len(model.skill_labels))


def test_a_20000_word_ad_is_processed_completely(tiny_model) -> None:
    ad = "\n".join(["Strong knowledge of databases such as postgresql and experience with spark."] * 2000)
    assert len(ad.split()) > 20_000
    [result] = tiny_model.extract(ad, redundancy_filter=False)
    assert result["skills"]
    assert max(span["end"] for skill in result["skills"] for span in skill["evidence"]) > len(ad) - 100


def test_set_skill_index_validates_and_swaps_the_taxonomy(tiny_model) -> None:
    import pytest

    with pytest.raises(ValueError, match="unique"):
        tiny_model.set_skill_index(["python", "python"])
    with pytest.raises(ValueError, match="empty"):
        tiny_model.set_skill_index(["python", " "])
    with pytest.raises(ValueError, match="ids"):
        tiny_model.set_skill_index(["python", "sql"], ids=["a"])
    tiny_model.set_skill_index(["spark", "airflow"], ids=["s", "a"], taxonomy="data tools")
    assert tiny_model.config.num_skills == 2 and tiny_model.skill_embeddings.shape == (2, 32)
    assert {s["id"] for s in tiny_model.extract("spark and airflow", redundancy_filter=False)[0]["skills"]} == {
        "s",
        "a",
    }
    assert tiny_model.config.taxonomy == "data tools"


def test_an_empty_index_is_reported(tiny_tokenizer) -> None:
    import pytest

    from labor_encoders.modeling.configuration_contextmatch import ConTeXTMatchConfig
    from labor_encoders.modeling.modeling_contextmatch import ConTeXTMatchModel
    from tests.conftest import tiny_encoder_config

    model = ConTeXTMatchModel(ConTeXTMatchConfig(encoder_config=tiny_encoder_config("bert", len(tiny_tokenizer))))
    model.tokenizer = tiny_tokenizer
    with pytest.raises(RuntimeError, match="set_skill_index"):
        model.extract("python")
    model.tokenizer = None
    with pytest.raises(RuntimeError, match="tokenizer"):
        model.encode_labels(["python"])


def test_negative_scores_are_ranked_not_clipped(tiny_model) -> None:
    text = "python and sql"
    batch = tiny_model.tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        out = tiny_model(batch["input_ids"], batch["attention_mask"])
    away = -out.pooled_embeddings.repeat(3, 1) * torch.tensor([[1.0], [2.0], [0.5]])  # every skill points away
    away[1] += 0.1 * torch.randn(away.shape[1])
    tiny_model.set_skill_index(["a", "b", "c"], embeddings=away)
    expected = contextmatch_scores(out.token_embeddings, batch["attention_mask"], away)[0]
    assert (expected < 0).all()
    ranking = tiny_model.rank([text])
    torch.testing.assert_close(ranking.values[0], expected[ranking.indices[0]], atol=1e-5, rtol=1e-5)
    [result] = tiny_model.extract(text, threshold=-1.0, redundancy_filter=False)
    assert all(skill["score"] < 0 for skill in result["skills"]) and len(result["skills"]) == 3


def test_prerank_shortlist_scores_its_candidates_exactly_and_others_minus_inf(tiny_model) -> None:
    texts = ["strong python and sql skills.", "great team work!", "data analysis"]
    batch = tiny_model.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = tiny_model(batch["input_ids"], batch["attention_mask"])
    encoded = {
        "token_embeddings": out.token_embeddings,
        "score_mask": batch["attention_mask"].bool(),
        "attention_mask": batch["attention_mask"],
    }
    exact = tiny_model.score(encoded)
    shortlisted = tiny_model.score(encoded, shortlist=3)
    kept = torch.isfinite(shortlisted)
    assert kept.sum(1).tolist() == [3, 3, 3]
    torch.testing.assert_close(shortlisted[kept], exact[kept], atol=1e-5, rtol=1e-5)
    pooled = torch.nn.functional.normalize(out.pooled_embeddings, dim=-1)
    expected = (pooled @ torch.nn.functional.normalize(tiny_model.skill_embeddings, dim=-1).T).topk(3).indices
    assert torch.equal(kept, torch.zeros_like(kept).scatter_(1, expected, True))
    # extract with a shortlist as long as the index is the exact extraction
    tiny_model.config.prerank_candidates = 0
    exact_extract = tiny_model.extract(texts)
    tiny_model.config.prerank_candidates = len(tiny_model.skill_labels)
    assert tiny_model.extract(texts) == exact_extract


def test_cached_unit_skill_vectors_follow_every_index_change(tiny_model) -> None:
    def expected_mean_pool(text: str) -> torch.Tensor:
        batch = tiny_model.tokenizer([text], return_tensors="pt")
        with torch.no_grad():
            pooled = tiny_model(batch["input_ids"], batch["attention_mask"]).pooled_embeddings
        skills = torch.nn.functional.normalize(tiny_model.skill_embeddings, dim=-1)
        return (torch.nn.functional.normalize(pooled, dim=-1) @ skills.T)[0].sort(descending=True).values

    text = "python and sql"
    before = tiny_model.rank([text], scoring="mean-pool").values[0]
    torch.testing.assert_close(before, expected_mean_pool(text))
    tiny_model.set_skill_index(["spark", "airflow", "java"])  # a new tensor
    torch.testing.assert_close(tiny_model.rank([text], scoring="mean-pool").values[0], expected_mean_pool(text))
    with torch.no_grad():
        tiny_model.skill_embeddings.mul_(-1.0)  # edited in place
    torch.testing.assert_close(tiny_model.rank([text], scoring="mean-pool").values[0], expected_mean_pool(text))


def test_the_extraction_benchmarks_profile_pieces_run_on_the_public_surface(tiny_model) -> None:
    """evaluation/benchmark_extraction.py's profile phase uses only encode_segments / score and the shared length
    buckets: every sentence lands in exactly one chunk, and the profile counts every window once."""
    from labor_encoders.evaluation.benchmark_extraction import extract_like_chunks, profile_pass

    sentences = ["python and sql", "team work in a large data analysis group", "sql", "manage project now"]
    chunks = extract_like_chunks(tiny_model, sentences, batch_size=2)
    assert sorted(s for chunk in chunks for s in chunk) == sorted(sentences) and all(len(c) <= 2 for c in chunks)
    times, stats = profile_pass(tiny_model, sentences, batch_size=2)
    assert stats["pieces"] == stats["windows"] == 4 and set(times) == {"split", "segments", "score"}
    batches = list(tiny_model.encode_segments(sentences, 4))
    assert sorted(row for batch in batches for row in batch.rows) == [0, 1, 2, 3]
    assert all(batch.windowed == [False] * len(batch.rows) for batch in batches)
    scores = [tiny_model.score(batch.encoded) for batch in batches]
    assert [s.shape for s in scores] == [(len(b.rows), tiny_model.config.num_skills) for b in batches]


def test_evidence_points_at_the_words_that_matched_not_at_special_tokens(tiny_model) -> None:
    """Special tokens take part in the redundancy filter but are never evidence: a skill that wins only a special
    token gets the word that matches it best; of the words a skill wins, only those with at least half the
    attention of its most-attended word are evidence."""
    hidden = tiny_model.skill_embeddings.shape[1]
    e0, e1, e2 = torch.zeros(hidden), torch.zeros(hidden), torch.zeros(hidden)
    e0[0], e1[1], e2[2] = 1.0, 1.0, 1.0
    with torch.no_grad():
        tiny_model.skill_embeddings[:3] = torch.stack([e0, e1, e2])
    # tokens: <s>, "python" (0:6), "sql" (7:10), "team" (11:15), </s>
    offsets = torch.tensor([[0, 0], [0, 6], [7, 10], [11, 15], [0, 0]])
    tokens = torch.stack([5 * e0, 0.1 * e0 + e1, 3 * e1, 0.2 * e1, 0.1 * e1])
    encoded = {"token_embeddings": tokens[None], "score_mask": torch.ones(1, 5, dtype=torch.bool)}
    kept = torch.tensor([0, 1])
    plain = tiny_model._owned_tokens(encoded, 0, kept, use_filter=True)
    assert plain == {0: [0], 1: [1, 2, 3, 4]}  # without offsets: the arg-max owners, special tokens included
    owned = tiny_model._owned_tokens(encoded, 0, kept, use_filter=True, offsets=offsets)
    assert owned == {0: [1], 1: [2]}  # skill 0's best word; skill 1's words near its peak (3): "sql" only
    unfiltered = tiny_model._owned_tokens(encoded, 0, torch.tensor([0, 1, 2]), use_filter=False, offsets=offsets)
    assert unfiltered == {0: [1], 1: [2], 2: []}  # skill 2 wins no token: kept, without evidence
