"""The Space served for real: build_demo on tiny models, launched in-process, driven through gradio_client."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from labor_encoders.space.app import LAUNCH_OPTIONS, NO_COLUMN, build_demo
from tests.conftest import make_tiny_model
from tests.test_jobbert import make_tiny_jobbert

AD = "Strong python and sql skills. Great team work and communication!\n\nWe offer a bike."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(contextmatch, jobbert):
    demo = build_demo(contextmatch, jobbert)
    demo.launch(prevent_thread_lock=True, server_port=free_port(), quiet=True, ssr_mode=False, **LAUNCH_OPTIONS)
    return demo


@pytest.fixture(scope="module")
def models(tiny_tokenizer):
    return make_tiny_model(tiny_tokenizer, threshold=0.2), make_tiny_jobbert(tiny_tokenizer)


@pytest.fixture(scope="module")
def client(models):
    demo = serve(*models)
    yield Client(demo.local_url, verbose=False)
    demo.close()


def test_the_api_names_the_seven_actions(client) -> None:
    assert set(client.view_api(return_format="dict")["named_endpoints"]) == {
        "/extract",
        "/normalize",
        "/ad_occupations",
        "/columns",
        "/batch",
        "/insight_columns",
        "/insights",
    }


def test_extract_through_the_server_equals_the_model(client, models) -> None:
    contextmatch, _ = models
    highlighted, table, chart, notice = client.predict(AD, 0.2, 5, True, api_name="/extract")
    expected = contextmatch.extract(AD, threshold=0.2, top_k=5, redundancy_filter=True)[0]["skills"]
    assert expected, "the tiny model should find skills at this threshold"
    assert table["headers"] == ["Skill", "Score", "Evidence"]
    assert [row[0] for row in table["data"]] == [skill["label"] for skill in expected]  # urn: ids are not links
    assert [row[1] for row in table["data"]] == pytest.approx([round(s["score"], 3) for s in expected])
    assert "".join(piece["token"] for piece in highlighted) == AD
    assert {piece["class_or_confidence"] for piece in highlighted} - {None} <= {s["label"] for s in expected}
    assert chart["type"] == "matplotlib" and chart["plot"].startswith("data:image/png;base64,")
    assert f"{len(expected)} skills" in notice


def test_the_threshold_and_filter_controls_reach_the_model(client, models) -> None:
    contextmatch, _ = models
    _, strict, _, _ = client.predict(AD, 0.99, 100, True, api_name="/extract")
    _, loose, _, _ = client.predict(AD, 0.0, 100, False, api_name="/extract")
    assert strict["data"] == []
    assert len(loose["data"]) == len(contextmatch.extract(AD, threshold=0.0, redundancy_filter=False)[0]["skills"])


def test_an_empty_ad_gets_a_clear_message(client) -> None:
    with pytest.raises(AppError, match="job ad is empty"):
        client.predict("   ", 0.5, 10, True, api_name="/extract")


def test_occupations_from_an_ad_through_the_server_equal_the_skills_head_ranking(client, models) -> None:
    from labor_encoders.space.app import occupations_from_skills

    contextmatch, jobbert = models
    table, notice = client.predict(AD, 3, 0.0, api_name="/ad_occupations")
    skills = [skill["label"] for skill in contextmatch.extract(AD, threshold=0.0)[0]["skills"]]
    expected = occupations_from_skills(jobbert, skills, 3)
    assert [row[2] for row in table["data"]] == [match["label"] for match in expected]
    assert f"**{len(skills)} skills**" in notice
    with pytest.raises(AppError, match="The job ad is empty"):
        client.predict("  ", 3, 0.0, api_name="/ad_occupations")


def test_normalize_through_the_server_equals_the_model(client, models) -> None:
    _, jobbert = models
    table = client.predict("python\n\nproject manager\n", 2, api_name="/normalize")
    expected = jobbert.normalize(["python", "project manager"], top_k=2)
    rows = [(r["title"], rank, m["label"]) for r in expected for rank, m in enumerate(r["matches"], 1)]
    assert [(row[0], row[1], row[2]) for row in table["data"]] == rows
    with pytest.raises(AppError, match="one a line"):
        client.predict("\n \n", 2, api_name="/normalize")


def test_batch_upload_guesses_columns_and_returns_one_row_per_ad(client, models, tmp_path) -> None:
    ads = tmp_path / "ads.csv"
    ads.write_text('Ad ID,Job Title,Description\n7,python,"python and sql"\n8,manager\n9,project manager,team work\n')
    text_column, title_column, id_column, _ = client.predict(handle_file(str(ads)), api_name="/columns")
    assert (text_column["value"], title_column["value"], id_column["value"]) == ("Description", "Job Title", "Ad ID")
    assert [choice[0] for choice in title_column["choices"]] == [NO_COLUMN, "Ad ID", "Job Title", "Description"]

    output, skills_chart, occupations_chart, summary = client.predict(
        handle_file(str(ads)), "Description", "Job Title", "Ad ID", "parquet", 0.2, api_name="/batch"
    )
    frame = pd.read_parquet(output)
    assert frame["row"].tolist() == [1, 2, 3] and frame["id"].tolist() == ["7", "", "9"]
    assert frame["problem"][1].startswith("line 3 has 2 cells")  # kept, with the reason
    assert list(frame["skills"][1]) == [] and list(frame["skills"][0])
    assert frame["occupation"][2] == models[1].normalize("project manager", top_k=1)[0]["matches"][0]["label"]
    assert "**3 ads**" in summary and "1 rows with a problem" in summary
    assert skills_chart["type"] == "matplotlib" and occupations_chart["type"] == "matplotlib"


def test_a_bad_file_gets_a_clear_message(client, tmp_path) -> None:
    bad = tmp_path / "ads.csv"
    bad.write_bytes(b"text\ncaf\xe9\n")
    with pytest.raises(AppError, match="not UTF-8"):
        client.predict(handle_file(str(bad)), "text", NO_COLUMN, NO_COLUMN, "csv", 0.5, api_name="/batch")


class BlockingModel:
    """A model whose ``extract`` waits until released, counting how many calls are inside at once."""

    def __init__(self, model) -> None:
        self.model, self.config = model, model.config
        self.release = threading.Event()
        self.inside = 0
        self.most_inside = 0
        self.lock = threading.Lock()

    def extract(self, *args, **kwargs):
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            assert self.release.wait(60), "never released"
            return self.model.extract(*args, **kwargs)
        finally:
            with self.lock:
                self.inside -= 1


def wait_until(condition, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_running_batch_and_two_extractions_do_not_block_a_title_lookup(models, tmp_path) -> None:
    contextmatch, jobbert = models
    blocking = BlockingModel(contextmatch)
    demo = serve(blocking, jobbert)
    try:
        ads = tmp_path / "ads.jsonl"
        ads.write_text('{"text": "python and sql"}\n{"text": "team work"}\n')
        users = [Client(demo.local_url, verbose=False) for _ in range(4)]
        batch = users[0].submit(handle_file(str(ads)), "text", NO_COLUMN, NO_COLUMN, "csv", 0.2, api_name="/batch")
        assert wait_until(lambda: blocking.inside == 1), "the batch never started"
        first = users[1].submit(AD, 0.2, 5, True, api_name="/extract")
        second = users[2].submit(AD, 0.2, 5, True, api_name="/extract")
        assert wait_until(lambda: blocking.inside == 3), "two extractions should run beside the batch"
        started = time.monotonic()
        table = users[3].predict("python", 1, api_name="/normalize")  # answered while the others wait
        assert time.monotonic() - started < 30 and table["data"][0][0] == "python"
        assert not batch.done() and not first.done() and not second.done()
        blocking.release.set()
        assert pd.read_csv(batch.result(timeout=60)[0])["row"].tolist() == [1, 2]
        assert first.result(timeout=60)[1]["data"] == second.result(timeout=60)[1]["data"]
        assert blocking.most_inside == 3
    finally:
        blocking.release.set()
        demo.close()


def test_market_insights_through_the_server(client, tmp_path) -> None:
    path = tmp_path / "ads.csv"
    rows = [f"python sql team work {i},{'North' if i % 2 else 'South'},2020-1{i % 2}-05" for i in range(24)]
    path.write_text("description,region,date_posted\n" + "\n".join(rows) + "\n", encoding="utf-8")
    text, title, group_by, date, note = client.predict(handle_file(str(path)), api_name="/insight_columns")
    assert (text["value"], title["value"], date["value"]) == ("description", NO_COLUMN, "date_posted")
    assert [c[0] for c in group_by["choices"]][:3] == ["region", "date_posted", "occupation"] and "3 columns" in note
    summary, charts, top, files = client.predict(
        handle_file(str(path)), "description", NO_COLUMN, ["region", "month"], "date_posted", 5, None, 0.2,
        api_name="/insights",
    )  # fmt: skip
    assert summary.startswith("**24 ads** analysed")
    assert {chart["caption"] for chart in charts} >= {"top skills", "top skills by region", "skills over month"}
    assert top["headers"] == ["skill", "ads", "% of ads"] and top["data"]
    assert sorted(Path(f).name for f in files) == ["insight-tables.zip", "report.html"]
    with pytest.raises(AppError, match="no such column"):
        client.predict(handle_file(str(path)), "description", NO_COLUMN, ["county"], NO_COLUMN, 5, None, 0.2,
                       api_name="/insights")  # fmt: skip
