"""``push``: model, adapter and Space repositories to the Hugging Face Hub."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .common import (
    UsageError,
)

logger = logging.getLogger("labor_encoders")


def register(commands) -> None:
    """Add ``push`` to the ``labor-encoders`` sub-commands."""
    _add_push_command(commands)


def _add_push_command(commands) -> None:
    push = commands.add_parser(
        "push",
        help="publish a model folder or the Space to the Hugging Face Hub, with a model card from real results",
        description="Writes the exact repository contents (safetensors weights, config with auto_map, the modeling "
        "code, tokenizer, index, README card, .gitattributes) and uploads them as one commit. --dry-run writes the "
        "folder and lists it without uploading.",
    )
    push.add_argument(
        "what",
        choices=["model", "adapter", "space"],
        help="a ConTeXT-match/JobBERT model folder (merged weights), a LoRA adapter folder alone, or the Space",
    )
    push.add_argument(
        "folder", type=Path, metavar="FOLDER", help="the model folder, the adapter folder, or the Space folder (space/)"
    )
    push.add_argument("--repo-id", required=True, help="ORG/NAME of the repository to create or update")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.add_argument("--revision", help="branch to commit to (created when missing; default main)")
    push.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    push.add_argument("--commit-message", help="the commit's message")
    push.add_argument("--dry-run", action="store_true", help="write the repository folder and list it; upload nothing")
    push.add_argument("--output", type=Path, help="with --dry-run: where to write the folder (default: a temp folder)")
    push.add_argument(
        "--results", action="append", type=Path, default=[], help="results JSON from `evaluate --output` (repeatable)"
    )
    push.add_argument("--eval-split", help="the split the results were measured on, when their files do not say")
    push.add_argument("--base-model", help="Hub id of the model this one starts from (default: read from the folder)")
    push.add_argument("--contextmatch-model", help="space: ORG/NAME of the ConTeXT-match model it serves")
    push.add_argument("--jobbert-model", help="space: ORG/NAME of the JobBERT model it serves")
    push.set_defaults(handler=_cmd_push)


def _cmd_push(args: argparse.Namespace) -> int:
    import tempfile

    from labor_encoders.model_cards import CardError

    from ..publish import (
        PublishError,
        assemble_adapter_repo,
        assemble_model_repo,
        assemble_space_repo,
        check_repo_id,
        hub_token,
        upload,
    )

    if args.output is not None and not args.dry_run:
        raise UsageError("--output is for --dry-run (an upload stages its folder in a temporary place)")
    model_flags = args.results or args.eval_split or args.base_model
    if args.what != "model" and model_flags:
        raise UsageError(f"--results, --eval-split and --base-model describe a model; `push {args.what}` takes none")
    if args.what != "space" and (args.contextmatch_model or args.jobbert_model):
        raise UsageError("--contextmatch-model and --jobbert-model are for `push space`")
    try:
        check_repo_id(args.repo_id)
        if not args.dry_run:
            hub_token()  # offline or no token: say so before writing anything
        staging = None if args.output else Path(tempfile.mkdtemp(prefix="labor-encoders-push-"))
        output = args.output or staging / args.repo_id.split("/")[1]
        try:
            if args.what == "model":
                plan = assemble_model_repo(
                    args.folder,
                    output,
                    args.repo_id,
                    args.results,
                    revision=args.revision,
                    split=args.eval_split,
                    base_model=args.base_model,
                )
            elif args.what == "adapter":
                plan = assemble_adapter_repo(args.folder, output, args.repo_id)
            else:
                plan = assemble_space_repo(
                    args.folder, output, args.repo_id, args.contextmatch_model, args.jobbert_model
                )
            print(plan.summary())
            if args.dry_run:
                print(f"dry run: nothing was uploaded; the repository folder is {plan.folder}")
                staging = None  # keep it for the user to look at
                return 0
            url = upload(
                plan,
                private=args.private,
                revision=args.revision,
                create_pr=args.create_pr,
                commit_message=args.commit_message,
            )
        finally:
            if staging is not None:
                import shutil

                shutil.rmtree(staging, ignore_errors=True)
    except (PublishError, CardError) as error:
        raise UsageError(str(error)) from None
    print(url)
    return 0
