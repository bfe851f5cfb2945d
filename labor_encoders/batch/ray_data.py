"""The ``labor-encoders batch`` job on Ray Data: the same items, annotation and output, on many workers.

The pipeline::

    ray.data.from_items(one task per input file)          # (path, file index, records to skip on resume)
      .map_batches(read_file, batch_size=1)               # streams each file's items in blocks (a generator UDF)
      .limit(n)                                           # with --limit
      .map_batches(RayAnnotator, concurrency=N, num_gpus=g, batch_size=ADS_PER_CALL)   # the model actors
      .iter_batches()  -> BatchOutput on the driver       # in input order (preserve_order), parts + state

Each actor loads the models once in ``__init__`` (through :func:`load_extractor` and :func:`load_jobbert`, so
``--backend`` and Hub ids work as in one process) and calls :func:`labor_encoders.batch.runner.annotate`. Results come
back to the driver in input order and are written by the same :class:`BatchOutput` as the one-process engine:
the output is the same, and an interrupted run resumes the same way.

``ray.init()`` with no address starts Ray on this machine; ``address="ray://head:10001"`` or ``"auto"`` joins a
cluster, whose workers need this package installed and the input files and model folders at the same paths (a
shared file system), or Hub model ids. Ray is imported only here, when this engine runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..locking import output_lock
from .inputs import Columns, item_schema, read_items
from .runner import (
    ADS_PER_CALL,
    Annotator,
    BatchJob,
    ModelOptions,
    consume,
    default_device,
    open_output,
    output_schema,
    summary,
)

READ_BLOCK = ADS_PER_CALL  # items per block a read task hands on: small blocks spread over all the actors


def read_file(task, columns: dict[str, Any], fmt: str | None, max_chars: int) -> Iterator[Any]:
    """A read task: the items of one file (after ``skip`` records) as Arrow tables of at most :data:`READ_BLOCK`."""
    import pyarrow as pa

    (spec,) = task.to_pylist()
    columns = Columns(**columns)
    items = read_items(Path(spec["path"]), spec["file"], columns, fmt, max_chars, spec["skip"])
    block = []
    for item in items:
        block.append(item)
        if len(block) >= READ_BLOCK:
            yield pa.Table.from_pylist(block, schema=item_schema(columns))
            block = []
    if block:
        yield pa.Table.from_pylist(block, schema=item_schema(columns))


class RayAnnotator:
    """A Ray Data actor: the models loaded once, then :func:`annotate` on each batch of items."""

    def __init__(self, options: dict[str, Any], columns: dict[str, Any]) -> None:
        self.annotate = Annotator.load(ModelOptions(**options), device=default_device())
        self.schema = output_schema(with_item_fields=True, columns=Columns(**columns))

    def __call__(self, batch):
        import pyarrow as pa

        return pa.Table.from_pylist(self.annotate(batch.to_pylist()), schema=self.schema)


def run_ray(
    job: BatchJob,
    workers: int = 2,
    gpus_per_worker: float = 0.0,
    cpus_per_worker: float = 1.0,
    address: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    init_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``job`` on Ray Data with ``workers`` model actors; starts Ray here (or joins ``address``) if needed.

    The driver holds the output's lock (:func:`output_lock`) for the whole run."""
    with output_lock(job.output, "labor-encoders batch --engine ray"):
        return _run_ray(job, workers, gpus_per_worker, cpus_per_worker, address, overwrite, progress, init_kwargs)


def _run_ray(job, workers, gpus_per_worker, cpus_per_worker, address, overwrite, progress, init_kwargs):
    import warnings

    import ray

    # Ray guesses the annotator's inputs from the one block of file tasks; the read tasks then split them finely
    warnings.filterwarnings("ignore", message="The minimum number of concurrent actors", category=UserWarning)
    output, remaining = open_output(job, overwrite)
    if output.complete or remaining == 0:
        output.close(complete=output.complete)
        return summary(output, 0, 0.0)
    if not ray.is_initialized():
        ray.init(address=address, **(init_kwargs or {}))
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the output's parts and its resume position need input order
    context.enable_progress_bars = False  # the driver shows one bar over the ads, as in one process
    tasks = [{"path": str(path), "file": i, "skip": skip} for path, i, skip in job.tasks(output.position)]
    dataset = ray.data.from_items(tasks, override_num_blocks=len(tasks)).map_batches(
        read_file,
        batch_size=1,
        batch_format="pyarrow",
        fn_kwargs={"columns": asdict(job.columns), "fmt": job.format, "max_chars": job.max_chars},
        num_cpus=0,  # reading is light; the CPUs go to the model actors (no deadlock when they take all)
    )
    if remaining is not None:
        dataset = dataset.limit(remaining)
    dataset = dataset.map_batches(
        RayAnnotator,
        fn_constructor_kwargs={"options": asdict(job.options), "columns": asdict(job.columns)},
        batch_size=ADS_PER_CALL,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_gpus=gpus_per_worker,
        num_cpus=cpus_per_worker,
    )

    def results():
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            yield from batch.to_pylist()

    return consume(job, output, results(), remaining, progress)
