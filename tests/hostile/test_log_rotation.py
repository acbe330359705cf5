"""run.log is rotated (issue 27): a folder kept for months keeps a bounded log, and what
reads the log (the lost-state guard, rebuild-state) reads the rotated part too."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.outputs import runlog
from pipeline.outputs.runlog import RunLog
from pipeline.state.folder import log_files
from tests.support.batch import Batch, MakeBatch, batch_factory
from tests.support.manifests import jobs_yaml

HEADER = "=== run of manifest.yaml (3 jobs) against http://kie"


@pytest.fixture
def make_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeBatch]:
    yield from batch_factory(tmp_path, monkeypatch)


def test_the_log_rotates_past_its_limit_and_starts_with_the_header(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    lines = [f"2026-01-01T00:00:{n:02d}.000Z job-{n:03d} pending -> submitting" for n in range(40)]
    log = RunLog(path, limit=600)
    log.write(HEADER)
    for line in lines:
        log.write(line)
    log.close()
    rotated = tmp_path / "run.log.1"
    assert log_files(tmp_path) == [rotated, path]
    old, new = rotated.read_text().splitlines(), path.read_text().splitlines()
    assert new[0] == HEADER and old[0] == HEADER  # each part says which run it belongs to
    assert path.stat().st_size <= 600 and rotated.stat().st_size <= 600
    kept = [line for line in old + new if line != HEADER]
    assert kept == lines[-len(kept) :]  # the newest lines, in order, none cut
    # The next run's log starts where this one left off, and rotates the same way.
    again = RunLog(path, limit=600)
    again.write(HEADER.replace("3 jobs", "4 jobs"))
    again.close()
    assert path.read_text().splitlines()[-1].endswith("(4 jobs) against http://kie")


def test_a_log_that_cannot_rotate_keeps_logging(tmp_path: Path) -> None:
    (tmp_path / "run.log.1").mkdir()  # os.replace cannot put a file there
    log = RunLog(tmp_path / "run.log", limit=100)
    for n in range(10):
        log.write(f"line {n} " + "x" * 30)
    log.close()
    assert len((tmp_path / "run.log").read_text().splitlines()) == 10


def test_a_run_rotates_its_log(make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runlog, "LOG_LIMIT", 1500)
    batch = make_batch()
    batch.write(jobs_yaml(4))
    assert batch.run() == 0
    parts = log_files(batch.folder)
    assert [p.name for p in parts] == ["run.log.1", "run.log"]
    assert all(p.read_text().startswith("=== run of ") for p in parts)
    assert all(p.stat().st_size <= 1500 for p in parts)
    assert batch.run() == 0 and batch.stats()["creates"] == 4  # a rerun still resumes


def _split_log(folder: Path) -> None:
    """As if run.log had been rotated just after the creates: the submitted lines are in
    run.log.1 only, and run.log starts with the run's header."""
    lines = (folder / "run.log").read_text().splitlines(keepends=True)
    cut = max(i for i, line in enumerate(lines) if "-> submitted task=" in line) + 1
    (folder / "run.log.1").write_text("".join(lines[:cut]))
    (folder / "run.log").write_text(lines[0] + "".join(lines[cut:]))


def _lose_state_and_ledger(folder: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (folder / f"state.sqlite{suffix}").unlink(missing_ok=True)
    (folder / "ledger.jsonl").write_text("")
    (folder / "ledger.csv").write_text("")  # the guard and rebuild read the CSV too


def _run(batch: Batch) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(batch.args())
    return code, err.getvalue()


def test_the_guard_and_rebuild_read_the_rotated_log(make_batch: MakeBatch) -> None:
    batch = make_batch()
    batch.write(jobs_yaml(2))
    assert batch.run("--no-download") == 0
    _split_log(batch.folder)
    _lose_state_and_ledger(batch.folder)
    code, err = _run(batch)
    assert code == 3 and "run.log.1 records a submitted task" in err
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["rebuild-state", str(batch.manifest), "--out", str(batch.folder)]) == 0
    assert "2 from run.log only" in out.getvalue()
    assert batch.run() == 0 and batch.stats()["creates"] == 2  # tracked, not created again


def test_rebuild_takes_each_jobs_last_ledger_line(make_batch: MakeBatch) -> None:
    """During a run the ledger is a journal: a job may have several lines, the last one
    current (outputs.live). A rebuild from such a ledger restores each task once."""
    batch = make_batch()
    batch.write(jobs_yaml(2))
    assert batch.run() == 0
    lines = (batch.folder / "ledger.jsonl").read_text().splitlines(keepends=True)
    stale = lines[0].replace('"succeeded"', '"running"')
    journal = stale + lines[1] + lines[0] + lines[0][:40]  # and a line cut by a crash
    (batch.folder / "ledger.jsonl").write_text(journal)
    for suffix in ("", "-wal", "-shm"):
        (batch.folder / f"state.sqlite{suffix}").unlink(missing_ok=True)
    assert main(["rebuild-state", str(batch.manifest), "--out", str(batch.folder)]) == 0
    assert batch.run() == 0
    assert batch.stats()["creates"] == 2
    assert all(row["status"] == "succeeded" for row in batch.rows())
