"""Bounded queues of the demo: a full tab turns a request away at once, with a plain message; the others wait with
their place in the queue shown; the limits come from flags and environment variables."""

from __future__ import annotations

import threading
import time

import pytest
from gradio_client import Client
from gradio_client.exceptions import ValidationError

from labor_encoders.space.app import QUEUE_LIMITS, InputError, build_demo, queue_limits
from tests.conftest import make_tiny_model
from tests.test_jobbert import make_tiny_jobbert
from tests.test_space_client import AD, free_port


def test_limits_from_flags_and_environment_text() -> None:
    assert queue_limits() == QUEUE_LIMITS
    limits = queue_limits(3, "extract=1, batch=2")
    assert (
        limits["extract"] == (1, 3) and limits["batch"] == (2, 3) and limits["titles"] == (QUEUE_LIMITS["titles"][0], 3)
    )
    for max_queue, concurrency, message in [
        (None, "extract", "GROUP=N pairs"),
        (None, "nope=1", "no queue group 'nope'; the groups are extract, titles"),
        (None, {"batch": 0}, "at least 1 request"),
        (0, None, "at least 1 waiting"),
    ]:
        with pytest.raises(InputError, match=message):
            queue_limits(max_queue, concurrency)


def test_every_event_of_the_page_is_in_a_bounded_group(tiny_tokenizer) -> None:
    demo = build_demo(make_tiny_model(tiny_tokenizer), make_tiny_jobbert(tiny_tokenizer))
    queued = [fn for fn in demo.fns.values() if fn.queue and fn.api_name != "load_example"]  # an example: no model
    groups = {fn.api_name: fn.concurrency_id for fn in queued}
    assert {"extract", "normalize", "columns", "batch"} <= set(groups)  # and any tab added since
    assert set(groups.values()) <= set(QUEUE_LIMITS), groups
    for fn in queued:
        assert fn.validator is not None and fn.concurrency_limit == QUEUE_LIMITS[fn.concurrency_id][0]
    assert demo._queue.max_size == sum(waiting for _, waiting in QUEUE_LIMITS.values())


def test_a_full_queue_turns_the_next_request_away_and_the_waiting_one_sees_its_place(tiny_tokenizer) -> None:
    contextmatch = make_tiny_model(tiny_tokenizer, threshold=0.2)
    release, started = threading.Event(), threading.Event()
    extract = contextmatch.extract

    def slow_extract(*args, **kwargs):
        started.set()
        assert release.wait(60), "the test never released the model"
        return extract(*args, **kwargs)

    contextmatch.extract = slow_extract
    limits = queue_limits(1, "extract=1")
    demo = build_demo(contextmatch, make_tiny_jobbert(tiny_tokenizer), limits=limits)
    demo.launch(prevent_thread_lock=True, server_port=free_port(), quiet=True, ssr_mode=False)
    try:
        client = Client(demo.local_url, verbose=False)
        running = client.submit(AD, 0.2, 5, True, api_name="/extract")
        assert started.wait(30), "the first request did not start"
        waiting = client.submit(AD, 0.2, 5, True, api_name="/extract")
        deadline = time.monotonic() + 30
        while waiting.status().code.name != "IN_QUEUE" and time.monotonic() < deadline:
            time.sleep(0.05)
        status = waiting.status()
        assert status.code.name == "IN_QUEUE" and status.rank == 0 and status.queue_size >= 1, status
        started_at = time.monotonic()
        with pytest.raises(
            ValidationError, match=r"This tab's queue is full \(1 requests waiting\)\. Please try again"
        ):
            client.predict(AD, 0.2, 5, True, api_name="/extract")
        assert time.monotonic() - started_at < 10, "a full queue must answer at once"
        titles = client.predict("nurse", 3, api_name="/normalize")  # another tab's queue is not full
        assert titles["data"]
        release.set()
        assert running.result(timeout=60)[1]["headers"] == ["Skill", "Score", "Evidence"]
        assert waiting.result(timeout=60)[1]["headers"] == ["Skill", "Score", "Evidence"]
        assert client.predict(AD, 0.2, 5, True, api_name="/extract")[1]["data"]  # room again
    finally:
        release.set()
        demo.close()


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--max-queue", "0"], "at least 1 waiting"), (["--concurrency", "extract=x"], "GROUP=N pairs")],
)
def test_demo_flags_are_checked_before_the_models_load(flags, message, capsys) -> None:
    from labor_encoders.cli import main

    assert main(["demo", "--model", "/nonexistent", *flags]) == 2
    assert message in capsys.readouterr().err


def test_the_load_script_reports_latency_and_turned_away_requests(tiny_tokenizer) -> None:
    from labor_encoders.evaluation.load_demo import run_load

    with pytest.raises(SystemExit, match="loopback"):
        run_load("http://example.org:7860", 1, 1)
    limits = queue_limits(1, "extract=1")
    demo = build_demo(make_tiny_model(tiny_tokenizer, threshold=0.2), make_tiny_jobbert(tiny_tokenizer), limits=limits)
    demo.launch(prevent_thread_lock=True, server_port=free_port(), quiet=True, ssr_mode=False)
    try:
        report = run_load(demo.local_url, users=6, requests=2, action="extract", max_seconds=60)
    finally:
        demo.close()
    assert report["answered"] + report["turned_away"] + report["unfinished"] == 12 and not report["errors"], report
    assert report["answered"] >= 2 and report["p50_s"] <= report["p95_s"] <= report["max_s"]
