"""One writer per output, and a batch run that meets a full disk or a read-only folder: the lock, the clear error,
the intact last commit and an exact resume. Real subprocesses, a real tmpfs where mounting one is allowed, and
faults injected at the writes."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from labor_encoders.batch import runner as batch
from labor_encoders.batch.inputs import Columns
from labor_encoders.batch.runner import BatchJob, OutputWriteError, run_local
from labor_encoders.cli import main
from labor_encoders.locking import OutputLocked, lock_path, output_lock
from tests import test_batch
from tests.test_batch import CLI, ENV, make_ads, read_output, read_rejects, write_csv, write_jsonl

model_dirs, options, annotator = test_batch.model_dirs, test_batch.options, test_batch.annotator  # fixtures


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread for the tiny models: on a busy 2-core machine more only make them slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def wait_for_parts(output: Path, process: subprocess.Popen, parts: int = 1, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if len(json.loads((output / "state.json").read_text())["parts"]) >= parts:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"no part was committed: {process.poll()}, {process.communicate() if process.poll() else ''}")


# ---------------------------------------------------------------------------------------------------------------
# The lock
# ---------------------------------------------------------------------------------------------------------------


def test_the_lock_names_its_holder_and_is_gone_after_release(tmp_path) -> None:
    folder = tmp_path / "out"
    with output_lock(folder, "writer one") as path:
        assert path == lock_path(folder) == tmp_path / ".out.lock" and not folder.exists()
        assert path.read_text().startswith(f"pid {os.getpid()}: writer one: ")
        same = tmp_path / "sub" / ".." / "out"  # the same folder, spelled otherwise
        expected = rf"^{same} is being written by another process \(pid {os.getpid()}: writer one: .*\.out\.lock\)$"
        with pytest.raises(OutputLocked, match=expected), output_lock(same, "writer two"):
            pass
        with output_lock(tmp_path / "other", "another folder"):
            pass
    assert not lock_path(folder).exists()
    lock_path(folder).write_text("pid 999999: a run that was killed\n")  # a stale note blocks nothing
    with output_lock(folder, "writer three") as path:
        assert "writer three" in path.read_text() and "killed" not in path.read_text()


def test_an_unwritable_parent_is_a_clear_error(tmp_path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    expected = r"cannot create the lock file .*\.out\.lock .*Permission denied.*writable"
    with pytest.raises(OutputLocked, match=expected), output_lock(tmp_path / "out", "x"):
        pass


@pytest.mark.parametrize(
    "argv",
    [
        ["build", "--output", "{out}"],
        ["build-jobbert", "--output", "{out}"],
        ["export-onnx", "{model}", "--output", "{out}"],
        ["train", "contextmatch", "--", "--output_dir", "{out}", "--data", "{out}/none.csv"],
    ],
    ids=lambda argv: argv[0],
)
def test_every_writer_refuses_a_locked_output_before_any_work(tmp_path, model_dirs, argv, capsys) -> None:
    out = tmp_path / "out"
    argv = [arg.format(out=out, model=model_dirs["model"]) for arg in argv]
    with output_lock(out, "someone else"):
        assert main(["-q", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out} is being written by another process (pid {os.getpid()}: someone else"), err
    assert not out.exists()


def test_batch_refuses_a_locked_output_in_process(tmp_path, options, annotator) -> None:
    source = write_csv(tmp_path / "ads.csv", make_ads(5))
    job = BatchJob([source], tmp_path / "out", options=options, part_size=2)
    with output_lock(job.output, "another batch"), pytest.raises(OutputLocked, match="another batch"):
        run_local(job, progress=False, annotator=annotator)
    assert not job.output.exists()  # refused before state.json was read or the folder made
    assert run_local(job, progress=False, annotator=annotator)["complete"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ads.csv", "out"]  # no lock file left beside it
    assert sorted(p.name for p in job.output.iterdir()) == ["parquet", "rejects.jsonl", "state.json"]


def test_the_ray_engine_takes_the_lock_before_starting_ray(tmp_path, options) -> None:
    from labor_encoders.batch.ray_data import run_ray

    job = BatchJob([write_csv(tmp_path / "ads.csv", make_ads(3))], tmp_path / "out", options=options)
    with output_lock(job.output, "another batch"), pytest.raises(OutputLocked, match="another batch"):
        run_ray(job, workers=1, progress=False)
    assert not job.output.exists()


@pytest.mark.slow
def test_two_real_batch_runs_on_one_output_and_a_killed_holder(tmp_path, model_dirs) -> None:
    """The second command stops at once naming the folder and the PID; SIGKILL frees the lock for the rerun."""
    source = write_csv(tmp_path / "ads.csv", make_ads(3000))
    output = tmp_path / "out"
    command = [*CLI, "-q", "batch", str(source), "--output", str(output), "--part-size", "10", "--no-titles",
               "--model", str(model_dirs["model"])]  # fmt: skip
    first = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_parts(output, first)
        started = time.monotonic()
        second = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=120)
        seconds = time.monotonic() - started
        assert first.poll() is None, "the first run ended before the second one started"
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    assert second.returncode == 2, second.stderr
    assert second.stderr.startswith(f"error: {output} is being written by another process (pid {first.pid}: "), (
        second.stderr
    )
    assert "labor-encoders batch" in second.stderr and "Traceback" not in second.stderr
    assert seconds < 30, f"the second run took {seconds:.1f} s to refuse (it must not load models first)"
    assert lock_path(output).is_file()  # the killed holder's note is left, its lock is not
    rerun = subprocess.run([*command, "--limit", "40"], env=ENV, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert not lock_path(output).exists()
    assert [row["row"] for row in read_output(output)] == list(range(1, len(read_output(output)) + 1))


# ---------------------------------------------------------------------------------------------------------------
# A full disk, a read-only folder
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def job_of(tmp_path_factory, options):
    """A job over 70 ads in two files (two rejects at the end), parts of 10 with CSV, into a given folder."""
    folder = tmp_path_factory.mktemp("inputs")
    files = [write_csv(folder / "a.csv", make_ads(30)), write_jsonl(folder / "b.jsonl", make_ads(40, 30))]
    (folder / "b.jsonl").write_text((folder / "b.jsonl").read_text() + "{broken\n" + json.dumps({"text": ""}))

    def job(output: Path) -> BatchJob:
        return BatchJob(files, output, Columns(id="id"), options, part_size=10, write_csv=True)

    return job


@pytest.fixture(scope="module")
def reference(job_of, tmp_path_factory, annotator) -> Path:
    """The output of an uninterrupted run."""
    job = job_of(tmp_path_factory.mktemp("reference") / "out")
    run_local(job, progress=False, annotator=annotator)
    return job.output


def assert_resumed_equals(output: Path, reference: Path) -> None:
    assert read_output(output) == read_output(reference)
    assert read_rejects(output) == read_rejects(reference)
    for sub in ("parquet", "csv"):
        assert sorted(os.listdir(output / sub)) == sorted(os.listdir(reference / sub))
        for name in os.listdir(output / sub):
            assert (output / sub / name).read_bytes() == (reference / sub / name).read_bytes() or sub == "parquet"


def assert_committed_state_is_consistent(output: Path) -> dict:
    if not (output / "state.json").exists():  # the very first commit failed: nothing was done
        state = {"parts": [], "complete": False, "rejects_bytes": 0}
    else:
        state = json.loads((output / "state.json").read_text())
    assert not state["complete"]
    assert sorted(p.stem for p in (output / "parquet").glob("*.parquet")) == state["parts"]
    assert not list(output.rglob(".tmp-*")), "a temporary file was left behind"
    if state["parts"]:
        assert (output / "rejects.jsonl").stat().st_size >= state["rejects_bytes"]
    return state


@pytest.mark.parametrize("failing_call", [1, 2, 3, 4, 5, 10])  # the start's state; a part, its CSV, rejects, state
def test_a_write_failing_with_enospc_stops_clearly_and_the_rerun_resumes_exactly(
    job_of, reference, tmp_path, annotator, monkeypatch, failing_call
) -> None:
    """Every fsync of the run in turn (rejects, parts, CSV, state) fails with ENOSPC: the run stops with the message,
    what was committed stays, and the same run again gives the reference output."""
    real_fsync, calls = os.fsync, 0

    def fsync(fd):
        nonlocal calls
        calls += 1
        if calls == failing_call:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    job = job_of(tmp_path / "out")
    monkeypatch.setattr(batch.os, "fsync", fsync)
    with pytest.raises(OutputWriteError) as caught:
        run_local(job, progress=False, annotator=annotator)
    monkeypatch.setattr(batch.os, "fsync", real_fsync)
    message = str(caught.value)
    assert message.startswith("no space left on device while writing "), message
    assert f" in {job.output}; the " in message and "committed part" in message
    assert message.endswith("are intact; free space and run the same command again to resume")
    state = assert_committed_state_is_consistent(job.output)
    assert f"the {len(state['parts'])} committed part" in message
    assert not lock_path(job.output).exists()
    assert run_local(job, progress=False, annotator=annotator)["complete"]
    assert_resumed_equals(job.output, reference)


@pytest.mark.parametrize(("code", "cause"), [(errno.EROFS, "the folder is read-only"), (errno.EIO, "Input/output")])
def test_a_part_writer_failing_mid_run_names_the_part_and_the_fix(
    job_of, reference, tmp_path, annotator, monkeypatch, code, cause
) -> None:
    real, calls = batch._write_parquet, 0

    def write_parquet(rows, path, *args):
        nonlocal calls
        calls += 1
        if calls == 3:
            path.write_bytes(b"half a part")
            raise OSError(code, os.strerror(code))
        return real(rows, path, *args)

    job = job_of(tmp_path / "out")
    monkeypatch.setattr(batch, "_write_parquet", write_parquet)
    with pytest.raises(
        OutputWriteError, match=rf"^{cause}.* while writing part-00002 in {job.output}; the 2 committed"
    ):
        run_local(job, progress=False, annotator=annotator)
    monkeypatch.setattr(batch, "_write_parquet", real)
    assert assert_committed_state_is_consistent(job.output)["parts"] == ["part-00000", "part-00001"]
    assert run_local(job, progress=False, annotator=annotator)["complete"]
    assert_resumed_equals(job.output, reference)


def test_the_cli_prints_the_write_error_with_exit_status_2(tmp_path, model_dirs, monkeypatch, capsys) -> None:
    source = write_csv(tmp_path / "ads.csv", make_ads(30))

    def no_space(rows, path, *args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(batch, "_write_parquet", no_space)
    argv = ["-q", "batch", str(source), "--output", str(tmp_path / "out"), "--part-size", "10", "--no-titles"]
    assert main([*argv, "--model", str(model_dirs["model"])]) == 2
    last = capsys.readouterr().err.splitlines()[-1]  # after the weights' progress bar
    assert last == (
        f"error: no space left on device while writing part-00000 in {tmp_path / 'out'}; the 0 committed parts and "
        "state.json are intact; free space and run the same command again to resume"
    )


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a real tmpfs at a folder (root only); yields a function (folder, size, read_only) and unmounts after."""
    mounted: list[Path] = []

    def mount(folder: Path, size: str = "1m", read_only: bool = False) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        flags = ["-o", f"size={size}" + (",ro" if read_only else "")]
        done = subprocess.run(["mount", "-t", "tmpfs", *flags, "tmpfs", str(folder)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); the injected faults "
                        "above cover the same code")  # fmt: skip
        mounted.append(folder)
        return folder

    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8); the injected faults above cover the same code")
    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


def remount(folder: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(folder)], check=True, capture_output=True)


def test_a_real_full_tmpfs_stops_the_run_and_freeing_space_resumes_it(
    job_of, reference, tmp_path, annotator, tmpfs
) -> None:
    """The output folder is on a small tmpfs, filled up by another file; the run stops at the part that does not fit;
    deleting the filler and running again gives the reference output."""
    disk = tmpfs(tmp_path / "disk", size="1m")
    output = disk / "out"
    page = 4096  # tmpfs counts whole pages
    part = sum(
        -(-max(p.stat().st_size for p in (reference / sub).iterdir()) // page) * page for sub in ("parquet", "csv")
    )
    room = 2 * part + 8 * page  # two parts, the state, the rejects, the lock note, the folders
    filler = disk / "filler"  # someone else's file on the same disk
    filler.write_bytes(b"\0" * (shutil.disk_usage(disk).free - room))
    assert room - page <= shutil.disk_usage(disk).free <= room + page
    job = job_of(output)
    expected = rf"^no space left on device while writing (part-\d+|state.json|rejects.jsonl) in {output}; the \d "
    with pytest.raises(OutputWriteError, match=expected + "committed parts? and state.json are intact; free space"):
        run_local(job, progress=False, annotator=annotator)
    state = assert_committed_state_is_consistent(output)
    assert 1 <= len(state["parts"]) < 6
    filler.unlink()
    assert run_local(job, progress=False, annotator=annotator)["complete"]
    assert_resumed_equals(output, reference)


def test_a_real_read_only_folder_is_refused_clearly_and_resumed_when_writable(
    job_of, reference, tmp_path, annotator, tmpfs
) -> None:
    """Half a run, then the folder turns read-only (a read-only remount: the kernel refuses one while a file is open
    for writing, so mid-part this is covered by the injected EROFS above); the run says so, and resumes once the
    folder is writable again. Root ignores chmod, hence the mount."""
    output = tmpfs(tmp_path / "out", size="4m")
    job = job_of(output)
    job.limit = 15
    assert not run_local(job, progress=False, annotator=annotator)["complete"]
    job.limit = None
    remount(output, "ro")
    try:
        expected = rf"^the folder is read-only \(Read-only file system\) while writing .* in {output}; the 2 committed"
        with pytest.raises(OutputWriteError, match=expected + " parts and state.json are intact; make it writable"):
            run_local(job, progress=False, annotator=annotator)
    finally:
        remount(output, "rw")
    assert run_local(job, progress=False, annotator=annotator)["complete"]
    assert read_output(output) == read_output(reference)  # parts of 10, 5 (the limit), 10, ...
    assert read_rejects(output) == read_rejects(reference)
