"""Training data: pair readers for every format and the Hub, the offline ESCO set, JobBERT pairs, the collator."""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from labor_encoders.evaluation.data import DataError
from labor_encoders.taxonomy import Taxonomy
from labor_encoders.training.data import (
    MAX_PROBLEMS,
    PairCollator,
    PairDataset,
    PairSet,
    esco_skill_pairs,
    jobbert_pairs_from_ads,
    read_pairs,
)
from tests.conftest import TINY_SKILLS, make_tiny_model

# Rows as a user's file holds them: surrounding whitespace, a comma, a quote, a line break, non-ASCII, an extra column.
ROWS = [
    {"sentence": "  Experience with Python and SQL. ", "skill": "Python (computer programming)", "id": "1"},
    {"sentence": 'Strong "team" spirit, open mind', "skill": " work in teams\t", "id": "2"},
    {"sentence": "Line one\nline two", "skill": "communication", "id": "3"},
    {"sentence": "Français courant exigé", "skill": "French", "id": "4"},
]
EXPECTED = [
    ("Experience with Python and SQL.", "Python (computer programming)"),
    ('Strong "team" spirit, open mind', "work in teams"),
    ("Line one\nline two", "communication"),
    ("Français courant exigé", "French"),
]


def write_rows(path: Path, rows: list[dict]) -> Path:
    """Write rows (dicts; ``None`` is a null) in the format the suffix names."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if path.suffix in (".csv", ".tsv"):
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, columns, delimiter="\t" if path.suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


FORMATS = ["csv", "tsv", "jsonl", "json", "parquet"]


@pytest.mark.parametrize("suffix", FORMATS)
def test_every_format_gives_the_same_pairs(tmp_path, suffix):
    path = write_rows(tmp_path / f"pairs.{suffix}", ROWS)
    pairs = read_pairs(path, "sentence", "skill")
    assert pairs.pairs == EXPECTED
    assert (pairs.bad_rows, pairs.problems, pairs.source) == (0, [], str(path))
    assert pairs.summary() == f"4 pairs from {path}"
    assert read_pairs(str(path), "skill", "sentence").pairs == [(b, a) for a, b in EXPECTED]  # any column order


@pytest.mark.parametrize("suffix", FORMATS)
def test_limit_stops_after_that_many_good_pairs(tmp_path, suffix):
    rows = [ROWS[0], {"sentence": "", "skill": "x"}, *ROWS[1:]]
    path = write_rows(tmp_path / f"pairs.{suffix}", rows)
    assert read_pairs(path, "sentence", "skill", limit=2).pairs == EXPECTED[:2]
    assert read_pairs(path, "sentence", "skill", limit=0).pairs == []
    assert read_pairs(path, "sentence", "skill", limit=99).pairs == EXPECTED


def test_bad_csv_rows_are_counted_with_reasons_and_good_rows_kept_in_order(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text(
        "sentence,skill\n"
        "python and sql,python\n"  # line 2
        "we want sql,\n"  # line 3: empty skill
        "   ,sql\n"  # line 4: blank sentence
        "one,two,three\n"  # line 5: three cells
        "\n"  # line 6: blank, ignored
        '"a quoted\nline break",team work\n'  # lines 7-8: one good row
        "lonely\n"  # line 9: one cell
        ",\n"  # line 10: both empty
        "last one,communication\n",  # line 11
        encoding="utf-8",
    )
    pairs = read_pairs(path, "sentence", "skill")
    assert pairs.pairs == [
        ("python and sql", "python"),
        ("a quoted\nline break", "team work"),
        ("last one", "communication"),
    ]
    assert pairs.bad_rows == 5
    assert pairs.problems == [
        "line 3: empty 'skill'",
        "line 4: empty 'sentence'",
        "line 5: 3 cells but the header has 2",
        "line 9: 1 cells but the header has 2",
        "line 10: empty 'sentence' and empty 'skill'",
    ]
    assert pairs.summary().splitlines()[0] == f"3 pairs from {path}; 5 bad rows skipped"


def test_bad_jsonl_lines_are_counted_with_reasons(tmp_path):
    path = tmp_path / "pairs.jsonl"
    lines = [
        '{"sentence": "python and sql", "skill": "python"}',
        "{not json",
        '["a", "list"]',
        '{"sentence": "no skill key"}',
        '{"sentence": "null skill", "skill": null}',
        '{"sentence": 42, "skill": "a number"}',
        "",
        '{"sentence": "last", "skill": "sql", "extra": 1}',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    pairs = read_pairs(path, "sentence", "skill")
    assert pairs.pairs == [("python and sql", "python"), ("last", "sql")]
    assert pairs.bad_rows == 5
    assert pairs.problems[0].startswith("line 2: not JSON (")
    assert pairs.problems[1:] == [
        "line 3: a JSON list, not an object",
        "line 4: no 'skill'",
        "line 5: missing 'skill'",
        "line 6: int (not text) in 'sentence'",
    ]


def test_parquet_nulls_are_bad_rows(tmp_path):
    rows = [{"sentence": "a", "skill": "b"}, {"sentence": None, "skill": "c"}, {"sentence": "d", "skill": " "}]
    pairs = read_pairs(write_rows(tmp_path / "pairs.parquet", rows), "sentence", "skill")
    assert (pairs.pairs, pairs.bad_rows, pairs.problems) == (
        [("a", "b")],
        2,
        ["row 2: missing 'sentence'", "row 3: empty 'skill'"],
    )


def test_only_the_first_problems_are_kept_but_all_are_counted(tmp_path):
    rows = [{"sentence": f"s{i}", "skill": "" if i % 2 else "python"} for i in range(50)]
    pairs = read_pairs(write_rows(tmp_path / "pairs.csv", rows), "sentence", "skill")
    assert (len(pairs), pairs.bad_rows, len(pairs.problems)) == (25, 25, MAX_PROBLEMS)
    assert pairs.problems[0] == "line 3: empty 'skill'"
    assert pairs.summary().endswith(f"  ({25 - MAX_PROBLEMS} more)")


def test_a_malformed_csv_line_is_a_bad_row_not_an_error(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text(f'sentence,skill\na,b\n"{"x" * 300}",c\nd,e\n', encoding="utf-8")
    old = csv.field_size_limit(100)
    try:
        pairs = read_pairs(path, "sentence", "skill")
    finally:
        csv.field_size_limit(old)
    assert pairs.pairs == [("a", "b"), ("d", "e")]
    assert pairs.problems == ["line 3: malformed CSV (field larger than field limit (100))"]


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_missing_column_names_the_columns_the_file_has(tmp_path, suffix):
    path = write_rows(tmp_path / f"pairs.{suffix}", [{"text": "python and sql", "label": "python"}])
    with pytest.raises(DataError, match=r"has no column 'skill'; its columns are 'text', 'label'"):
        read_pairs(path, "text", "skill")
    with pytest.raises(DataError, match=r"has no column 'sentence' or 'skill'"):
        read_pairs(path, "sentence", "skill")


def test_missing_empty_or_unknown_files_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_pairs(tmp_path / "nope.csv", "sentence", "skill")
    with pytest.raises(DataError, match="unknown suffix '.xlsx'"):
        read_pairs(tmp_path / "pairs.xlsx", "sentence", "skill")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="is empty"):
        read_pairs(tmp_path / "empty.csv", "sentence", "skill")
    (tmp_path / "object.json").write_text('{"sentence": "a", "skill": "b"}', encoding="utf-8")
    with pytest.raises(DataError, match="expected a list of objects"):
        read_pairs(tmp_path / "object.json", "sentence", "skill")


def test_an_uncached_hub_dataset_offline_says_so_and_points_to_local_files(tmp_path, monkeypatch):
    import datasets
    import huggingface_hub

    for variable in ("HF_HOME", "HF_DATASETS_CACHE", "HF_HUB_CACHE"):
        monkeypatch.setenv(variable, str(tmp_path / variable))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # Both libraries read these once at import: patch the values they already hold, so no request can go out.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "HF_DATASETS_CACHE")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "HF_HUB_CACHE"))
    with pytest.raises(DataError) as error:
        read_pairs("TechWolf/Synthetic-ESCO-skill-sentences", "sentence", "skill")
    message = str(error.value)
    assert (
        "'TechWolf/Synthetic-ESCO-skill-sentences' (split 'train') is not in the local Hugging Face Hub cache"
        in message
    )
    assert "HF_HUB_OFFLINE=1" in message
    assert "read_pairs('pairs.csv', 'sentence', 'skill')" in message


def test_a_hub_dataset_is_read_like_a_file(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(dataset_id, split):
        calls.append((dataset_id, split))
        return datasets.Dataset.from_list(ROWS[:2] + [{"sentence": "x", "skill": None, "id": "5"}] + ROWS[2:])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    pairs = read_pairs("org/pairs", "sentence", "skill", split="validation", limit=3)
    assert calls == [("org/pairs", "validation")]
    assert (pairs.pairs, pairs.problems, pairs.source) == (
        EXPECTED[:3],
        ["row 3: missing 'skill'"],
        "org/pairs (validation split)",
    )
    with pytest.raises(
        DataError, match=r"org/pairs \(train split\) has no column 'label'; its columns are 'sentence', 'skill', 'id'"
    ):
        read_pairs("org/pairs", "sentence", "label")


# -- the offline ESCO set ---------------------------------------------------------------------------------------

TOY = Taxonomy(
    labels=["use Python", "manage projects", "speak French"],
    ids=["s1", "s2", "s3"],
    alt_labels=[["Python", "use python", " python programming ", "Python"], ["project management", ""], ["Python"]],
    descriptions=["Write programs in Python. Debug them. Review code.", "Manage projects.", ""],
    name="toy",
)


def test_esco_skill_pairs_on_a_hand_made_taxonomy():
    pairs = esco_skill_pairs(TOY)
    assert sorted(pairs) == sorted(
        [
            ("Python", "use Python"),  # "use python" is the label itself; the repeated "Python" is dropped
            ("python programming", "use Python"),
            ("Write programs in Python. Debug them.", "use Python"),  # the first two sentences
            ("project management", "manage projects"),
            ("Manage projects.", "manage projects"),  # not the label: it ends with a full stop
            ("Python", "speak French"),  # a shared alternative label gives a pair for each skill
        ]
    )
    assert not [(text, label) for text, label in pairs if text.casefold() == label.casefold()]
    assert ("Write programs in Python.", "use Python") in esco_skill_pairs(TOY, max_description_sentences=1)
    assert len(esco_skill_pairs(TOY, max_description_sentences=0)) == 4


def test_esco_skill_pairs_are_shuffled_deterministically():
    assert esco_skill_pairs(TOY, seed=0) == esco_skill_pairs(TOY, seed=0)
    assert esco_skill_pairs(TOY, seed=1) == esco_skill_pairs(TOY, seed=1)
    assert esco_skill_pairs(TOY, seed=1) != esco_skill_pairs(TOY, seed=0)
    assert sorted(esco_skill_pairs(TOY, seed=1)) == sorted(esco_skill_pairs(TOY, seed=0))


@pytest.mark.real_weights
def test_esco_skill_pairs_on_the_real_esco_skills():
    from labor_encoders.taxonomy import load_esco_skills

    esco = load_esco_skills()
    pairs = esco_skill_pairs(esco)
    alternatives = esco_skill_pairs(esco, max_description_sentences=0)
    assert (len(esco), sum(map(len, esco.alt_labels))) == (13_939, 86_018)
    # 15 alternative labels equal their preferred label but for case; one description ("Manure aquaculture ponds").
    assert (len(pairs), len(alternatives)) == (99_941, 86_003)
    assert len({label for _, label in pairs}) == 13_939
    python = "Python (computer programming)"
    assert {("Python", python), ("Python 3K", python)} <= set(alternatives)
    description = (
        "The techniques and principles of software development, such as analysis, algorithms, coding, testing "
    )
    assert (description + "and compiling of programming paradigms in Python.", python) in pairs
    assert pairs[:3] == esco_skill_pairs(esco)[:3] != alternatives[:3]


# -- JobBERT pairs -----------------------------------------------------------------------------------------------


class FakeExtract:
    """Skills are the words of a text that are in ``scores``, in text order; records each call's batch."""

    scores = {"python": 0.6, "sql": 0.9, "teamwork": 0.7, "excel": 0.5}

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> list[dict]:
        self.calls.append(list(texts))
        found = [
            [word for word in text.lower().replace(",", " ").replace(".", " ").split() if word in self.scores]
            for text in texts
        ]
        return [
            {"text": text, "skills": [{"label": w, "id": w, "score": self.scores[w], "evidence": []} for w in words]}
            for text, words in zip(texts, found, strict=True)
        ]


def test_jobbert_pairs_from_ads_with_a_fake_extractor():
    ads = [
        ("Data Engineer ", "We use Python, SQL and teamwork. Python again."),
        ("", "python"),
        ("Analyst", "   "),
        ("Cook", "Cook tasty food."),
        ("BI developer", "excel and sql"),
        ("Intern", "python"),
    ]
    extract = FakeExtract()
    pairs, stats = jobbert_pairs_from_ads(iter(ads), extract, batch_size=2)
    assert pairs == [
        ("Data Engineer", "sql, teamwork, python"),  # by score, each label once
        ("BI developer", "sql, excel"),
        ("Intern", "python"),
    ]
    assert stats == {"ads": 6, "pairs": 3, "empty_title": 1, "empty_text": 1, "too_few_skills": 1}
    assert extract.calls == [
        ["We use Python, SQL and teamwork. Python again.", "Cook tasty food."],
        ["excel and sql", "python"],
    ]
    pairs, stats = jobbert_pairs_from_ads(ads, FakeExtract(), min_skills=2)
    assert [title for title, _ in pairs] == ["Data Engineer", "BI developer"]
    assert stats["too_few_skills"] == 2


def test_jobbert_pairs_from_a_file_of_ads_with_a_tiny_contextmatch_model(tmp_path, tiny_tokenizer):
    model = make_tiny_model(tiny_tokenizer)
    rows = [
        {"title": "data engineer", "ad": "strong knowledge of databases such as postgresql. python is a plus."},
        {"title": "team lead", "ad": "you will manage project and mentoring in english"},
        {"title": "", "ad": "we offer a bike"},
        {"title": "ml engineer", "ad": "design build maintain machine learning models on aws cloud"},
    ]
    ads = read_pairs(write_rows(tmp_path / "ads.jsonl", rows), "title", "ad")
    assert (len(ads), ads.problems) == (3, ["line 3: empty 'title'"])
    extract = functools.partial(model.extract, threshold=0.0)
    pairs, stats = jobbert_pairs_from_ads(ads.pairs, extract, batch_size=2)
    assert stats == {"ads": 3, "pairs": 3, "empty_title": 0, "empty_text": 0, "too_few_skills": 0}
    assert [title for title, _ in pairs] == ["data engineer", "team lead", "ml engineer"]
    for (_, text), (_, skills) in zip(ads.pairs, pairs, strict=True):
        found = sorted(model.extract([text], threshold=0.0)[0]["skills"], key=lambda skill: -skill["score"])
        assert skills == ", ".join(skill["label"] for skill in found)
        assert set(skills.split(", ")) <= set(TINY_SKILLS)


# -- batches --------------------------------------------------------------------------------------------------


def test_pair_collator_tokenises_both_sides_and_returns_the_second_texts_as_keys(tiny_tokenizer):
    pairs = [
        ("python and sql", "python"),
        ("strong knowledge of databases such as postgresql and spark", "python"),
        ("team work", "team work"),
    ]
    collate = PairCollator(tiny_tokenizer, max_length_first=6, max_length_second=8)
    loader = DataLoader(PairDataset(pairs), batch_size=3, collate_fn=collate)
    first, second, keys = next(iter(loader))
    assert keys == ["python", "python", "team work"]
    assert first["input_ids"].shape == (3, 6)  # truncated to max_length_first
    assert first["attention_mask"].tolist()[0] == [1, 1, 1, 1, 1, 0]  # [CLS] python and sql [SEP] [PAD]
    assert second["input_ids"].shape == (3, 4)  # padded to the longest: [CLS] team work [SEP]
    assert second["input_ids"][0].tolist() == tiny_tokenizer("python")["input_ids"] + [tiny_tokenizer.pad_token_id]
    assert first["input_ids"].dtype == torch.long
    assert len(PairDataset(pairs)) == 3 and PairDataset(pairs)[2] == ("team work", "team work")


def test_pair_set_summary_without_problems():
    assert PairSet([("a", "b"), ("c", "d")], source="x.csv").summary() == "2 pairs from x.csv"
