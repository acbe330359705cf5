"""The error funnel and the one planner, end to end against the simulator."""

from __future__ import annotations

import pytest

from pipeline.engine.tracker import Tracker
from tests.support.batch import Batch
from tests.support.manifests import jobs_yaml


def test_a_bug_exits_70_with_one_line_and_the_traceback_in_run_log(
    batch: Batch, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch.write(jobs_yaml(3))

    async def broken_poll(self: Tracker, active: object) -> None:
        raise RuntimeError("injected: a bug in polling")

    with monkeypatch.context() as patch:
        patch.setattr(Tracker, "_poll", broken_poll)
        assert batch.run() == 70
    err = capsys.readouterr().err
    # (The test manifest's Sora model is paused on Kie: validation warns about it.)
    lines = [line for line in err.splitlines() if line.strip() and ": warning: " not in line]
    assert len(lines) == 1, err
    assert "internal error (RuntimeError)" in lines[0] and "bug" in lines[0]
    assert str(batch.out / "run.log") in lines[0]
    log = (batch.out / "run.log").read_text()
    assert "Traceback (most recent call last)" in log and "injected: a bug in polling" in log
    # What was recorded before the bug is kept: a rerun tracks, it does not pay again.
    creates = batch.stats()["creates"]
    assert batch.run() == 0
    assert batch.stats()["creates"] == creates == 3


def test_a_bug_before_any_folder_exists_is_logged_to_a_temporary_file(
    batch: Batch, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.commands import validate

    batch.write(jobs_yaml(1))

    def broken(*args: object, **kwargs: object) -> int:
        raise KeyError("injected")

    monkeypatch.setattr(validate, "run", broken)
    from pipeline.cli.main import main

    assert main(["validate", str(batch.manifest)]) == 70
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "internal error (KeyError)" in line and "run-pipeline-crash-" in line


def test_dry_run_announces_exactly_the_creates_of_the_real_run(
    batch: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One planner: with failed jobs, `--dry-run --retry-failed` says what the run does."""
    batch.write(jobs_yaml(4))
    batch.control(faults={"generation_failure": 1.0})
    assert batch.run("--max-attempts", "1") == 1
    assert {r["status"] for r in batch.rows()} == {"failed"}
    batch.control(faults={"generation_failure": 0.0})
    capsys.readouterr()

    assert batch.run("--max-attempts", "1", "--dry-run") == 0
    assert "Would submit 0 task(s)" in capsys.readouterr().out
    assert batch.run("--max-attempts", "1", "--dry-run", "--retry-failed") == 0
    assert "Would submit 4 task(s)" in capsys.readouterr().out

    before = batch.stats()["creates"]
    assert batch.run("--max-attempts", "1", "--retry-failed") == 0
    assert batch.stats()["creates"] - before == 4
