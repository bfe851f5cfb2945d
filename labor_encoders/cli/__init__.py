"""The ``labor-encoders`` command line, one module per group of commands:

- :mod:`.models`: ``setup``, ``build``, ``build-jobbert``, ``export-jobbert``, ``export-onnx``, ``calibrate``
- :mod:`.extract`: ``extract``, ``normalize``
- :mod:`.evaluate`: ``evaluate`` (the paper's benchmarks, WorkRB)
- :mod:`.train`: ``train``, ``jobbert-pairs``
- :mod:`.corpus`: ``batch``, ``analyze``
- :mod:`.publish`: ``push``
- :mod:`.serve`: ``demo``

Each module's ``register(commands)`` adds its sub-commands, with a ``handler`` that returns the exit status.
:mod:`.common` holds the flags several commands share (``--model``, ``--threshold``, ``--json``) and
:class:`UsageError`. Any :class:`~labor_encoders.errors.LaborEncodersError` a handler raises is printed as
``error: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .. import __version__
from ..errors import LaborEncodersError
from . import corpus, evaluate, extract, models, publish, serve, train
from .common import SAMPLE_AD, UsageError

__all__ = ["SAMPLE_AD", "UsageError", "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own health checks, one line per request
    try:
        return args.handler(args)
    except LaborEncodersError as error:  # every error a user can fix (see labor_encoders.errors)
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labor-encoders", description="ConTeXT-match skill extraction and JobBERT V2 title embeddings."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print results and errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (models, extract, evaluate, train, corpus, publish, serve):
        group.register(commands)
    return parser
