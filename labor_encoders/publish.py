"""Publish a model folder or the Space to the Hugging Face Hub: ``labor-encoders push model|space FOLDER``.

Two steps, so that what is uploaded can be looked at first:

1. :func:`assemble_model_repo` / :func:`assemble_space_repo` write the exact repository contents into a folder
   (atomically: a failure leaves nothing behind). A model repo holds the weights as safetensors, ``config.json`` with
   ``auto_map``, the current remote-code files of ``modeling/``, the tokenizer, the skill or title index,
   ``training_args.json`` (paths reduced to file names) and ``training_log.jsonl`` when the model was trained here,
   the results files the card quotes (``eval_results/``), the card (``README.md``) and a ``.gitattributes``.
   Nothing pickled is ever copied.
2. :func:`upload` checks for a token and for offline mode before any network call, then ``create_repo`` +
   ``upload_folder`` (one commit, or a pull request), and sets a Space's variables.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labor_encoders.model_cards import CardError, read_model_folder, render_model_card, render_space_card

from .atomic import write_folder as write_atomically
from .errors import LaborEncodersError

logger = logging.getLogger(__name__)

AUTO_MAP = {
    "contextmatch": {
        "AutoConfig": "configuration_contextmatch.ConTeXTMatchConfig",
        "AutoModel": "modeling_contextmatch.ConTeXTMatchModel",
    },
    "jobbert": {"AutoConfig": "configuration_jobbert.JobBERTConfig", "AutoModel": "modeling_jobbert.JobBERTModel"},
}
INDEX_FILES = {"contextmatch": ("skill_index.json", "num_skills"), "jobbert": ("title_index.json", "num_titles")}
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
SPACE_LEFT_OUT = ("__init__.py", "__pycache__", "*.pyc", ".*")
INSIGHTS = Path(__file__).resolve().parent / "insights"  # copied into the Space's repository as insights/
SPACE_VARIABLES = ("CONTEXTMATCH_MODEL", "JOBBERT_MODEL")
GITATTRIBUTES = """\
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.png filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
skill_index.json filter=lfs diff=lfs merge=lfs -text
title_index.json filter=lfs diff=lfs merge=lfs -text
"""
LOGIN_HELP = (
    "log in with `hf auth login`, or set HF_TOKEN to a token with write access (https://huggingface.co/settings/tokens)"
)


class PublishError(LaborEncodersError):
    """Something that stops a push, with the reason and the fix."""


@dataclass
class RepoPlan:
    """A folder holding exactly what goes into a Hub repository."""

    folder: Path
    repo_id: str
    repo_type: str  # model or space
    variables: dict[str, str] = field(default_factory=dict)  # a Space's variables
    space_sdk: str | None = None

    def files(self) -> list[tuple[str, int]]:
        """(path in the repository, size in bytes) of every file, sorted."""
        paths = sorted(p for p in self.folder.rglob("*") if p.is_file())
        return [(p.relative_to(self.folder).as_posix(), p.stat().st_size) for p in paths]

    def summary(self) -> str:
        """What would be uploaded, one file a line, then the Space variables."""
        files = self.files()
        lines = [f"{self.repo_type} repository {self.repo_id}: {len(files)} files, {_size(sum(s for _, s in files))}"]
        lines += [f"  {name:40} {_size(size):>10}" for name, size in files]
        lines += [f"  variable {key}={value}" for key, value in self.variables.items()]
        return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # unreachable


def check_repo_id(repo_id: str, what: str = "--repo-id") -> str:
    """``ORG/NAME`` as the Hub accepts it, or a :class:`PublishError` that says what is wrong."""
    from .hub import repo_id_problem

    problem = repo_id_problem(repo_id)
    if problem is not None and problem.startswith("it must be ORG/NAME"):
        raise PublishError(f"{what} must be ORG/NAME (your user or organisation, then the name), got {repo_id!r}")
    if problem is not None:
        raise PublishError(f"{what} {repo_id!r} is not a valid Hub repository id: {problem}")
    return repo_id


def assemble_model_repo(
    folder: str | Path,
    output: str | Path,
    repo_id: str,
    results: Sequence[str | Path] = (),
    *,
    revision: str | None = None,
    split: str | None = None,
    base_model: str | None = None,
) -> RepoPlan:
    """Write the repository contents of a ConTeXT-match or JobBERT folder into ``output`` (replacing it)."""
    check_repo_id(repo_id)
    model = read_model_folder(folder)
    source = model.path
    weights = sorted(source.glob("*.safetensors"))
    pickles = sorted(p.name for p in source.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not weights:
        found = f" (it has {', '.join(pickles)}, pickle files that are never published)" if pickles else ""
        raise PublishError(f"{source} has no safetensors weights{found}; save it with save_pretrained again")
    index_file, rows = INDEX_FILES[model.kind]
    if model.config.get(rows) and not (source / index_file).is_file():
        raise PublishError(f"{source} has {model.config[rows]} index vectors but no {index_file}; rebuild its index")
    if not (source / "tokenizer.json").is_file() and not (source / "tokenizer_config.json").is_file():
        raise PublishError(f"{source} has no tokenizer files; a model folder needs them beside config.json")
    card = render_model_card(source, repo_id, results, revision=revision, split=split, base_model=base_model)
    used = [Path(p) for p in results] + ([model.calibration] if model.calibration else [])

    def write(staging: Path) -> None:
        extra = (*TOKENIZER_FILES, index_file, "model.safetensors.index.json", "training_log.jsonl")
        for path in weights + [source / name for name in extra]:
            if path.is_file():
                _link_or_copy(path, staging / path.name)
        config = {**model.config, "auto_map": AUTO_MAP[model.kind]}
        (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _write_code_files(staging, model.kind)
        if model.training is not None:
            text = json.dumps(model.training, indent=2) + "\n"
            (staging / "training_args.json").write_text(text, encoding="utf-8")
        for path in used:
            (staging / "eval_results").mkdir(exist_ok=True)
            shutil.copyfile(path, staging / "eval_results" / path.name)
        card.save(staging / "README.md")
        (staging / ".gitattributes").write_text(GITATTRIBUTES, encoding="utf-8")
        _refuse_pickles(staging)

    write_atomically(output, write)
    return RepoPlan(Path(output), repo_id, "model")


def assemble_space_repo(
    folder: str | Path, output: str | Path, repo_id: str, contextmatch_model: str, jobbert_model: str
) -> RepoPlan:
    """Write the Space's repository contents into ``output``: its files (not the package marker or caches), and a
    README whose front matter is kept and lists the two models the Space serves (its variables)."""
    check_repo_id(repo_id)
    for flag, model_id in (("--contextmatch-model", contextmatch_model), ("--jobbert-model", jobbert_model)):
        if not model_id:
            raise PublishError(
                f"{flag} ORG/NAME is needed: the Space loads its models from the Hub (CONTEXTMATCH_MODEL and "
                "JOBBERT_MODEL), so say which ones; publish them first with `labor-encoders push model`"
            )
        check_repo_id(model_id, flag)
    folder = Path(folder)
    readme = folder / "README.md"
    if not folder.is_dir() or not readme.is_file():
        raise PublishError(f"{folder} is not a Space folder: it needs a README.md with the Space's front matter")
    if (folder / "config.json").is_file():
        raise PublishError(f"{folder} is a model folder; publish it with `labor-encoders push model`")
    card = render_space_card(readme, contextmatch_model, jobbert_model)
    if not (folder / card.data.app_file).is_file():
        raise PublishError(f"{folder} has no {card.data.app_file}, the app_file its README names")

    def write(staging: Path) -> None:
        shutil.copytree(folder, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*SPACE_LEFT_OUT))
        # the Market insights tab's engine, which imports nothing of the project (space/app.py: insights_module)
        shutil.copytree(INSIGHTS, staging / "insights", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        card.save(staging / "README.md")
        (staging / ".gitattributes").write_text(GITATTRIBUTES, encoding="utf-8")
        _refuse_pickles(staging)

    write_atomically(output, write)
    variables = dict(zip(SPACE_VARIABLES, (contextmatch_model, jobbert_model), strict=True))
    return RepoPlan(Path(output), repo_id, "space", variables, space_sdk=card.data.sdk)


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows it (weights are large), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _write_code_files(folder: Path, kind: str) -> None:
    """This project's current ``configuration_<kind>.py`` and ``modeling_<kind>.py`` and the files they import."""
    from labor_encoders import modeling

    from .build import sync_model_code

    code = Path(modeling.__file__).parent
    for name in (f"configuration_{kind}.py", f"modeling_{kind}.py"):
        shutil.copyfile(code / name, folder / name)
    build_logger = logging.getLogger(sync_model_code.__module__)
    level = build_logger.level
    build_logger.setLevel(logging.WARNING)  # its "updated the model code" note is about refreshing old folders
    try:
        sync_model_code(folder)  # adds the sibling files they import (encoder_utils.py)
    finally:
        build_logger.setLevel(level)


def _refuse_pickles(folder: Path) -> None:
    found = [p.name for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES]
    if found:
        raise PublishError(f"refusing to publish pickle files: {', '.join(found)}")


def hub_token(token: str | None = None) -> str:
    """The token to upload with; offline mode or no token is a :class:`PublishError` that says what to do, raised
    before anything is written or sent."""
    from huggingface_hub import constants, get_token

    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if offline or constants.is_offline_mode():
        raise PublishError(
            "the Hugging Face Hub is switched off here (HF_HUB_OFFLINE is set), so nothing can be uploaded; unset "
            "HF_HUB_OFFLINE on a machine that reaches huggingface.co, or use --dry-run to write the repository folder"
        )
    token = token or get_token()
    if not token:
        raise PublishError(f"no Hugging Face token: {LOGIN_HELP}; --dry-run works without one")
    return token


def assemble_adapter_repo(folder: str | Path, output: str | Path, repo_id: str) -> RepoPlan:
    """Write the repository of a LoRA adapter folder (PEFT's files, its ``record.json`` and a short card) into
    ``output``: what ``PeftModel.from_pretrained(backbone, repo_id)`` users load. The merged model folder is what
    ``push model`` publishes."""
    from .adapter import AdapterError, verify

    check_repo_id(repo_id)
    try:
        record = verify(folder)
    except AdapterError as error:
        raise PublishError(str(error)) from None
    config = json.loads((Path(folder) / "adapter_config.json").read_text(encoding="utf-8"))
    from labor_encoders.model_cards.folder import KNOWN_BASES

    base = config.get("base_model_name_or_path") or "all-mpnet-base-v2"
    base = KNOWN_BASES.get(Path(base).name, base)  # the training records the backbone's folder name
    scores = record.get("validation") or {}
    lines = [
        "---",
        "library_name: peft",
        f"base_model: {base}",
        "tags: [lora, skill-extraction, labor-market, esco]"
        if record.get("task") == "contextmatch"
        else "tags: [lora, job-titles, labor-market, esco]",
        "---",
        f"# {repo_id.split('/')[1]}",
        "",
        f"A LoRA adapter (rank {config.get('r')}, {', '.join(sorted(config.get('target_modules') or []))}) for "
        f"`{base}`, trained by labor-encoders ({record.get('task')}). Merge it and load the result with:",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModel",
        "",
        f'encoder = PeftModel.from_pretrained(AutoModel.from_pretrained("{base}"), "{repo_id}").merge_and_unload()',
        "```",
        "",
        f"Training: {record.get('steps')} steps, {record.get('seconds')} s; command: `{record.get('command', '')}`.",
    ]
    if scores:
        lines += ["", "| validation | value |", "|---|---|"]
        lines += [f"| {name} | {value:.4f} |" for name, value in sorted(scores.items())]

    def write(staging: Path) -> None:
        for name in (*record["files"], "record.json"):
            _link_or_copy(Path(folder) / name, staging / name)
        (staging / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (staging / ".gitattributes").write_text(GITATTRIBUTES, encoding="utf-8")
        _refuse_pickles(staging)

    write_atomically(output, write)
    return RepoPlan(Path(output), repo_id, "model")


def upload(
    plan: RepoPlan,
    *,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
    api=None,
) -> str:
    """Create the repository if needed and upload ``plan.folder`` as one commit (or a pull request); returns its URL.

    A failure before the commit leaves the repository as it was (the Hub applies a commit whole or not at all)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    token = hub_token(token)
    api = api or HfApi()
    message = commit_message or f"Upload {plan.repo_type} with labor-encoders"
    step = "create the repository"
    try:
        extra = {"space_sdk": plan.space_sdk} if plan.repo_type == "space" else {}
        api.create_repo(plan.repo_id, repo_type=plan.repo_type, private=private, exist_ok=True, token=token, **extra)
        if revision and not create_pr:
            step = f"create the branch {revision!r}"
            api.create_branch(plan.repo_id, branch=revision, repo_type=plan.repo_type, exist_ok=True, token=token)
        for key, value in plan.variables.items():
            step = f"set the Space variable {key}"
            api.add_space_variable(plan.repo_id, key, value, token=token)
        step = "upload the files"
        commit = api.upload_folder(
            repo_id=plan.repo_id,
            folder_path=plan.folder,
            repo_type=plan.repo_type,
            revision=revision,
            commit_message=message,
            create_pr=create_pr,
            token=token,
        )
    except HfHubHTTPError as error:
        status = getattr(error.response, "status_code", None)
        hint = f"; {LOGIN_HELP}" if status in (401, 403) else ""
        raise PublishError(
            f"the Hub refused to {step} for {plan.repo_id} ({error}){hint}; no commit was made"
        ) from None
    except (*_network_errors(), ValueError) as error:  # no route, DNS, TLS, timeouts, offline mode
        raise PublishError(
            f"could not reach the Hugging Face Hub to {step} for {plan.repo_id} ({type(error).__name__}: {error}); "
            "check your connection; no commit was made"
        ) from None
    return commit.pr_url or commit.commit_url


def _network_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a failed connection raises: ``OSError`` and the HTTP client's errors (huggingface_hub 1.x uses
    ``httpx``, 2.x ``httpx2``)."""
    errors: list[type[BaseException]] = [OSError]
    for name in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError, AttributeError):
            errors.append(__import__(name).HTTPError)
    return tuple(errors)


__all__ = [
    "CardError",
    "PublishError",
    "RepoPlan",
    "assemble_model_repo",
    "assemble_space_repo",
    "check_repo_id",
    "hub_token",
    "upload",
]
