"""The web page end to end in a real headless Chromium (Debian's, driven by Playwright), on the real default models.

Screenshots of every step are written to ``test-artifacts/space/`` (1280×800 viewport) for a person to look at.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pandas as pd
import pytest

from labor_encoders.space.app import EXAMPLES, LAUNCH_OPTIONS, build_demo
from tests.conftest import REPO

pytestmark = pytest.mark.real_weights

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "test-artifacts" / "space"
# Flags for a headless Chromium on a machine with no network beyond loopback (and as root: no sandbox).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 120_000
ADS_CSV = (
    "job_id,job_title,description\n"
    'a1,senior data engineer,"You build data pipelines in Python and SQL.\nYou mentor junior engineers."\n'
    "a2,registered nurse,You administer medication and care for surgical wounds.\n"
    "a3,sous chef,You prepare dishes and supervise the kitchen staff.\n"
)


@pytest.fixture(scope="module")
def server(default_model, default_jobbert):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = build_demo(default_model, default_jobbert)
    demo.launch(prevent_thread_lock=True, server_port=port, quiet=True, ssr_mode=False, **LAUNCH_OPTIONS)
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: ./run.sh test installs Debian's chromium (or set CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server)
    page.wait_for_selector("#ad textarea")
    yield page
    context.close()


def test_extract_then_titles_then_batch_like_a_user(page, default_model, default_jobbert, tmp_path) -> None:
    ad = EXAMPLES["Nurse (long, several paragraphs)"].read_text(encoding="utf-8")
    page.screenshot(path=ARTIFACTS / "0-start.png")

    # Skill extraction: type an ad, click, wait for the highlighted evidence and the table.
    page.locator("#ad textarea").fill(ad)
    page.click("#extract-button")
    page.wait_for_function("document.querySelector('#notice').innerText.includes('skills')")
    expected = default_model.extract(ad, top_k=30)[0]["skills"]
    assert len(expected) >= 5, "the default model should find skills in the nurse ad"
    labels = page.locator("#evidence .token.highlighted .label").all_inner_texts()
    assert labels and {label.lower() for label in labels} <= {skill["label"].lower() for skill in expected}
    highlighted = page.locator("#evidence .token.highlighted .text").all_inner_texts()
    assert all(piece.strip() in ad for piece in highlighted)
    grid = page.locator("#skills-table [role=grid]")
    assert grid.get_attribute("aria-rowcount") == str(len(expected) + 1)  # a header row and one row per skill
    grid.scroll_into_view_if_needed()  # the table renders only the rows in view
    links = page.locator("#skills-table [role=grid] a").evaluate_all(  # without the hidden row that sizes columns
        "links => links.filter(a => !a.closest('.sizing-body')).map(a => [a.innerText, a.getAttribute('href')])"
    )
    assert links and links == [[s["label"], s["id"]] for s in expected[: len(links)]]
    assert f"{len(expected)} skills" in page.inner_text("#notice")
    page.screenshot(path=ARTIFACTS / "1-extract.png")
    page.screenshot(path=ARTIFACTS / "1-extract-full.png", full_page=True)

    # Job titles: switch tab, ask for two titles, check the linked occupations.
    page.get_by_role("tab", name="Job titles").click()
    page.locator("#titles textarea").fill("data engineer\nhead chef")
    page.click("#titles-button")
    page.wait_for_function("document.querySelector('#titles-table').innerText.includes('head chef')")
    top = {r["title"]: r["matches"][0] for r in default_jobbert.normalize(["data engineer", "head chef"], top_k=5)}
    table = page.inner_text("#titles-table")
    assert top["data engineer"]["label"] in table and top["head chef"]["label"] in table
    assert page.locator(f"#titles-table a[href='{top['head chef']['id']}']").count() >= 1
    page.screenshot(path=ARTIFACTS / "2-titles.png")

    # Batch: upload a CSV, let the page guess the columns, run, download the result.
    ads = tmp_path / "ads.csv"
    ads.write_text(ADS_CSV, encoding="utf-8")
    page.get_by_role("tab", name="Batch").click()
    page.locator("#upload input[type=file]").set_input_files(ads)
    page.wait_for_function("document.querySelector('#text-column input').value === 'description'")
    page.click("#batch-button")
    page.wait_for_function("document.querySelector('#batch-summary').innerText.includes('3 ads')")
    with page.expect_download() as download:
        page.locator("#download a").first.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    page.screenshot(path=ARTIFACTS / "3-batch.png", full_page=True)
    frame = pd.read_csv(saved, keep_default_na=False)
    source = pd.read_csv(ads)
    assert frame["id"].tolist() == source["job_id"].tolist()
    assert frame["title"].tolist() == source["job_title"].tolist()
    for row, text, title in zip(frame.itertuples(), source["description"], source["job_title"], strict=True):
        skills = default_model.extract(text)[0]["skills"]
        assert row.skills == "; ".join(skill["label"] for skill in skills)
        assert row.occupation == default_jobbert.normalize(title, top_k=1)[0]["matches"][0]["label"]


def test_a_bad_upload_shows_a_clear_message_in_the_page(page, tmp_path) -> None:
    bad = tmp_path / "ads.csv"
    bad.write_bytes(b"title,text\nchef,caf\xe9 and kitchen\n")
    page.get_by_role("tab", name="Batch").click()
    page.locator("#upload input[type=file]").set_input_files(bad)
    page.wait_for_function("document.querySelector('#columns-note').innerText.includes('not UTF-8')")
    page.screenshot(path=ARTIFACTS / "4-bad-file.png")
    assert "ads.csv is not UTF-8 text" in page.inner_text("#columns-note")
    assert page.input_value("#text-column input") == ""  # nothing chosen from a file that could not be read

    page.click("#batch-button")  # running it anyway: an error notice says what is missing
    page.get_by_text("Choose the column that holds the text of the ads").first.wait_for()
    page.screenshot(path=ARTIFACTS / "5-bad-file-run.png")
