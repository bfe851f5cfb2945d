"""WorkRB's tasks on our models: its own task classes, dataset structure and metric code, fed local files offline.

Online (``hub=True``) every task loads its data as WorkRB does (Hugging Face datasets, ESCO downloads). Offline the
tasks whose data is in a local folder (``../shared/data`` layout) are WorkRB's task classes with ``load_dataset``
reading those files. The grouping follows WorkRB's loaders line by line (group rows by sentence, keep labels in the
ESCO vocabulary, ``RankingDataset`` with its duplicate handling); the ESCO vocabulary comes from WorkRB's own
``ESCO`` manager over the official ESCO CSV download. Metrics are WorkRB's (``calculate_ranking_metrics``).

Each task goes to the model its input types call for: a task with job titles on either side to JobBERT, the others
(skill sentences and skill names) to ConTeXT-match.
"""

from __future__ import annotations

import ast
import json
import logging
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import workrb
from workrb.data.esco import ESCO
from workrb.registry import TaskRegistry
from workrb.tasks.abstract.ranking_base import DuplicateStrategy, RankingDataset, RankingTask
from workrb.types import DatasetSplit, Language, ModelInputType

from labor_encoders.evaluation.data import DataError

logger = logging.getLogger(__name__)

# WorkRB's ranking metrics reported for every task (its defaults are map, rp@10, mrr).
METRICS = ["mrr", "map", "rp@1", "rp@5", "rp@10", "recall@5", "recall@10", "hit@5", "hit@10", "ndcg@10"]
ESCO_SKILLS_ZIP = "esco-official/esco-v1.1.0-classification-en-csv.zip"
ESCO_RELATIONS_ZIP = "esco-official/esco-v1.1.0-relations-csv.zip"
VACANCIES = "it needs ESCO v1.2.0 skills and all of TechWolf/vacancy-job-to-skill (half is local)"


@dataclass(frozen=True)
class TaskSpec:
    """A WorkRB task by its short name: the WorkRB class, and the local files that can stand in for its data."""

    key: str
    workrb_class: str
    files: tuple[str, ...] = ()  # relative to the data folder; empty: no local data
    no_local: str = ""  # why it has no local data


TASKS = {
    spec.key: spec
    for spec in (
        TaskSpec("house", "HouseSkillExtractRanking", ("skillspan-esco/house_validation_annotations.csv",)),
        TaskSpec("tech", "TechSkillExtractRanking", ("skillspan-esco/tech_validation_annotations.csv",)),
        TaskSpec("skill-xl", "SkillXLSkillExtractRanking", ("skill-xl/development_a.csv",)),
        TaskSpec("skillskape", "SkillSkapeExtractRanking", ("skillskape/dev.csv",)),
        TaskSpec(
            "job-normalization",
            "JobBERTJobNormRanking",
            ("jobbert/titles.validation.csv", "esco/occupations_en.csv"),
        ),
        TaskSpec("techwolf", "TechWolfSkillExtractRanking", no_local="TechWolf/skill-extraction-techwolf is not local"),
        TaskSpec("melo", "MELORanking", no_local="Avature/MELO-Benchmark is not local"),
        TaskSpec("mels", "MELSRanking", no_local="Avature/MELS-Benchmark is not local"),
        TaskSpec("skill-similarity", "SkillMatch1kSkillSimilarityRanking", no_local="TechWolf/SkillMatch-1K"),
        TaskSpec("job-similarity", "JobTitleSimilarityRanking", no_local="Avature/Job-Title-Similarity is not local"),
        TaskSpec("skill-normalization", "ESCOSkillNormRanking", no_local="it needs ESCO v1.2.0 skills (not local)"),
        TaskSpec(
            "job2skill", "ESCOJob2SkillRanking", no_local="it needs ESCO v1.2.0 and TechWolf/vacancy-job-to-skill"
        ),
        TaskSpec(
            "skill2job", "ESCOSkill2JobRanking", no_local="it needs ESCO v1.2.0 and TechWolf/vacancy-job-to-skill"
        ),
    )
}
LOCAL_TASKS = [key for key, spec in TASKS.items() if spec.files]


# ------------------------------------------------------------------------------------------- local datasets
def esco_skill_vocabulary(data: str | Path, cache: str | Path | None = None) -> list[str]:
    """WorkRB's ESCO v1.1.0 skill vocabulary (``ESCO.get_skills_vocabulary``: sorted unique preferred labels,
    13,891) from the official CSV download in ``data/esco-official``, unpacked once into WorkRB's folder layout."""
    from ..assets import cache_dir

    data = Path(data)
    skills_zip, relations_zip = data / ESCO_SKILLS_ZIP, data / ESCO_RELATIONS_ZIP
    if not skills_zip.is_file():
        raise DataError(f"the ESCO v1.1.0 CSV download is not at {skills_zip} (or give --skill-labels FILE)")
    root = Path(cache) if cache is not None else cache_dir() / "workrb-esco"
    folder = root / "1.1.0" / Language.EN  # WorkRB's own expression (a folder named "Language.EN" on Python 3.11+)
    wanted = {"skills_en.csv": skills_zip, "occupations_en.csv": skills_zip}
    if not all((folder / name).is_file() for name in [*wanted, "occupationSkillRelations_en.csv"]):
        folder.mkdir(parents=True, exist_ok=True)
        for name, archive in wanted.items():
            with zipfile.ZipFile(archive) as z:
                (folder / name).write_bytes(z.read(name))
        relations = folder / "occupationSkillRelations_en.csv"
        if relations_zip.is_file():
            with zipfile.ZipFile(relations_zip) as z:
                relations.write_bytes(z.read("occupationSkillRelations.csv"))
        else:  # the vocabulary does not need the relations; WorkRB's manager only wants the file to exist
            relations.write_text("occupationUri,relationType,skillType,skillUri\n")
    esco = ESCO(version="1.1.0", language=Language.EN, data_dir=str(root), auto_download=False)
    return esco.get_skills_vocabulary()


def read_label_file(path: str | Path) -> list[str]:
    """A vocabulary file, one label a line (``skills_en_label.txt``: 13,896 ESCO v1.1.0 labels)."""
    from labor_encoders.evaluation.skillspan import read_labels

    if not Path(path).is_file():
        raise DataError(f"labels file not found: {path} (one skill label a line)")
    return read_labels(path)


def skill_extraction_dataset(
    rows: pd.DataFrame, label_column: str, vocabulary: Sequence[str], dataset_id: str = "en"
) -> RankingDataset:
    """WorkRB's skill-extraction dataset from (sentence, label) rows, as ``BaseESCOSkillExtractRanking`` builds it:
    group by sentence, keep the labels in the vocabulary, drop sentences left without one."""
    grouped = rows.groupby("sentence")[label_column].apply(list).reset_index()
    position = {skill: i for i, skill in enumerate(vocabulary)}
    queries, labels = [], []
    for query, skills in zip(grouped["sentence"], grouped[label_column], strict=True):
        kept = [position[skill] for skill in skills if skill in position]
        if kept:
            queries.append(query)
            labels.append(kept)
    return RankingDataset(
        query_texts=queries, target_indices=labels, target_space=list(vocabulary), dataset_id=dataset_id
    )


def skill_rows(spec: TaskSpec, data: Path) -> tuple[pd.DataFrame, str]:
    """The (sentence, label) rows of a local skill-extraction file and the label column's name."""
    path = data / spec.files[0]
    if spec.key == "skill-xl":  # WorkRB keeps the relevant rows only
        rows = pd.read_csv(path)
        return rows[rows["relevant"].astype(bool)].reset_index(drop=True), "skill"
    if spec.key == "skillskape":  # one row per sentence with a list literal: one row per (sentence, skill)
        rows = pd.read_csv(path)
        rows = rows.assign(label=rows["skills"].map(ast.literal_eval)).explode("label")
        return rows[["sentence", "label"]].dropna().reset_index(drop=True), "label"
    return pd.read_csv(path), "label"


def job_normalization_dataset(
    titles: str | Path,
    occupations: str | Path,
    merge_duplicate_queries: bool = True,
    every: int = 1,
    dataset_id: str = "en",
) -> RankingDataset:
    """WorkRB's job-normalisation dataset from the JobBERT titles CSV (``vacancyTitle``, ``conceptUri``) and the ESCO
    occupations CSV the benchmark uses: targets are the sorted unique preferred labels (``get_occupations_vocabulary``).

    ``merge_duplicate_queries`` is WorkRB's protocol (titles equal after stripping become one query with the union
    of their gold); ``False`` keeps every row, the paper's protocol. ``every`` keeps every n-th row (a quick check).
    """
    rows = pd.read_csv(titles)
    occupations_frame = pd.read_csv(occupations)
    label_of = dict(zip(occupations_frame["conceptUri"], occupations_frame["preferredLabel"], strict=True))
    vocabulary = sorted(occupations_frame["preferredLabel"].unique().tolist())
    rows = rows.iloc[::every]
    rows = rows.assign(label=rows["conceptUri"].map(label_of)).dropna(subset=["label"])
    position = {label: i for i, label in enumerate(vocabulary)}
    strategy = DuplicateStrategy.RESOLVE if merge_duplicate_queries else DuplicateStrategy.ALLOW
    return RankingDataset(
        query_texts=rows["vacancyTitle"].astype(str).tolist(),
        target_indices=[[position[label]] for label in rows["label"]],
        target_space=vocabulary,
        dataset_id=dataset_id,
        duplicate_query_strategy=strategy,
    )


def local_task(workrb_class: str, build: Callable[[], RankingDataset], source: str) -> RankingTask:
    """An instance of WorkRB's task class ``workrb_class`` (its name, input types and metric code) whose validation
    dataset is ``build()`` instead of a Hub download."""
    base = TaskRegistry.get(workrb_class)

    class LocalTask(base):
        def load_dataset(self, dataset_id: str, split: DatasetSplit) -> RankingDataset:
            return build()

        @property
        def description(self) -> str:
            return f"{super().description} (local data: {source})"

    LocalTask.__name__ = LocalTask.__qualname__ = f"Local{base.__name__}"
    return LocalTask(languages=["en"], split="val")


def build_local_task(
    spec: TaskSpec,
    data: Path,
    skill_labels: str | Path | None = None,
    merge_duplicate_queries: bool = True,
    every: int = 1,
) -> RankingTask:
    """WorkRB's task of ``spec`` on the local files of ``data``. Raises DataError when a file is missing."""
    missing = [name for name in spec.files if not (data / name).is_file()]
    if missing:
        raise DataError(f"missing local file(s) {', '.join(str(data / name) for name in missing)}")
    source = ", ".join(Path(name).name for name in spec.files)
    if spec.key == "job-normalization":
        titles, occupations = (data / name for name in spec.files)
        return local_task(
            spec.workrb_class,
            lambda: job_normalization_dataset(titles, occupations, merge_duplicate_queries, every),
            source,
        )
    if skill_labels is not None:
        vocabulary, source = read_label_file(skill_labels), f"{source}, {Path(skill_labels).name}"
    else:
        vocabulary, source = esco_skill_vocabulary(data), f"{source}, ESCO v1.1.0 skills_en.csv"
    rows, column = skill_rows(spec, data)
    return local_task(spec.workrb_class, lambda: skill_extraction_dataset(rows, column, vocabulary), source)


def model_kind(task: RankingTask) -> str:
    """``jobbert`` for a task with job titles on either side, ``contextmatch`` for skill sentences and names."""
    return "jobbert" if ModelInputType.JOB_TITLE in (task.query_input_type, task.target_input_type) else "contextmatch"


# ---------------------------------------------------------------------------------------------------- runner
def resolve_task_names(names: Sequence[str]) -> list[str]:
    """Short names (``house``, ``job-normalization``, ...), ``local`` (every task with local data) or WorkRB class
    names; raises DataError for an unknown one."""
    by_class = {spec.workrb_class: key for key, spec in TASKS.items()}
    keys: list[str] = []
    for name in names:
        if name == "local":
            keys += LOCAL_TASKS
        elif name in TASKS or name in by_class:
            keys.append(by_class.get(name, name))
        elif name in TaskRegistry.list_available():
            keys.append(name)
        else:
            raise DataError(f"unknown WorkRB task {name!r}; known: {', '.join(TASKS)}, local, or a WorkRB class name")
    return list(dict.fromkeys(keys))


def build_tasks(
    names: Sequence[str],
    data: str | Path | None = None,
    hub: bool = False,
    split: str = "val",
    skill_labels: str | Path | None = None,
    merge_duplicate_queries: bool = True,
) -> tuple[dict[str, RankingTask], dict[str, str]]:
    """The runnable tasks by short name, and why each of the others cannot run."""
    from labor_encoders.evaluation.benchmarks import SHARED

    data = Path(data) if data is not None else SHARED
    # WorkRB logs every merged duplicate query in one line (270 titles for job normalisation): keep the count only
    logging.getLogger("workrb.tasks.abstract.ranking_base").setLevel(logging.ERROR)
    tasks: dict[str, RankingTask] = {}
    skipped: dict[str, str] = {}
    for key in resolve_task_names(names):
        spec = TASKS.get(key)
        try:
            if hub:
                cls = TaskRegistry.get(spec.workrb_class if spec else key)
                tasks[key] = cls(languages=["en"], split=split)
            elif spec is None or not spec.files:
                reason = spec.no_local if spec else "no local data for this WorkRB task"
                skipped[key] = f"offline: {reason}; run with --hub where the Hugging Face Hub is reachable"
            elif split != "val":
                skipped[key] = "offline only the validation split is local (test splits are held back)"
            else:
                tasks[key] = build_local_task(spec, data, skill_labels, merge_duplicate_queries)
        except DataError as error:
            skipped[key] = str(error)
        except Exception as error:  # WorkRB's loaders raise whatever datasets / requests raise
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            skipped[key] = f"WorkRB could not load its data ({type(error).__name__}: {first})"
    return tasks, skipped


def run(
    tasks: dict[str, RankingTask],
    models: dict[str, workrb.models.ModelInterface | Callable[[], workrb.models.ModelInterface]],
    output: str | Path,
    metrics: Sequence[str] = METRICS,
) -> dict:
    """``workrb.evaluate`` of each model on its tasks (fresh, no resume), results under ``output/<model name>``.

    ``models`` maps ``contextmatch`` / ``jobbert`` to a WorkRB model or a function that builds one (called only if
    a task needs it). Returns ``{task key: {"task", "model", "queries", "targets", "metrics", "seconds"}}``.
    """
    output = Path(output)
    by_kind: dict[str, list[str]] = {}
    for key, task in tasks.items():
        by_kind.setdefault(model_kind(task), []).append(key)
    results = {}
    for kind, keys in by_kind.items():
        model = models[kind]
        model = model if isinstance(model, workrb.models.ModelInterface) else model()
        chosen = [tasks[key] for key in keys]
        started = time.perf_counter()
        benchmark = workrb.evaluate(
            model,
            chosen,
            output_folder=str(output / model.name),
            metrics={task.name: list(metrics) for task in chosen},
            force_restart=True,
        )
        seconds = time.perf_counter() - started
        for key, task in zip(keys, chosen, strict=True):
            (dataset_id,) = task.dataset_ids
            result = benchmark.task_results[task.name].datasetid_results[dataset_id]
            dataset = task.datasets[dataset_id]
            results[key] = {
                "task": task.name,
                "model": model.name,
                "queries": len(dataset.query_texts),
                "targets": len(dataset.target_space),
                "metrics": {name: round(float(value), 4) for name, value in result.metrics_dict.items()},
                "seconds": round(result.evaluation_time, 1),
            }
        logger.info("%s: %s in %.0f s", model.name, ", ".join(keys), seconds)
    return results


def markdown_table(results: dict, skipped: dict[str, str] | None = None) -> str:
    """One row per task with WorkRB's metrics as it reports them (fractions, not percent)."""
    lines = [
        "| task | model | queries × targets | MRR | MAP | RP@1 | RP@5 | RP@10 | R@5 | R@10 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in results.items():
        m = r["metrics"]
        cells = [f"{m[name]:.4f}" if name in m else "" for name in ("mrr", "map", "rp@1", "rp@5", "rp@10")]
        cells += [f"{m[name]:.4f}" if name in m else "" for name in ("recall@5", "recall@10")]
        lines.append(f"| {key} | {r['model']} | {r['queries']:,} × {r['targets']:,} | {' | '.join(cells)} |")
    for key, reason in (skipped or {}).items():
        lines.append(f"| {key} | not run: {reason} |" + " |" * 8)
    return "\n".join(lines) + "\n"


def write_results(results: dict, skipped: dict[str, str], output: str | Path, settings: dict) -> list[Path]:
    """``workrb.json`` (results, skipped tasks and the run's settings) and ``workrb.md`` in ``output``."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    payload = {"workrb_version": workrb_version(), **settings, "results": results, "skipped": skipped}
    json_path, md_path = output / "workrb.json", output / "workrb.md"
    json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown_table(results, skipped), encoding="utf-8")
    return [json_path, md_path]


def workrb_logs_to_stderr(level: int = logging.INFO) -> None:
    """WorkRB's loggers print to stdout (one handler per module logger); send them to stderr at ``level``, so that
    stdout holds only the results."""
    import sys

    names = [name for name in logging.root.manager.loggerDict if name == "workrb" or name.startswith("workrb.")]
    for name in names:
        log = logging.getLogger(name)
        for handler in log.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)
            handler.setLevel(max(handler.level, level))


def workrb_version() -> str:
    from importlib.metadata import version

    return version("workrb")
