"""Load on a running web demo: N users at once, each sending R requests to one action, over loopback only.

Start the demo, then load it::

    labor-encoders demo --port 7860 &
    .venv/bin/python -m labor_encoders.evaluation.load_demo --url http://127.0.0.1:7860 --users 8 --requests 3
    --action extract

Every user is a ``gradio_client.Client`` of its own, sending its requests one after the other (as a person clicking
again once the answer is shown). The report gives the latency of the answered requests (p50, p95, max, from the
request to its answer, queue wait included), how many were turned away because the tab's queue was full, other
errors by kind, and answered requests per second.

Bounded by design: the URL must be a loopback address (127.0.0.1, ::1 or localhost), at most 64 users and 100
requests each, and the whole run stops after ``--max-seconds`` (requests still waiting then count as unfinished).
This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
MAX_USERS, MAX_REQUESTS = 64, 100
AD = Path(__file__).resolve().parents[1] / "space" / "examples" / "data_engineer.txt"
TITLES = "senior data engineer\nregistered nurse\nsous chef"


def check_loopback(url: str) -> str:
    host = urlparse(url).hostname
    if host not in LOOPBACK:
        raise SystemExit(f"--url must be a loopback address ({', '.join(sorted(LOOPBACK))}), not {host!r}")
    return url


def request_args(action: str, threshold: float) -> tuple[tuple[Any, ...], str]:
    if action == "extract":
        return (AD.read_text(encoding="utf-8"), threshold, 30, True), "/extract"
    return (TITLES, 5), "/normalize"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_load(
    url: str, users: int, requests: int, action: str = "extract", threshold: float = 0.5, max_seconds: float = 300
) -> dict[str, Any]:
    """Load ``url`` and return the report (see the module docstring)."""
    from gradio_client import Client

    check_loopback(url)
    if not (1 <= users <= MAX_USERS and 1 <= requests <= MAX_REQUESTS):
        raise SystemExit(f"--users must be 1..{MAX_USERS} and --requests 1..{MAX_REQUESTS}")
    args, api_name = request_args(action, threshold)
    deadline = time.monotonic() + max_seconds
    latencies: list[float] = []
    errors: dict[str, int] = {}
    turned_away = unfinished = 0
    lock = threading.Lock()

    def user() -> None:
        nonlocal turned_away, unfinished
        client = Client(url, verbose=False)
        for _ in range(requests):
            left = deadline - time.monotonic()
            if left <= 0:
                with lock:
                    unfinished += 1
                continue
            started = time.perf_counter()
            try:
                client.submit(*args, api_name=api_name).result(timeout=left)
            except Exception as error:  # counted by kind: the report is the point
                full = "queue is full" in str(error).lower()
                with lock:
                    if full:
                        turned_away += 1
                    elif isinstance(error, TimeoutError):
                        unfinished += 1
                    else:
                        errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=user, daemon=True) for _ in range(users)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0) + 30)
    seconds = time.perf_counter() - started
    return {
        "url": url,
        "action": action,
        "users": users,
        "requests_per_user": requests,
        "answered": len(latencies),
        "turned_away": turned_away,
        "unfinished": unfinished,
        "errors": errors,
        "p50_s": _round(statistics.median(latencies) if latencies else None),
        "p95_s": _round(percentile(latencies, 0.95)),
        "max_s": _round(max(latencies) if latencies else None),
        "seconds": round(seconds, 2),
        "answered_per_s": round(len(latencies) / seconds, 2) if seconds else None,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def markdown_row(report: dict[str, Any]) -> str:
    errors = sum(report["errors"].values())
    return (
        f"| {report['action']} | {report['users']} x {report['requests_per_user']} | {report['answered']} | "
        f"{report['turned_away']} | {errors + report['unfinished']} | {report['p50_s']} | {report['p95_s']} | "
        f"{report['max_s']} | {report['answered_per_s']} |"
    )


HEADER = (
    "| action | users x requests | answered | turned away (queue full) | errors + unfinished | p50 s | p95 s | max s "
    "| answered/s |\n|---|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860", help="a running demo, on loopback")
    parser.add_argument("--users", type=int, default=8, help=f"users at once (1..{MAX_USERS}, default 8)")
    parser.add_argument("--requests", type=int, default=3, help=f"requests per user (1..{MAX_REQUESTS}, default 3)")
    parser.add_argument("--action", choices=["extract", "normalize"], default="extract")
    parser.add_argument("--threshold", type=float, default=0.5, help="extract: the threshold sent (default 0.5)")
    parser.add_argument("--max-seconds", type=float, default=300, help="stop the whole run after this (default 300)")
    parser.add_argument("--output", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    report = run_load(args.url, args.users, args.requests, args.action, args.threshold, args.max_seconds)
    print(HEADER)
    print(markdown_row(report))
    if report["errors"]:
        print(f"errors: {report['errors']}", file=sys.stderr)
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
