"""The Space's pure functions (space/app.py) on tiny in-process models: text limits, highlighting, tables, batch."""

from __future__ import annotations

import json
import random
import re

import pandas as pd
import pytest
from matplotlib.figure import Figure

from labor_encoders.space.app import (
    BATCH_CHUNK,
    NO_COLUMN,
    TEXT_COLUMNS,
    TITLE_COLUMNS,
    AdTable,
    InputError,
    annotate_ads,
    column_choices,
    extract_skills,
    guess_column,
    highlight_segments,
    limit_words,
    normalize_titles,
    occupations_from_ad,
    occupations_from_skills,
    parse_titles,
    read_ads,
    run_batch,
    skills_table,
    write_batch,
)
from tests.conftest import WORDS
from tests.test_jobbert import make_tiny_jobbert

AD = "We offer a bike. Python skills; SQL is a plus.\n\nGreat team work and communication!\n- Spark, airflow and aws."
ADS = pd.DataFrame({"id": [7, 8], "title": ["data engineer", "nurse"], "text": ['python,\n"sql"', "team work"]})


@pytest.fixture(scope="module")
def jobbert(tiny_tokenizer):
    return make_tiny_jobbert(tiny_tokenizer)


def random_ad(rng: random.Random, sentences: int = 3) -> str:
    return " ".join(" ".join(rng.choices(WORDS, k=rng.randint(4, 12))).capitalize() + "." for _ in range(sentences))


def test_limit_words_cuts_a_prefix_with_exactly_max_words_and_counts_all() -> None:
    text = "one  two\nthree\n\n four five\tsix seven"
    cut, total = limit_words(text, 4)
    assert total == 7 and text.startswith(cut) and cut.split() == ["one", "two", "three", "four"]
    assert cut == "one  two\nthree\n\n four"  # the whitespace inside the kept part survives
    assert limit_words(text, 7) == (text, 7) and limit_words("  short text ", 10) == ("  short text ", 2)
    repeated = "ab a ab a ab"  # a word that is also a piece of an earlier word
    assert limit_words(repeated, 4) == ("ab a ab a", 5)


def test_highlight_segments_label_every_character_by_the_best_skill_covering_it(tiny_model) -> None:
    skills = tiny_model.extract(AD, redundancy_filter=False)[0]["skills"]
    assert len(skills) >= 2
    segments = highlight_segments(AD, skills)
    assert "".join(chunk for chunk, _ in segments) == AD
    expected: list[str | None] = [None] * len(AD)
    for skill in reversed(skills):  # the best-ranked skill is written last, so it wins
        for span in skill["evidence"]:
            expected[span["start"] : span["end"]] = [skill["label"]] * (span["end"] - span["start"])
    assert [label for chunk, label in segments for _ in chunk] == expected
    assert None in expected  # the separators between sentences carry no skill
    assert all(a[1] != b[1] for a, b in zip(segments, segments[1:], strict=False))
    assert all(chunk for chunk, _ in segments)


def test_highlight_segments_without_skills_and_with_spans_past_the_end() -> None:
    assert highlight_segments("We offer a bike.", []) == [("We offer a bike.", None)]
    skills = [{"label": "bike", "evidence": [{"start": 11, "end": 99}, {"start": -3, "end": 2}]}]
    assert highlight_segments("We offer a bike", skills) == [("We", "bike"), (" offer a ", None), ("bike", "bike")]


def test_skills_table_links_web_ids_and_keeps_order() -> None:
    skills = [
        {"label": "python", "id": "http://data.europa.eu/esco/skill/1", "score": 0.91234, "evidence": []},
        {"label": "sql", "id": "urn:skill:1", "score": 0.5, "evidence": [{"text": " SQL "}, {"text": "SQL"}]},
        {"label": "C[++] [dev]", "id": "https://example.org/c", "score": 0.4, "evidence": [{"text": "C++"}]},
    ]
    table = skills_table(skills)
    assert list(table.columns) == ["Skill", "Score", "Evidence"] and len(table) == 3
    assert table["Skill"][0] == "[python](http://data.europa.eu/esco/skill/1)"
    assert table["Skill"][1] == "sql" and table["Evidence"][1] == "SQL"
    assert table["Score"].tolist() == pytest.approx([0.912, 0.5, 0.4])
    link = re.fullmatch(r"\[((?:\\.|[^\[\]\\])*)\]\((\S+)\)", table["Skill"][2])  # brackets inside are neutralised
    assert link and link[2] == "https://example.org/c" and "C" in link[1] and "++" in link[1] and "dev" in link[1]
    assert list(skills_table([]).columns) == ["Skill", "Score", "Evidence"]


def test_extract_skills_refuses_empty_text(tiny_model) -> None:
    for text in ("", "  \n\t "):
        with pytest.raises(InputError, match="empty.*paste"):
            extract_skills(tiny_model, text)


def test_extract_skills_cuts_long_ads_and_says_so(tiny_model) -> None:
    text = random_ad(random.Random(0), sentences=400)
    words = text.split()[:2000]
    text = " ".join(words)
    assert len(words) == 2000
    found = extract_skills(tiny_model, text, threshold=0.0, max_words=300)
    assert "300" in found["notice"] and "2,000" in found["notice"] and "first" in found["notice"]
    prefix_end = len(" ".join(words[:300]))
    assert found["skills"] and all(e["end"] <= prefix_end for s in found["skills"] for e in s["evidence"])
    assert "".join(chunk for chunk, _ in found["highlighted"]) == text[:prefix_end]
    assert isinstance(found["chart"], Figure) and len(found["table"]) == len(found["skills"])
    short = extract_skills(tiny_model, AD, threshold=0.0, max_words=300)
    assert "first" not in short["notice"] and f"{len(AD.split())} words" in short["notice"]


def test_extract_skills_top_k_and_an_unreachable_threshold(tiny_model) -> None:
    everything = extract_skills(tiny_model, AD, threshold=0.0, redundancy_filter=False)["skills"]
    capped = extract_skills(tiny_model, AD, threshold=0.0, top_k=2, redundancy_filter=False)["skills"]
    assert len(everything) > 2 and capped == everything[:2]
    nothing = extract_skills(tiny_model, AD, threshold=1.01)
    assert nothing["skills"] == [] and nothing["chart"] is None and len(nothing["table"]) == 0
    assert "lower threshold" in nothing["notice"] and nothing["highlighted"] == [(AD, None)]


def test_parse_titles_drops_blank_lines_and_enforces_the_limit() -> None:
    assert parse_titles("\n  nurse \n\n\t\ndata engineer\n") == ["nurse", "data engineer"]
    for empty in ("", " \n \n", None):
        with pytest.raises(InputError, match="No job title"):
            parse_titles(empty)
    with pytest.raises(InputError, match=r"3 titles given.*at most 2"):
        parse_titles("a\nb\nc", max_titles=2)


def test_normalize_titles_table_matches_the_model(jobbert) -> None:
    titles = ["python developer", "sql", "project manager team"]
    table = normalize_titles(jobbert, "\n".join(titles) + "\n\n", top_k=2)
    assert list(table.columns) == ["Title", "Rank", "Occupation", "Score", "Matched label"]
    expected = jobbert.normalize(titles, top_k=2)
    assert table["Title"].tolist() == [title for title in titles for _ in range(2)]
    assert table["Rank"].tolist() == [1, 2] * 3
    assert table["Occupation"].tolist() == [m["label"] for r in expected for m in r["matches"]]  # urn: ids: no link
    assert table["Score"].tolist() == pytest.approx([m["score"] for r in expected for m in r["matches"]], abs=1e-3)
    assert table["Matched label"].tolist() == [m["matched_label"] for r in expected for m in r["matches"]]
    for _, group in table.groupby("Title"):
        assert group["Score"].is_monotonic_decreasing


def test_occupations_from_skills_rank_the_title_index_through_the_skills_head(jobbert) -> None:
    import torch

    skills = ["python", "sql"]
    matches = occupations_from_skills(jobbert, skills, top_k=3)
    scores = jobbert.title_embeddings @ jobbert.encode_skills([skills])[0]
    best: dict[str, float] = {}
    for concept, score in zip(jobbert.title_ids, scores.tolist(), strict=True):
        best[concept] = max(best.get(concept, -2.0), score)
    expected = sorted(best, key=lambda concept: -best[concept])[:3]
    assert [m["id"] for m in matches] == expected
    assert [m["score"] for m in matches] == pytest.approx([best[c] for c in expected], abs=1e-4)
    assert torch.allclose(jobbert.encode_skills([skills]), jobbert.encode_skills(["python, sql"]))


def test_occupations_from_an_ad_use_the_skills_contextmatch_extracts(tiny_model, jobbert) -> None:
    result = occupations_from_ad(tiny_model, jobbert, AD, top_k=2, threshold=0.0)
    skills = [skill["label"] for skill in tiny_model.extract(AD, threshold=0.0)[0]["skills"]]
    assert result["skills"] == skills and skills
    assert result["table"]["Title"].tolist() == ["(the ad)", "(the ad)"]
    assert result["table"]["Occupation"].tolist() == [m["label"] for m in occupations_from_skills(jobbert, skills, 2)]
    assert f"**{len(skills)} skills**" in result["notice"]
    none = occupations_from_ad(tiny_model, jobbert, AD, threshold=1.01)
    assert none["table"].empty and "No skill reached the threshold" in none["notice"]
    with pytest.raises(InputError, match="The job ad is empty"):
        occupations_from_ad(tiny_model, jobbert, " \n ")


def write_ads(folder, frame: pd.DataFrame, suffix: str):
    path = folder / f"ads{suffix}"
    if suffix in (".csv", ".tsv"):
        frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    elif suffix == ".jsonl":
        path.write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in frame.to_dict("records")), encoding="utf-8"
        )
    elif suffix == ".json":
        path.write_text(json.dumps(frame.to_dict("records")), encoding="utf-8")
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_read_ads_gives_the_same_table_for_every_format(tmp_path, suffix) -> None:
    table = read_ads(write_ads(tmp_path, ADS, suffix))
    assert table.columns == ["id", "title", "text"] and table.problems == {}
    assert table.rows == [{k: str(v) for k, v in row.items()} for row in ADS.to_dict("records")]
    assert table.rows[0]["text"] == 'python,\n"sql"'  # the quoted multi-line cell stays whole


def test_read_ads_keeps_a_bad_csv_line_as_an_empty_row(tmp_path) -> None:
    path = tmp_path / "ads.csv"
    path.write_bytes("\ufeffid,text\n1,python\n2,too,many\n\n3,sql\n".encode())
    table = read_ads(path)
    assert table.columns == ["id", "text"]  # no BOM in the first name
    assert table.rows == [{"id": "1", "text": "python"}, {"id": "", "text": ""}, {"id": "3", "text": "sql"}]
    assert list(table.problems) == [2] and "line 3" in table.problems[2]


def test_csv_problem_names_the_file_line_after_a_multi_line_cell(tmp_path) -> None:
    path = tmp_path / "ads.csv"
    path.write_text('id,text\n1,"two\nlines"\n2,too,many\n', encoding="utf-8")
    assert "line 4" in read_ads(path).problems[2]  # header 1, the quoted cell 2-3, the bad record 4


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_unicode_line_separator_inside_a_cell_does_not_split_the_row(tmp_path, suffix) -> None:
    frame = pd.DataFrame({"id": [1, 2], "text": ["python\u2028sql", "team\x0cwork\x85"]})  # pasted from the web
    table = read_ads(write_ads(tmp_path, frame, suffix))
    assert table.problems == {} and [row["text"] for row in table.rows] == frame["text"].tolist()


def test_read_ads_turns_bad_jsonl_lines_into_problem_rows(tmp_path) -> None:
    path = tmp_path / "ads.jsonl"
    path.write_text('{"text": "python"}\n{not json\n\n["a", "list"]\n{"text": "sql", "id": 2}\n', encoding="utf-8")
    table = read_ads(path)
    assert table.columns == ["text", "id"]
    assert [row.get("text", "") for row in table.rows] == ["python", "", "", "sql"]
    assert sorted(table.problems) == [2, 3] and "JSON" in table.problems[2] and "list" in table.problems[3]


def test_parquet_missing_values_and_list_cells_read_as_text(tmp_path) -> None:
    frame = pd.DataFrame({"id": pd.array([1, None], dtype="Int64"), "tags": [["python", "sql"], []]})
    rows = read_ads(write_ads(tmp_path, frame, ".parquet")).rows
    assert (rows[1]["id"], rows[0]["tags"]) == ("", '["python", "sql"]')  # not "<NA>", not numpy's "['python' 'sql']"


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "message"),
    [
        ("ads.xlsx", b"id,text\n1,a\n", {}, r"unsupported file type \.xlsx; upload one of .*\.csv"),
        ("ads.csv", b"id,text\n1,python\n", {"max_mb": 1e-6}, r"MB; this page takes files up to"),
        ("ads.csv", b"text\na\nb\nc\n", {"max_ads": 2}, r"3 ads; this page takes up to 2\. Split the file"),
        ("ads.csv", b"id,text\n1,caf\xe9\n", {}, r"not UTF-8"),
        ("ads.csv", b" \n\n", {}, r"ads\.csv is empty"),
        ("ads.csv", b"id,text\n", {}, r"header but no ads"),
        ("ads.json", b'{"text": "python"}', {}, r"list of objects.*\.jsonl"),
        ("ads.json", b"[{", {}, r"not valid JSON"),
        ("ads.parquet", bytes(random.Random(0).randbytes(300)), {}, r"not a readable Parquet file"),
    ],
)
def test_read_ads_refuses_bad_files_with_a_clear_message(tmp_path, name, content, kwargs, message) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_ads(tmp_path / name, **kwargs)


def test_guess_column_ignores_case_spaces_and_dashes() -> None:
    assert guess_column(["ID", "Job Title", "Description"], TITLE_COLUMNS) == "Job Title"
    assert guess_column(["job-title", "Body"], TITLE_COLUMNS) == "job-title"
    assert guess_column(["JOB DESCRIPTION", "x"], TEXT_COLUMNS) == "JOB DESCRIPTION"
    assert guess_column(["headline", "blurb"], TITLE_COLUMNS) is None


def test_column_choices_guess_and_fall_back(tmp_path) -> None:
    assert column_choices(None) == {"columns": [], "text": None, "title": NO_COLUMN, "id": NO_COLUMN}
    (tmp_path / "a.csv").write_text("Ad-ID,Position,Text\n1,nurse,care\n", encoding="utf-8")
    assert column_choices(tmp_path / "a.csv") == {
        "columns": ["Ad-ID", "Position", "Text"],
        "text": "Text",
        "title": "Position",
        "id": "Ad-ID",
    }
    (tmp_path / "b.csv").write_text("ref,headline,blurb,notes\n1,nurse,care,x\n", encoding="utf-8")
    assert column_choices(tmp_path / "b.csv") == {
        "columns": ["ref", "headline", "blurb", "notes"],
        "text": "notes",
        "title": NO_COLUMN,
        "id": NO_COLUMN,
    }


def batch_table(n: int = BATCH_CHUNK + 5) -> AdTable:
    rng = random.Random(1)
    rows = [{"ref": f"ad-{i}", "title": " ".join(rng.choices(WORDS, k=2)), "text": random_ad(rng)} for i in range(n)]
    rows[3]["text"] = "   "
    rows[5] = dict.fromkeys(rows[5], "")
    return AdTable(["ref", "title", "text"], rows, {6: "line 7 has 4 cells, the header has 3"})


def test_annotate_ads_gives_one_row_per_ad_with_the_models_answers(tiny_model, jobbert) -> None:
    table, calls = batch_table(), []
    rows = annotate_ads(tiny_model, jobbert, table, "text", "title", "ref", progress=lambda *c: calls.append(c))
    n = len(table.rows)
    assert [row["row"] for row in rows] == list(range(1, n + 1))
    assert [row["id"] for row in rows] == [source["ref"] for source in table.rows]
    dones = [done for done, _ in calls]
    assert dones == sorted(set(dones)) and calls[-1] == (n, n) and len(calls) >= 2 and {t for _, t in calls} == {n}
    for row, source in zip(rows, table.rows, strict=True):
        if row["row"] in (4, 6):
            assert row["skills"] == [] and row["problem"]
            continue
        expected = tiny_model.extract(source["text"])[0]["skills"]
        assert row["problem"] == "" and row["skills"] == [s["label"] for s in expected]
        assert row["skill_ids"] == [s["id"] for s in expected]
        assert row["skill_scores"] == pytest.approx([s["score"] for s in expected], abs=1e-3)
        matches = jobbert.normalize([source["title"]], top_k=3)[0]["matches"]
        best = [m for m in matches if m["score"] >= matches[0]["score"] - 1e-4]  # ties: any of them is the top
        assert (row["occupation_id"], row["occupation"]) in {(m["id"], m["label"]) for m in best}
        assert row["occupation_score"] == pytest.approx(matches[0]["score"], abs=1e-3)
    assert "empty text" in rows[3]["problem"] and "line 7" in rows[5]["problem"]


def test_annotate_ads_refuses_an_unknown_column(tiny_model, jobbert) -> None:
    with pytest.raises(InputError, match="no column 'body'.*text column"):
        annotate_ads(tiny_model, jobbert, batch_table(6), "body")
    with pytest.raises(InputError, match="no column 'job'.*title column"):
        annotate_ads(tiny_model, jobbert, batch_table(6), "text", title_column="job")


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_write_batch_round_trips_the_rows(tiny_model, jobbert, tmp_path, file_format) -> None:
    rows = annotate_ads(tiny_model, jobbert, batch_table(6), "text", "title")
    path = write_batch(rows, tmp_path, "ads", file_format)
    assert path == tmp_path / f"ads.skills.{file_format}"
    if file_format == "csv":
        back = pd.read_csv(path, keep_default_na=False, dtype=str)
        for row, (_, line) in zip(rows, back.iterrows(), strict=True):
            assert (line["skills"].split("; ") if line["skills"] else []) == row["skills"]
            assert [float(s) for s in line["skill_scores"].split("; ") if s] == row["skill_scores"]
            assert int(line["row"]) == row["row"] and line["occupation"] == row["occupation"]
    else:
        back = pd.read_parquet(path)
        assert back["row"].tolist() == [row["row"] for row in rows]
        for column in ("skills", "skill_ids", "skill_scores"):
            assert [list(values) for values in back[column]] == [row[column] for row in rows]
    with pytest.raises(InputError, match="csv or parquet"):
        write_batch(rows, tmp_path, "ads", "xlsx")


def test_run_batch_reads_annotates_writes_and_charts(tiny_model, jobbert, tmp_path) -> None:
    table = batch_table()
    lines = pd.DataFrame(table.rows).to_csv(index=False).splitlines(keepends=True)
    lines[6] = "ad-5,cook,too,many\n"  # the problem row (row 6 is line 7 of the file)
    source = tmp_path / "june ads.csv"
    source.write_text("".join(lines), encoding="utf-8")
    result = run_batch(tiny_model, jobbert, source, "text", "title", NO_COLUMN, "csv", tmp_path / ".")
    assert result["file"].name == "june ads.skills.csv" and result["file"].is_file()
    assert f"{len(table.rows)} ads" in result["summary"] and "row 4: empty text" in result["summary"]
    assert "row 6" in result["summary"] and len(result["rows"]) == len(table.rows)
    assert isinstance(result["skills_chart"], Figure) and isinstance(result["occupations_chart"], Figure)
    quiet = run_batch(tiny_model, jobbert, source, "text", NO_COLUMN, "", "parquet", tmp_path, threshold=1.01)
    assert quiet["skills_chart"] is None and quiet["occupations_chart"] is None
    assert all(row["skills"] == [] and "occupation" not in row for row in quiet["rows"])


def test_run_batch_needs_a_file_and_a_text_column(tiny_model, jobbert, tmp_path) -> None:
    with pytest.raises(InputError, match="Upload"):
        run_batch(tiny_model, jobbert, None, "text", None, None, "csv", tmp_path)
    with pytest.raises(InputError, match="text of the ads"):
        run_batch(tiny_model, jobbert, tmp_path / "a.csv", "", None, None, "csv", tmp_path)
    (tmp_path / "a.csv").write_text("id,body\n1,python\n", encoding="utf-8")
    with pytest.raises(InputError, match="no column 'text'"):
        run_batch(tiny_model, jobbert, tmp_path / "a.csv", "text", None, None, "csv", tmp_path)


@pytest.mark.real_weights
def test_a_20000_word_ad_is_cut_at_the_limit_and_the_page_says_so(default_model) -> None:
    from labor_encoders.space.app import EXAMPLES, MAX_WORDS

    nurse = EXAMPLES["Nurse (long, several paragraphs)"].read_text(encoding="utf-8")
    ad = limit_words("\n\n".join([nurse] * 70), 20_000)[0]
    found = extract_skills(default_model, ad)
    assert f"Only the first {MAX_WORDS:,} of 20,000 words were analysed" in found["notice"]
    cut = limit_words(ad, MAX_WORDS)[0]
    assert found["skills"] == default_model.extract(cut, top_k=None)[0]["skills"]
    assert found["skills"] and max(e["end"] for s in found["skills"] for e in s["evidence"]) <= len(cut)
    assert "".join(piece for piece, _ in found["highlighted"]) == cut


def test_old_batch_runs_are_removed_and_recent_ones_kept(tmp_path) -> None:
    import os
    import time

    from labor_encoders.space.app import remove_old_runs

    old, recent = tmp_path / "old", tmp_path / "recent"
    for run in (old, recent):
        run.mkdir()
        (run / "ads.skills.csv").write_text("row\n1\n")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    remove_old_runs(tmp_path, 3600)
    assert not old.exists() and (recent / "ads.skills.csv").exists()
