"""The batch job on Ray Data: two model actors on this machine give exactly what one process gives."""

from __future__ import annotations

import json
import os

import pytest

from labor_encoders.batch.inputs import Columns
from labor_encoders.batch.runner import BatchJob, run_local
from tests.test_batch import annotator, make_ads, model_dirs, options, read_output, read_rejects, write_csv, write_jsonl

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")  # Ray's own settings, not this code's

__all__ = ["annotator", "model_dirs", "options"]  # the fixtures this module shares with tests/test_batch.py


@pytest.fixture(scope="module")
def local_ray():
    """Ray on this machine, small: two CPUs for the two actors, no dashboard."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray-ads")
    files = [write_csv(folder / "a.csv", make_ads(90)), write_jsonl(folder / "b.jsonl", make_ads(60, 90))]
    with files[1].open("a", encoding="utf-8") as handle:
        handle.write(
            '{"id": "empty", "text": ""}\nnot json\n'
            + json.dumps({"id": "last", "title": "nurse", "text": "sql"})
            + "\n"
        )
    return files


@pytest.mark.slow
def test_two_ray_workers_give_the_single_process_output_and_resume(local_ray, inputs, options, annotator, tmp_path):
    from labor_encoders.batch.ray_data import run_ray

    def job(name: str, **kwargs) -> BatchJob:
        return BatchJob(inputs, tmp_path / name, Columns(id="id"), options, part_size=40, write_csv=True, **kwargs)

    single = job("single")
    run_local(single, progress=False, annotator=annotator)
    distributed = job("ray")
    summary = run_ray(distributed, workers=2, progress=False)
    assert summary | {"seconds": 0, "ads_per_s": 0} == {
        "output": str(distributed.output),
        "ads": 151,
        "rejected": 2,
        "parts": 4,
        "complete": True,
        "records_this_run": 153,
        "seconds": 0,
        "ads_per_s": 0,
    }
    rows = read_output(distributed.output)
    assert len({(row["source"], row["row"]) for row in rows}) == 151
    assert rows == read_output(single.output)
    assert read_rejects(distributed.output) == read_rejects(single.output)
    assert [r["reason"] for r in read_rejects(distributed.output)] == ["empty_text", "bad_json"]
    for name in sorted(os.listdir(single.output / "csv")):  # the same rows in the same parts, in input order
        assert (distributed.output / "csv" / name).read_bytes() == (single.output / "csv" / name).read_bytes()

    resumed = job("resumed", limit=100)  # stops after 100 rows, as an interrupted run would
    assert run_ray(resumed, workers=2, progress=False)["complete"] is False
    resumed.limit = None
    assert run_ray(resumed, workers=2, progress=False)["records_this_run"] == 53
    assert read_output(resumed.output) == rows
    assert read_rejects(resumed.output) == read_rejects(single.output)
