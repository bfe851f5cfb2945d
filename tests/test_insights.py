"""``labor-encoders analyze``: ESCO reference tables, every analysis checked against an independent pandas
recomputation, bad input, and the whole route (batch --keep-columns, then analyze) as real subprocesses."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labor_encoders.batch.inputs import Columns, check_columns, keep_all
from labor_encoders.batch.runner import STATE_VERSION, BatchJob, ModelOptions, output_schema, run_local
from labor_encoders.insights import AnalysisError, EscoError, analyze, load_esco
from tests.conftest import SHARED_DATA

ESCO_OFFICIAL = SHARED_DATA / "esco-official"
CLI = [sys.executable, "-m", "labor_encoders.cli"]
ENV = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}

# a hand-made ESCO: four skills under two level-1 groups, two collections, two occupations with their relations
S = {name: f"http://data.europa.eu/esco/skill/{name}" for name in ("python", "sql", "teamwork", "recycling")}
OCC = {"developer": "http://data.europa.eu/esco/occupation/dev", "nurse": "http://data.europa.eu/esco/occupation/nurse"}


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture(scope="module")
def mini_esco(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("esco")
    _write(folder / "skills_en.csv", ["conceptUri", "preferredLabel"], [[uri, name] for name, uri in S.items()])
    _write(
        folder / "occupations_en.csv",
        ["conceptUri", "iscoGroup", "preferredLabel"],
        [[OCC["developer"], "2512", "software developer"], [OCC["nurse"], "2221", "nurse"]],
    )
    _write(
        folder / "ISCOGroups_en.csv",
        ["code", "preferredLabel"],
        [["2", "Professionals"], ["25", "ICT professionals"], ["22", "Health professionals"]]
        + [["251", "Software"], ["222", "Nursing"], ["2512", "Software developers"], ["2221", "Nurses"]],
    )
    hierarchy = ["Level 0 URI", "Level 0 preferred term", "Level 0 code"]
    hierarchy += [f"Level {i} {what}" for i in (1, 2, 3) for what in ("URI", "preferred term", "code")]
    g = "http://data.europa.eu/esco/skill/group-"
    _write(
        folder / "skillsHierarchy_en.csv",
        hierarchy,
        [
            [g + "S", "skills", "S", g + "S5", "working with computers", "S5", "", "", "", "", "", ""],
            [g + "S", "skills", "S", g + "S5", "working with computers", "S5", g + "S5.1", "programming", "S5.1"]
            + ["", "", ""],
            [g + "T", "transversal", "T", g + "T4", "social skills", "T4", "", "", "", "", "", ""],
        ],
    )
    _write(
        folder / "broaderRelationsSkillPillar.csv",
        ["conceptType", "conceptUri", "broaderType", "broaderUri"],
        [
            ["SkillGroup", g + "S5.1", "SkillGroup", g + "S5"],
            ["KnowledgeSkillCompetence", S["python"], "SkillGroup", g + "S5.1"],
            ["KnowledgeSkillCompetence", S["sql"], "KnowledgeSkillCompetence", S["python"]],  # via a broader skill
            ["KnowledgeSkillCompetence", S["teamwork"], "SkillGroup", g + "T4"],
        ],
    )
    _write(folder / "greenSkillsCollection_en.csv", ["conceptUri", "preferredLabel"], [[S["recycling"], "r"]])
    _write(
        folder / "digitalSkillsCollection_en.csv",
        ["conceptUri", "preferredLabel"],
        [[S["python"], "p"], [S["sql"], "s"]],
    )
    _write(
        folder / "occupationSkillRelations.csv",
        ["occupationUri", "relationType", "skillType", "skillUri"],
        [
            [OCC["developer"], "essential", "knowledge", S["python"]],
            [OCC["developer"], "essential", "knowledge", S["recycling"]],  # essential, never asked for
            [OCC["developer"], "optional", "skill", S["teamwork"]],
            [OCC["nurse"], "essential", "skill", S["teamwork"]],
        ],
    )
    return folder


def make_ads(count: int = 400, seed: int = 0) -> list[dict]:
    """Rows of a batch output with known skills, regions, dates (two unreadable) and occupations."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(count):
        occupation = "developer" if i % 3 else "nurse"
        month = "10" if i < count // 2 else "11"
        wanted = {"python": 0.7 if occupation == "developer" else 0.05, "teamwork": 0.5, "recycling": 0.1}
        wanted["sql"] = 0.2 if month == "10" else 0.6  # rises from October to November
        skills = [name for name, p in wanted.items() if rng.random() < p]
        date = f"{1 + i % 28:02d}/{month}/2020" if i % 50 else "soon"
        rows.append(
            {
                "id": str(i),
                "source": "ads.csv",
                "row": i + 1,
                "title": occupation,
                "skills": [],
                "skill_labels": skills,
                "skill_ids": [S[name] for name in skills],
                "skill_scores": [0.9] * len(skills),
                "occupation": occupation,
                "occupation_id": OCC[occupation],
                "occupation_score": 0.8,
                "region": ["North", "South", "Tiny"][0 if i % 2 else 1] if i % 97 else "Tiny",
                "date": date,
            }
        )
    return rows


def write_batch_output(folder: Path, rows: list[dict], part_size: int = 150, complete: bool = True) -> Path:
    """``rows`` as ``labor-encoders batch`` writes them: parts with its schema and a state.json."""
    schema = output_schema(columns=Columns(keep=("region", "date")))
    (folder / "parquet").mkdir(parents=True)
    parts = []
    for n, start in enumerate(range(0, len(rows), part_size)):
        parts.append(f"part-{n:05d}")
        pq.write_table(
            pa.Table.from_pylist(rows[start : start + part_size], schema), folder / "parquet" / f"{parts[-1]}.parquet"
        )
    state = {"version": STATE_VERSION, "parts": parts, "ads": len(rows), "complete": complete}
    (folder / "state.json").write_text(json.dumps(state))
    return folder


@pytest.fixture(scope="module")
def ads() -> pd.DataFrame:
    return pd.DataFrame(make_ads())


@pytest.fixture(scope="module")
def result(tmp_path_factory, mini_esco):
    folder = tmp_path_factory.mktemp("insights")
    batch = write_batch_output(folder / "batch", make_ads())
    return analyze(
        [batch], folder / "out", by=["region", "month", "isco2"], date_column="date", esco=load_esco([mini_esco])
    )


# ---------------------------------------------------------------------------------------------------------------
# ESCO
# ---------------------------------------------------------------------------------------------------------------


def test_the_official_esco_download_gives_every_table() -> None:
    esco = load_esco(sorted(ESCO_OFFICIAL.glob("esco-v1.1.1-*.zip")))
    assert esco.missing == []
    assert len(esco.skills) == 13_896 and esco.occupations["occupation_id"].nunique() == len(esco.occupations)
    developer = esco.occupations.set_index("esco_occupation").loc["software developer"]
    assert developer["isco1"] == "2 Professionals" and developer["isco4"].startswith("2512 ")
    level1 = esco.skill_groups[esco.skill_groups["level"] == 1]
    assert level1["skill_id"].nunique() == 13_896  # every skill reaches a level-1 group of the hierarchy
    assert set(esco.collections["collection"]) == {"green", "digital", "digcomp", "transversal", "language", "research"}
    assert len(esco.occupation_skills) == 123_855


def test_esco_from_a_folder_a_partial_download_and_bad_paths(mini_esco, tmp_path) -> None:
    esco = load_esco([mini_esco])
    groups = esco.skill_groups.set_index(["skill_id", "level"])["skill_group"]
    assert groups[(S["sql"], 1)] == "working with computers" and groups[(S["sql"], 2)] == "programming"
    assert S["recycling"] not in set(esco.skill_groups["skill_id"])  # no broader relation: no group
    only_skills = load_esco([mini_esco / "skills_en.csv"])
    assert only_skills.skill_groups is None and "occupationSkillRelations.csv" in only_skills.missing
    with pytest.raises(EscoError, match="does not exist"):
        load_esco([tmp_path / "nowhere.zip"])
    (tmp_path / "other").mkdir()
    with pytest.raises(EscoError, match="no ESCO CSV file"):
        load_esco([tmp_path / "other"])
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    with pytest.raises(EscoError, match="not a readable zip"):
        load_esco([tmp_path / "broken.zip"])


# ---------------------------------------------------------------------------------------------------------------
# The analyses against pandas
# ---------------------------------------------------------------------------------------------------------------


def _shares(ads: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    skills = ads.explode("skill_labels").dropna(subset=["skill_labels"])
    counts = skills.groupby([*by, "skill_labels"]).size().rename("ads").reset_index()
    sizes = ads.groupby(by).size().rename("group_ads").reset_index() if by else None
    if by:
        counts = counts.merge(sizes, on=by)
    else:
        counts["group_ads"] = len(ads)
    counts["share"] = counts["ads"] / counts["group_ads"]
    return counts.rename(columns={"skill_labels": "skill"})


def test_skill_demand_overall_and_by_region_match_pandas_with_wilson_intervals(result, ads) -> None:
    overall = result.tables["skill_demand"].set_index("skill")
    expected = _shares(ads, []).set_index("skill")
    assert overall["ads"].to_dict() == expected["ads"].to_dict()
    assert overall["share"].round(12).to_dict() == expected["share"].round(12).to_dict()
    for row in overall.itertuples():  # the Wilson score interval, recomputed
        n, p, z = row.group_ads, row.share, 1.959963984540054
        centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        assert row.ci_low == pytest.approx(centre - half / (1 + z * z / n)) and row.ci_low <= p <= row.ci_high
    by_region = result.tables["skill_demand_by_region"]
    assert set(by_region["region"]) == {"North", "South"}  # "Tiny" has 5 ads, fewer than --min-ads 30
    expected = _shares(ads[ads["region"] != "Tiny"], ["region"]).set_index(["region", "skill"])["ads"]
    assert by_region.set_index(["region", "skill"])["ads"].to_dict() == expected.to_dict()
    assert any("fewer than 30 ads" in note and "region" in note for note in result.summary["notes"])


def test_dates_are_read_leniently_and_unreadable_ones_are_reported(result, ads) -> None:
    by_month = result.tables["skill_demand_by_month"]
    assert set(by_month["month"]) == {"2020-10", "2020-11"}  # the 8 unreadable dates form a group under 30
    assert result.summary["dates"] == {"column": "date", "with_date": 400, "parsed": 392}
    assert any(
        "8 of 400 dates in date could not be read" in note and "'soon'" in note for note in result.summary["notes"]
    )
    october = ads[ads["date"].str.endswith("/10/2020")]
    row = by_month[(by_month["month"] == "2020-10") & (by_month["skill"] == "sql")].iloc[0]
    assert row["group_ads"] == len(october) and row["ads"] == october["skill_labels"].map(lambda s: "sql" in s).sum()


def test_movers_find_the_rising_skill_with_a_significant_test(result) -> None:
    movers = result.tables["movers"].set_index("skill")
    assert movers["compared"].iloc[0] == "month: 2020-10 -> 2020-11"  # the first and last month by default
    assert movers.loc["sql", "change"] > 0.25 and movers.loc["sql", "significant"]
    assert movers.loc["sql", "q_value"] < 1e-6 and not movers.loc["recycling", "significant"]


def test_skill_groups_collections_and_isco_roll_ups(result, ads) -> None:
    groups = result.tables["skill_groups"].set_index(["level", "skill_group"])
    computers = ads["skill_labels"].map(lambda s: bool({"python", "sql"} & set(s)))
    assert groups.loc[(1, "working with computers"), "ads"] == computers.sum()  # an ad counts once per group
    assert groups.loc[(2, "programming"), "ads"] == computers.sum()
    collections = result.tables["collections"].set_index("collection")
    assert collections.loc["green", "ads"] == ads["skill_labels"].map(lambda s: "recycling" in s).sum()
    by_isco = result.tables["collections_by_isco2"].set_index(["isco2", "collection"])
    nurses = ads[ads["occupation"] == "nurse"]
    digital = nurses["skill_labels"].map(lambda s: bool({"python", "sql"} & set(s))).sum()
    assert by_isco.loc[("22 Health professionals", "digital"), "ads"] == digital
    assert by_isco.loc[("22 Health professionals", "digital"), "group_ads"] == len(nurses)


def test_occupation_profiles_set_the_market_beside_esco(result, ads) -> None:
    profiles = result.tables["occupation_profiles"]
    developer = profiles[profiles["occupation"] == "developer"].set_index("skill")
    assert developer.loc["python", "esco_relation"] == "essential"
    assert developer.loc["teamwork", "esco_relation"] == "optional"
    assert developer.loc["sql", "esco_relation"] == "not in ESCO"  # asked for beyond the taxonomy
    developers = ads[ads["occupation"] == "developer"]
    assert developer.loc["sql", "ads"] == developers["skill_labels"].map(lambda s: "sql" in s).sum()
    beyond = result.tables["beyond_taxonomy"]
    assert "sql" in set(beyond[beyond["occupation"] == "developer"]["skill"])
    rare = result.tables["rarely_mentioned_essentials"]
    assert set(rare["skill"]) >= set() and (rare["share"] < 0.05).all()
    assert "recycling" not in set(rare[rare["occupation"] == "developer"]["skill"]) or (
        developer.loc["recycling", "share"] < 0.05
    )


def test_outputs_charts_and_an_offline_report(result) -> None:
    out = result.output
    for name, info in result.summary["tables"].items():
        assert (out / info["parquet"]).is_file() and (out / info["csv"]).is_file(), name
        assert len(pd.read_csv(out / info["csv"])) == info["rows"]
    assert {"top_skills", "top_skills_by_region", "skills_over_month", "skill_groups_by_region", "movers"} <= set(
        result.charts
    )
    for path in result.charts.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = result.report.read_text()
    assert "PARTIAL" not in page and "Complete: every ad" in page
    tags = re.findall(r"<script[^>]*>", page)  # plotly.js inline, no script from the network: opens offline
    assert tags and all("src" not in tag for tag in tags) and "<link" not in page
    assert page.count("Plotly.newPlot") == len(result.charts)
    assert result.report.stat().st_size < 6_000_000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ads"] == 400 and summary["complete"] is True
    assert result.query("SELECT count(*) AS n FROM skill_demand")["n"][0] == result.rows["skill_demand"]


# ---------------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": ["county"]}, "--by county: no such column. The ads have id, source, row, title"),
        ({"by": ["month"]}, "--by month needs --date-column"),
        ({"by": ["isco1"]}, "--by isco1 needs the ESCO occupations: pass --esco"),
        ({"date_column": "posted"}, "--date-column posted: no such column"),
        ({"date_column": "title"}, "no date in --date-column title could be read (for example"),
        ({"compare": "region"}, "write COLUMN:A,B"),
        ({"compare": "region:North,Tiny"}, "the group region = 'Tiny' has 5 ads, fewer than --min-ads 30"),
        ({"min_ads": 0}, "--min-ads must be at least 1"),
    ],
)
def test_bad_options_say_what_to_do(tmp_path, kwargs, message) -> None:
    batch = write_batch_output(tmp_path / "batch", make_ads())
    with pytest.raises(AnalysisError) as error:
        analyze([batch], tmp_path / "out", **kwargs)
    assert message in str(error.value)
    assert not (tmp_path / "out" / "report.html").exists()


def test_unfinished_old_and_foreign_inputs(tmp_path) -> None:
    rows = make_ads(120)
    unfinished = write_batch_output(tmp_path / "unfinished", rows, part_size=100, complete=False)
    assert (unfinished / "parquet" / "part-00001.parquet").is_file()  # written, but not committed below
    state = json.loads((unfinished / "state.json").read_text())
    (unfinished / "state.json").write_text(json.dumps(state | {"parts": ["part-00000"], "ads": 100}))
    with pytest.raises(AnalysisError, match="unfinished batch run .* pass --partial"):
        analyze([unfinished], tmp_path / "out")
    partial = analyze([unfinished], tmp_path / "out", partial=True, min_ads=1)
    assert partial.summary["ads"] == 100 and not partial.summary["complete"]  # the uncommitted part is not read
    assert "PARTIAL ANALYSIS" in partial.report.read_text()
    (unfinished / "state.json").write_text(json.dumps(state | {"version": STATE_VERSION + 1}))
    with pytest.raises(AnalysisError, match="written by another version"):
        analyze([unfinished], tmp_path / "out2")
    pq.write_table(pa.table({"text": ["an ad"]}), tmp_path / "ads.parquet")
    with pytest.raises(AnalysisError, match="lack the column"):
        analyze([tmp_path / "ads.parquet"], tmp_path / "out3")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    with pytest.raises(AnalysisError, match="not empty and holds no earlier analysis"):
        analyze([write_batch_output(tmp_path / "done", rows)], tmp_path / "notes")
    with pytest.raises(AnalysisError, match="no such folder, Parquet file"):
        analyze([str(tmp_path / "missing-*.parquet")], tmp_path / "out4")


def test_without_esco_the_rest_runs_and_says_what_it_skipped(tmp_path) -> None:
    batch = write_batch_output(tmp_path / "batch", make_ads())
    done = analyze([batch], tmp_path / "out", by=["region"])
    assert "skill_groups" in done.summary["skipped"] and "collections" in done.summary["skipped"]
    assert "movers" in done.summary["skipped"] and "occupation_profiles.esco_relation" in done.summary["skipped"]
    assert {"skill_demand", "skill_demand_by_region", "occupation_profiles"} <= set(done.rows)
    assert "Not computed" in done.report.read_text()


# ---------------------------------------------------------------------------------------------------------------
# batch --keep-columns, then analyze: real subprocesses on tiny models
# ---------------------------------------------------------------------------------------------------------------


def test_kept_columns_are_checked_and_named(tmp_path) -> None:
    path = tmp_path / "ads.csv"
    _write(path, ["text", "title", "region", "source"], [["sql", "dev", "North", "board"]])
    assert keep_all([path], Columns()) == ("region", "source")
    assert Columns(keep=("region", "source")).kept() == {"region": "region", "source": "input_source"}
    from labor_encoders.batch.inputs import BatchError

    with pytest.raises(BatchError, match="--keep-columns names 'county', which no input has; the inputs' columns"):
        check_columns([path], Columns(keep=("county",)))


@pytest.mark.slow
def test_batch_keeps_columns_then_analyze_runs_from_the_command_line(tmp_path, tiny_tokenizer, mini_esco) -> None:
    from labor_encoders.build import save_model
    from tests.conftest import make_tiny_model
    from tests.test_jobbert import make_tiny_jobbert

    model = save_model(make_tiny_model(tiny_tokenizer), tmp_path / "contextmatch")
    jobbert = save_model(make_tiny_jobbert(tiny_tokenizer), tmp_path / "jobbert")
    ads = [
        {"body": "Strong python and sql skills.", "job": "python developer", "date": f"2020-{10 + i % 2}-0{1 + i % 9}",
         "region": "North" if i % 2 else "South", "salary": 30000 + i, "source": "board"}
        for i in range(24)
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(ads), tmp_path / "ads.parquet")
    model_flags = ["--model", str(model), "--jobbert-model", str(jobbert)]
    done = subprocess.run(
        [*CLI, "-q", "batch", str(tmp_path / "ads.parquet"), "--output", str(tmp_path / "batch"), "--text-column",
         "body", "--title-column", "job", "--keep-columns", "all", "--part-size", "10", "--csv", *model_flags],
        capture_output=True, text=True, timeout=300, env=ENV,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = pq.read_table(tmp_path / "batch" / "parquet").to_pandas()
    assert list(table.columns[-4:]) == ["date", "region", "salary", "input_source"]
    assert table["salary"].tolist() == [str(30000 + i) for i in range(24)] and set(table["input_source"]) == {"board"}
    with (tmp_path / "batch" / "csv" / "part-00000.csv").open() as handle:
        assert next(csv.reader(handle))[-2:] == ["salary", "input_source"]
    done = subprocess.run(
        [*CLI, "analyze", str(tmp_path / "batch"), "--output", str(tmp_path / "insights"), "--by", "region",
         "--by", "region,month", "--date-column", "date", "--min-ads", "5", "--esco", str(mini_esco)],
        capture_output=True, text=True, timeout=300, env=ENV,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "24 ads analysed" in done.stderr and (tmp_path / "insights" / "report.html").is_file()
    by_both = pd.read_parquet(tmp_path / "insights" / "tables" / "skill_demand_by_region_month.parquet")
    assert set(zip(by_both["region"], by_both["month"], strict=True)) == {("North", "2020-11"), ("South", "2020-10")}
    bad = subprocess.run(
        [*CLI, "analyze", str(tmp_path / "batch"), "--output", str(tmp_path / "x"), "--by", "county"],
        capture_output=True, text=True, timeout=120, env=ENV,
    )  # fmt: skip
    assert bad.returncode == 2 and "error: --by county: no such column" in bad.stderr and "Traceback" not in bad.stderr


def test_kept_columns_flow_through_a_resumed_run(tmp_path, tiny_tokenizer) -> None:
    from labor_encoders.build import save_model
    from tests.conftest import make_tiny_model

    model = save_model(make_tiny_model(tiny_tokenizer), tmp_path / "contextmatch")
    path = tmp_path / "ads.csv"
    _write(path, ["text", "region"], [[f"python team work {i}", f"r{i % 3}"] for i in range(30)])
    columns = Columns(title=None, keep=("region",))
    job = BatchJob(files=[path], output=tmp_path / "out", columns=columns, options=ModelOptions(model=str(model),
                   titles=False), part_size=7, limit=10)  # fmt: skip
    run_local(job, progress=False)
    run_local(BatchJob(**{**job.__dict__, "limit": None}), progress=False)
    table = pq.read_table(tmp_path / "out" / "parquet").to_pandas()
    assert table["region"].tolist() == [f"r{i % 3}" for i in range(30)]
    state = json.loads((tmp_path / "out" / "state.json").read_text())
    assert state["signature"]["columns"]["keep"] == ["region"]
    plain = BatchJob(files=[path], output=tmp_path / "plain", options=ModelOptions(model=str(model), titles=False))
    assert "keep" not in plain.signature()["columns"]  # runs of earlier versions resume unchanged


# ---------------------------------------------------------------------------------------------------------------
# The web demo's Market insights tab, and its engine on a Space without the project
# ---------------------------------------------------------------------------------------------------------------


def test_the_market_insights_tab_annotates_uploaded_ads_and_analyses_them(tmp_path, tiny_tokenizer, mini_esco):
    from labor_encoders.space.app import InputError, insight_choices, run_insights
    from tests.conftest import make_tiny_model
    from tests.test_jobbert import make_tiny_jobbert

    contextmatch, jobbert = make_tiny_model(tiny_tokenizer), make_tiny_jobbert(tiny_tokenizer)
    path = tmp_path / "ads.csv"
    rows = [[f"python sql team work {i}", "python developer", "North" if i % 2 else "South", f"2020-1{i % 2}-05"]
            for i in range(40)] + [["", "nurse", "North", "2020-10-01"]]  # fmt: skip
    _write(path, ["description", "job_title", "region", "date_posted"], rows)
    choices = insight_choices(path)
    assert (choices["text"], choices["title"], choices["date"]) == ("description", "job_title", "date_posted")
    assert {"region", "date_posted", "month", "isco1"} <= set(choices["groupings"])
    steps = []
    result = run_insights(
        contextmatch, jobbert, path, "description", "job_title", ["region", "month"], "date_posted", 10,
        [mini_esco / "skills_en.csv"], tmp_path / "run", progress=lambda f, text: steps.append((f, text)),
    )  # fmt: skip
    assert result["summary"].startswith("**40 ads** analysed") and "1 rows had no readable ad" in result["summary"]
    assert "not computed: **skill_groups**" in result["summary"]  # only skills_en.csv of ESCO was given
    assert {name for _, name in result["charts"]} >= {"top skills", "top skills by region", "skills over month"}
    assert list(result["top"].columns) == ["skill", "ads", "% of ads"]
    report, tables = map(Path, result["files"])
    assert report.name == "report.html" and tables.suffix == ".zip"
    assert steps[0][0] < 0.7 <= steps[-1][0] == 1.0 and all(
        a[0] <= b[0] for a, b in zip(steps, steps[1:], strict=False)
    )
    # a batch output is analysed as it is, without the models
    batch = write_batch_output(tmp_path / "batch", make_ads(60))
    part = batch / "parquet" / "part-00000.parquet"
    assert insight_choices(part)["annotated"] is True
    again = run_insights(None, None, part, None, None, ["region"], None, 10, None, tmp_path / "run2")
    assert again["summary"].startswith("**60 ads** analysed")
    with pytest.raises(InputError, match="--by county: no such column"):
        run_insights(None, None, part, None, None, ["county"], None, 10, None, tmp_path / "run3")


def test_the_spaces_copy_of_the_engine_runs_without_the_project(tmp_path, mini_esco) -> None:
    from labor_encoders.publish import assemble_space_repo
    from tests.test_remote_code import BLOCK_PROJECT, MODELING, PROJECT_PACKAGES

    space = tmp_path / "space-repo"
    assemble_space_repo(Path(__file__).parents[1] / "space", space, "org/demo", "org/cm", "org/jb")
    batch = write_batch_output(tmp_path / "batch", make_ads(90))
    script = (
        BLOCK_PROJECT.format(blocked=PROJECT_PACKAGES, repo=str(MODELING.parent))
        + f"""
sys.path.insert(0, ".")
try:
    import labor_encoders
    sys.exit("the project is importable: the test proves nothing")
except ImportError:
    pass
import insights
result = insights.analyze([{str(batch / "parquet" / "part-00000.parquet")!r}], "out", by=["region"],
                          esco=insights.load_esco([{str(mini_esco)!r}]))
print(json.dumps(result.summary["tables"]["skill_demand_by_region"]))
"""
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=space, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["rows"] > 0
    assert (space / "out" / "report.html").is_file()


def test_ads_without_an_occupation_form_their_own_group(tmp_path) -> None:
    rows = make_ads(120)
    for row in rows[:40]:
        row |= {"occupation": None, "occupation_id": None, "occupation_score": None}
    done = analyze([write_batch_output(tmp_path / "batch", rows)], tmp_path / "out", by=["occupation"], min_ads=1)
    sizes = done.tables["skill_demand_by_occupation"].groupby("occupation")["group_ads"].first().to_dict()
    assert sizes["(missing)"] == 40 and sum(sizes.values()) == 120
    assert "(missing)" not in set(done.tables["occupation_profiles"]["occupation"])


def test_the_report_draws_every_chart_in_a_real_browser_without_a_network(result) -> None:
    from tests.test_space_browser import CHROMIUM, CHROMIUM_FLAGS

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: ./run.sh test installs Debian's chromium (or set CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requests = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(result.report.as_uri())
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {len(result.charts)}")
        plots = page.locator(".js-plotly-plot").count()
        heading = page.locator("h1").inner_text()
        browser.close()
    assert plots == len(result.charts) and heading == "Labour-market insights"
    assert all(url.startswith(("file:", "data:", "blob:")) for url in requests), requests


@pytest.mark.slow
def test_the_scale_benchmark_runs_end_to_end_on_a_small_synthetic_corpus(tmp_path, capsys) -> None:
    from labor_encoders.evaluation.benchmark_analyze import main

    esco = [str(p) for p in sorted(ESCO_OFFICIAL.glob("esco-v1.1.1-*.zip"))]
    assert main(["--ads", "3000", "--esco", *esco, "--work", str(tmp_path)]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["ads"] == 3000 and figures["skill_rows"] > 3000 * 5 and figures["analyze_peak_rss_mb"] > 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["ads"] == 3000 and summary["dates"]["parsed"] == 3000
    assert summary["esco"]["coverage"]["skills"]["in_esco"] == summary["esco"]["coverage"]["skills"]["distinct_in_ads"]
