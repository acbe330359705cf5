"""Links and special files anywhere the run writes (issue 26): `media/takes` or a job's own
media folder pointing outside, a FIFO as run.log or .reserve, a FIFO among the media files.
Each is refused at the start with exit 3 and one line, nothing written outside; the runner
runs as a process (a FIFO opened by mistake would block it for ever), against the simulator.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.safefiles import NotRegular
from tests.hostile.test_stops import ROOT
from tests.support.batch import KEY, Batch, MakeBatch, batch_factory
from tests.support.manifests import jobs_yaml

TIMEOUT = 60.0  # far above what a refused start takes; a blocked open never ends


@pytest.fixture
def make_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeBatch]:
    yield from batch_factory(tmp_path, monkeypatch)


@pytest.fixture
def done(make_batch: MakeBatch) -> Batch:
    batch = make_batch()
    batch.write(jobs_yaml(2))
    assert batch.run() == 0
    return batch


def _run(batch: Batch) -> tuple[int, str]:
    try:
        proc = subprocess.run(
            batch.command(),
            cwd=ROOT,
            env={**os.environ, "KIE_API_KEY": KEY},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("the run hung at its start") from None
    return proc.returncode, proc.stderr


@pytest.mark.parametrize("where", ["media/takes", "media/job-000"])
def test_a_media_subfolder_linked_outside_is_refused(
    done: Batch, tmp_path: Path, where: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (done.folder / where).symlink_to(outside, target_is_directory=True)
    code, err = _run(done)
    assert code == 3, err
    assert "is a symbolic link" in err and where in err
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("name", ["run.log", ".reserve", "media/job-001.mp4"])
def test_a_fifo_in_the_folder_is_refused_not_opened(done: Batch, name: str) -> None:
    path = done.folder / name
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    code, err = _run(done)
    assert code == 3, err
    assert "is a FIFO (named pipe)" in err


def test_a_fifo_as_run_log_is_never_opened_by_the_log(tmp_path: Path) -> None:
    """Even past the folder check (a swap in between), the log refuses a FIFO at once."""
    from pipeline.outputs.runlog import RunLog

    path = tmp_path / "run.log"
    os.mkfifo(path)
    outcome: list[BaseException | None] = []

    def open_log() -> None:
        try:
            RunLog(path).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=open_log, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    if thread.is_alive():  # blocked in open(): a reader lets it go, and the test fails
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        raise AssertionError("RunLog blocked opening a FIFO")
    assert isinstance(outcome[0], NotRegular) and "FIFO" in str(outcome[0])
