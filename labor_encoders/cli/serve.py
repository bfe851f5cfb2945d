"""``demo``: the web demo (Gradio)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from .common import (
    UsageError,
    add_model_flag,
)

logger = logging.getLogger("labor_encoders")


def register(commands) -> None:
    """Add ``demo`` to the ``labor-encoders`` sub-commands."""
    demo = commands.add_parser("demo", help="serve the web demo (Gradio): skill extraction, job titles, batch files")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    demo.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    demo.add_argument("--share", action="store_true", help="also open a temporary public gradio.live link")
    add_model_flag(demo, "ConTeXT-match folder or Hub repo id (default: the embedded default)")
    demo.add_argument(
        "--jobbert-model", type=Path, help="JobBERT folder or Hub repo id (default: the embedded default)"
    )
    demo.add_argument(
        "--max-queue", type=int, help="requests that may wait in each tab's queue; one more is turned away"
    )
    demo.add_argument(
        "--concurrency", metavar="GROUP=N,...", help="requests run at once per tab (e.g. extract=2,batch=1)"
    )
    demo.set_defaults(handler=_cmd_demo)


def _require_free_port(host: str, port: int) -> None:
    import socket

    if not 0 < port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {port}")
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        raise UsageError(f"cannot serve on {host}:{port} ({error.strerror or error}); pass a free --port") from None


def _stop_on_signals() -> None:
    """Ctrl+C and SIGTERM (a service manager's stop) both shut the server down cleanly, even when the process was
    started with SIGINT ignored (as shells do for background jobs)."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def _cmd_demo(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # job ads can be confidential: no usage pings
    try:
        from labor_encoders.space.app import LAUNCH_OPTIONS, InputError, build_demo, queue_limits
    except ImportError as error:
        raise UsageError(f"the demo needs gradio ({error}): pip install 'labor-encoders[space]'") from None
    try:
        limits = queue_limits(args.max_queue, args.concurrency)
    except InputError as error:
        raise UsageError(f"--max-queue/--concurrency: {error}") from None
    from ..build import load_contextmatch, resolve_model_dir
    from ..jobbert import load_jobbert, resolve_jobbert_dir

    _require_free_port(args.host, args.port)  # before the models load, which takes a while
    contextmatch = load_contextmatch(resolve_model_dir(args.model))
    jobbert = load_jobbert(resolve_jobbert_dir(args.jobbert_model))
    demo = build_demo(contextmatch, jobbert, limits=limits)
    try:
        demo.launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            prevent_thread_lock=True,
            quiet=True,
            ssr_mode=False,
            **LAUNCH_OPTIONS,
        )
    except OSError as error:
        raise UsageError(f"cannot serve on {args.host}:{args.port} ({error}); pass a free --port") from None
    _stop_on_signals()
    print(f"Serving the demo on {demo.local_url}  (Ctrl+C to stop)", flush=True)
    if demo.share_url:
        print(f"Public link (about a week): {demo.share_url}", flush=True)
    try:
        demo.block_thread()
    finally:
        demo.close()
    return 0
