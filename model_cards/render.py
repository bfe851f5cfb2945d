"""Render model cards (and the Space's card) from the Jinja templates in ``model_cards/templates``.

The YAML front matter is a :class:`huggingface_hub.ModelCardData` (``library_name``, ``pipeline_tag``,
``base_model``, ``license``, ``datasets``, ``language``, ``tags`` and a ``model-index`` with every metric of the given
results files); the text comes from the folder's own metadata (:mod:`labor_encoders.model_cards.folder`) and those
results. With no
results the card says the model was not evaluated: it never states a number a runner did not write.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labor_encoders.evaluation.benchmarks import PUBLISHED as PUBLISHED_FIGURES

from .folder import KINDS, ModelFolder, looks_like_repo_id, read_model_folder
from .results import CardError, Evaluation, load_results

TEMPLATES = Path(__file__).parent / "templates"
PIPELINE_TAGS = {"contextmatch": "feature-extraction", "jobbert": "sentence-similarity"}
TAGS = {
    "contextmatch": ["skill-extraction", "esco", "extreme-multi-label-classification", "labor-market", "custom_code"],
    "jobbert": ["job-title-normalization", "esco", "sentence-embeddings", "labor-market", "custom_code"],
}
PAPER = "https://arxiv.org/abs/2505.24640"


def _published_rows() -> dict[str, list[tuple[str, str]]]:
    """The paper's test-split figures as card rows, from the one table of them (``evaluation.benchmarks``)."""
    figures = PUBLISHED_FIGURES

    def ranking(split: str) -> str:
        f = figures[split]
        return f"MRR {f['mrr']:.3f}, RP@5 {f['rp@5']:.2f}, RP@10 {f['rp@10']:.2f}"

    xl, titles = figures["skill-xl"], figures["job-normalization"]
    return {
        "contextmatch": [
            *((f"SkillSpan-ESCO {split.upper()} (test)", ranking(split)) for split in ("house", "tech", "techwolf")),
            ("Skill-XL (test)", f"F1 {xl['f1']:.4f}, redundancy {xl['redundancy'] * 100:.2f} %"),
        ],
        "jobbert": [
            (
                "JobBERT job titles (test)",
                f"MRR {titles['mrr']:.3f}, R@5 {titles['r@5']:.2f}, R@10 {titles['r@10']:.2f}",
            )
        ],
    }


# Published test-split figures of the paper's trained models (Decorte et al. 2025), for comparison only.
PUBLISHED = _published_rows()
_DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet", ".txt")


def environment():
    """The Jinja environment of the card templates (strict: a missing value is an error, not an empty string)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["thousands"] = lambda n: f"{n:,}" if isinstance(n, int) else n
    return env


def collect_evaluations(model: ModelFolder, results: Sequence[str | Path] = (), split: str | None = None):
    """Evaluations of the given results files, plus the folder's own ``calibration.json`` when it has one."""
    paths = [Path(p) for p in results]
    if model.calibration is not None and all(p.resolve() != model.calibration.resolve() for p in paths):
        paths.append(model.calibration)
    evaluations: list[Evaluation] = []
    for path in paths:
        evaluations += load_results(path, model.kind, split)
    return evaluations


def card_data(
    model: ModelFolder,
    repo_id: str,
    evaluations: Sequence[Evaluation],
    base_model: str | None = None,
    revision: str | None = None,
):
    """The card's YAML metadata, with one ``model-index`` result per (evaluation, metric); each result points at the
    results file it came from, which the repository carries in ``eval_results/``."""
    from huggingface_hub import EvalResult, ModelCardData

    files = f"https://huggingface.co/{repo_id}/blob/{revision or 'main'}/eval_results"

    eval_results = [
        EvalResult(
            task_type=e.task_type,
            task_name=e.task_name,
            dataset_type=e.dataset_id,
            dataset_name=e.dataset_name,
            dataset_split=e.split,
            metric_type=m.key,
            metric_name=m.name,
            metric_value=m.value,
            metric_config=m.config,
            metric_args=m.args,
            source_name=f"eval_results/{e.source}",
            source_url=f"{files}/{e.source}",
        )
        for e in evaluations
        for m in e.metrics
    ]
    return ModelCardData(
        model_name=repo_id if eval_results else None,  # the model-index's name
        library_name="transformers",
        pipeline_tag=PIPELINE_TAGS[model.kind],
        base_model=base_model or model.base_model,
        license="apache-2.0",
        language=["en"],
        datasets=training_datasets(model) or None,
        tags=TAGS[model.kind],
        eval_results=eval_results or None,
    )


def training_datasets(model: ModelFolder) -> list[str]:
    """Hub dataset ids the model was trained on (a local file or the offline ESCO set is named in the text only)."""
    data = (model.training or {}).get("arguments", {}).get("data")
    return [data] if hub_dataset(data) else []


def hub_dataset(data: Any) -> bool:
    """Whether a training ``--data`` value is a Hub dataset id (``org/name`` without a file suffix)."""
    return isinstance(data, str) and looks_like_repo_id(data) and not data.lower().endswith(_DATA_SUFFIXES)


def training_rows(model: ModelFolder) -> list[tuple[str, str]]:
    """(what, value) rows describing a training run from ``training_args.json``; empty for an untrained folder."""
    record = model.training
    if record is None:
        return []
    if record.get("script") == HEADS_SCRIPT:
        return heads_training_rows(model, record)
    args = record.get("arguments", {})
    rows = [("started from", f"`{args['model']}`" if args.get("model") else f"`{model.backbone}` (the default)")]
    rows.append(("data", _data_description(model.kind, args)))
    loss = "`ContextMatchInfoNCE`" if model.kind == "contextmatch" else "`JobBERTInfoNCE`"
    symmetric = ", symmetric (both directions)" if args.get("symmetric") else ""
    rows.append(("loss", f"{loss}: InfoNCE, in-batch negatives, scale {args.get('scale')}{symmetric}"))
    processes = record.get("processes", 1)
    batch = f"{args.get('batch_size')} pairs a process × {processes} process(es)"
    if args.get("mini_batch_size"):
        batch += f", gradient cache in chunks of {args['mini_batch_size']}"
    if (args.get("gradient_accumulation_steps") or 1) > 1:
        batch += f", {args['gradient_accumulation_steps']} accumulation steps"
    rows.append(("batch", batch))
    rows.append(("steps", f"{record.get('steps')} optimizer steps in {record.get('seconds')} s"))
    optimizer = f"{args.get('optimizer', 'adamw')}, learning rate {args.get('learning_rate')}, weight decay "
    optimizer += f"{args.get('weight_decay')}, warm-up {args.get('warmup_ratio')}, linear decay"
    rows.append(("optimizer", optimizer))
    if args.get("freeze_layers"):
        rows.append(("frozen", f"embeddings and the lower {args['freeze_layers']} encoder layers"))
    rows.append(("precision, seed", f"{args.get('mixed_precision', 'no')} mixed precision, seed {args.get('seed')}"))
    if record.get("loss") is not None:
        rows.append(("final loss", f"{record['loss']:.4f} (mean of the last logging interval)"))
    validation = record.get("validation") or {}
    if validation:
        sets = ", ".join(str(v) for v in _as_list(args.get("validation")))
        scores = ", ".join(f"{k} {v}" for k, v in validation.items())
        rows.append(("validation at the end", f"{scores}" + (f" (on {sets})" if sets else "")))
    return rows


HEADS_SCRIPT = "labor_encoders.training.train_jobbert_heads"


def heads_training_rows(model: ModelFolder, record: dict) -> list[tuple[str, str]]:
    """Rows for a JobBERT whose heads were trained on a frozen backbone
    (``labor_encoders.training.train_jobbert_heads``): the
    record's data, recipe, time and validation figures, and the command that reproduces it."""
    args = record.get("arguments", {})
    pairs = ", ".join(f"{n:,} {what.replace('_', ' ')}" for what, n in (record.get("pairs") or {}).items())
    rows = [("started from", f"`{model.backbone}`, frozen; only the title and skills heads trained")]
    rows.append(("data", f"{pairs} (sources: {args.get('sources')})"))
    rows.append(
        ("data files (sha256)", ", ".join(f"`{name}` {digest[:12]}" for name, digest in record["data"].items()))
    )
    rows.append(
        (
            "loss",
            f"InfoNCE, in-batch negatives, scale {args.get('scale')}, title-to-title weight {args.get('aux_weight')}",
        )
    )
    rows.append(
        (
            "batch, optimizer",
            f"{args.get('batch_size')} pairs, AdamW, learning rate {args.get('lr')}, seed {args.get('seed')}",
        )
    )
    seconds = record.get("seconds") or {}
    timing = f"{seconds.get('train')} s training, {seconds.get('encode')} s encoding ({record.get('hardware')})"
    rows.append(("steps", f"{record.get('steps')} steps, epoch {record.get('epoch')} kept; {timing}"))
    validation = record.get("validation") or {}
    for which in ("trained", "untrained"):
        scores = validation.get(which) or {}
        if scores:
            figures = f"MRR {scores['mrr']:.3f}, R@5 {scores['r@5']:.2f}, R@10 {scores['r@10']:.2f}"
            where = f"{validation.get('benchmark')}, {scores.get('n'):,} titles"
            rows.append((f"validation, {which} heads", f"{figures} ({where})"))
    skills = record.get("skills_head") or {}
    if skills.get("trained"):
        trained, untrained = skills["trained"], skills.get("untrained") or {}
        rows.append(("skills head", f"{skills.get('task')}: MRR {trained['mrr']:.3f}, R@10 {trained['r@10']:.2f} "
                     f"(untrained {untrained.get('mrr')}, {untrained.get('r@10')})"))  # fmt: skip
    rows.append(("command", f"`{record.get('command')}`"))
    return rows


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else ([] if value is None else [value])


def _data_description(kind: str, args: dict) -> str:
    data, limit = args.get("data"), args.get("limit")
    first = f", the first {limit} pairs" if limit else ""
    if not data and kind == "contextmatch":
        return (
            "the offline ESCO v1.2 set: each skill's alternative labels and the first two sentences of its "
            f"description, paired with its preferred label{first}"
        )
    if hub_dataset(data):
        return f"[{data}](https://huggingface.co/datasets/{data}) (split `{args.get('split', 'train')}`){first}"
    return f"a local file, `{data}` (not published with the model){first}"


def threshold_note(model: ModelFolder, evaluations: Sequence[Evaluation]) -> str:
    """Where the folder's τ comes from, as far as the given calibration results say."""
    calibration = next((e for e in evaluations if e.benchmark == "calibration"), None)
    recorded = (model.training or {}).get("calibration")
    if calibration is None and recorded and abs(recorded["tau"] - float(model.config.get("threshold", -1))) < 1e-6:
        after = recorded["after_filter"]
        return (
            f"calibrated: the best F1 after the redundancy filter ({after['f1']:.4f}) on "
            f"{', '.join(f'`{name}`' for name in recorded['data'])}, `{recorded['command']}`"
        )
    if calibration is None:
        return "no calibration record was given; `labor-encoders calibrate` sets τ on annotated validation data"
    best = calibration.metrics[0].args["threshold"]
    where = f"{calibration.dataset_name}" + (f", {calibration.split} split" if calibration.split else "")
    if abs(best - float(model.config.get("threshold", -1))) < 1e-6:
        return f"calibrated: the best F1 after the redundancy filter on {where}, `{calibration.source}`"
    return f"`{calibration.source}` found τ = {best:.2f} best on {where}; the config keeps its own value"


def render_model_card(
    folder: str | Path,
    repo_id: str,
    results: Sequence[str | Path] = (),
    *,
    revision: str | None = None,
    split: str | None = None,
    base_model: str | None = None,
):
    """The :class:`huggingface_hub.ModelCard` of a model folder, for ``repo_id``, from the given results files."""
    from huggingface_hub import ModelCard

    model = read_model_folder(folder)
    evaluations = collect_evaluations(model, results, split)
    data = card_data(model, repo_id, evaluations, base_model, revision)
    context = {
        "card_data": data.to_yaml(),
        "repo_id": repo_id,
        "revision": revision or "main",
        "name": KINDS[model.kind],
        "model": model,
        "config": model.config,
        "status": model.status,
        "taxonomy": model.config.get("taxonomy") or "a custom index",
        "training_rows": training_rows(model),
        "evaluations": evaluations,
        "calibration": next((e for e in evaluations if e.benchmark == "calibration"), None),
        "threshold_note": threshold_note(model, evaluations),
        "training_data": _data_description(model.kind, model.training["arguments"]) if model.training else None,
        "kind": model.kind,
        "backbone": model.backbone or f"an unnamed {model.config['encoder_config'].get('model_type', '')} encoder",
        "published": PUBLISHED[model.kind],
        "paper": PAPER,
    }
    text = environment().get_template(f"{model.kind}.md.j2").render(**context)
    return ModelCard(text)


def render_space_card(readme: str | Path, contextmatch_model: str, jobbert_model: str):
    """The Space's README: its own front matter (plus ``models:``) and text, and a section naming the two models."""
    from huggingface_hub import SpaceCard

    try:
        space = SpaceCard.load(readme)
    except (OSError, ValueError) as error:
        raise CardError(f"cannot read the Space card {readme} ({error})") from None
    if not space.data.sdk or not space.data.app_file:
        raise CardError(f"{readme}: the front matter needs sdk and app_file (it is not a Space README)")
    space.data.models = [contextmatch_model, jobbert_model]
    text = (
        environment()
        .get_template("space.md.j2")
        .render(
            card_data=space.data.to_yaml(),
            body=space.text.strip("\n"),
            contextmatch_model=contextmatch_model,
            jobbert_model=jobbert_model,
        )
    )
    return SpaceCard(text)
