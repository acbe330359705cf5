"""A lost state is never silently replaced by an empty one (issue 26).

`rebuild-state` checks every ledger value before it writes anything and builds the new state
in a temporary file renamed at the end; the lost-state guard reads every trace of earlier
work (the CSV ledger, media files, earlier takes). Each test runs the CLI in-process against
the simulator and damages the output folder between runs."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.state.store import StateStore
from tests.support.batch import Batch, MakeBatch, batch_factory
from tests.support.manifests import jobs_yaml

JOBS = 3


@pytest.fixture
def make_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeBatch]:
    yield from batch_factory(tmp_path, monkeypatch)


@pytest.fixture
def done(make_batch: MakeBatch) -> Batch:
    """A batch run to the end, every result downloaded, its state then lost."""
    batch = make_batch()
    batch.write(jobs_yaml(JOBS))
    assert batch.run() == 0
    for suffix in ("", "-wal", "-shm"):
        (batch.folder / f"state.sqlite{suffix}").unlink(missing_ok=True)
    return batch


def _call(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


def _rebuild(batch: Batch) -> tuple[int, str]:
    # --base-url: run.log, which names the endpoint, may be gone too
    folder, url = str(batch.folder), batch.sim.base_url
    return _call("rebuild-state", str(batch.manifest), "--out", folder, "--base-url", url)


def _refused_run(batch: Batch) -> str:
    code, err = _call(*batch.args())
    assert code == 3 and "rebuild-state" in err, err
    assert batch.stats()["creates"] == JOBS  # nothing re-created
    return err


def _edit_ledger(batch: Batch, line: int, **values: object) -> None:
    path = batch.folder / "ledger.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    rows[line].update(values)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize(
    ("line", "values", "said"),
    [
        (1, {"bytes": 123456789012345678901234567890}, "bytes"),
        (2, {"attempts": 10**30}, "attempts"),
        (1, {"credits": 1e300}, "credits"),
        (0, {"task_id": "tab\there"}, "task id"),
        (0, {"file": "../../etc/passwd"}, "outside"),
        (0, {"outputs": [{"url": "u", "file": "/etc/passwd"}]}, "outside"),
    ],
)
def test_a_bad_ledger_value_refuses_the_rebuild_and_writes_nothing(
    done: Batch, line: int, values: dict[str, object], said: str
) -> None:
    _edit_ledger(done, line, **values)
    code, err = _rebuild(done)
    assert code == 3 and said in err and f"ledger.jsonl:{line + 1}" in err, err
    assert "nothing was rebuilt" in err
    assert not (done.folder / "state.sqlite").exists()
    assert not list(done.folder.glob(".state.sqlite.rebuild-*"))
    _refused_run(done)  # still refused: no empty state stands in for the lost one


def test_a_task_id_listed_twice_refuses_the_rebuild(done: Batch) -> None:
    first = done.rows()[0]["task_id"]
    _edit_ledger(done, 2, task_id=first)
    code, err = _rebuild(done)
    assert code == 3 and "listed for two jobs" in err and first in err
    assert not (done.folder / "state.sqlite").exists()
    _refused_run(done)


def test_a_rebuild_failing_halfway_leaves_the_folder_as_it_was(
    done: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(self: StateStore, rows: object) -> int:
        raise KeyboardInterrupt  # what a kill between create and fill did before

    with monkeypatch.context() as patched:
        patched.setattr(StateStore, "restore", killed)
        code, _ = _rebuild(done)
    assert code == 130
    assert not (done.folder / "state.sqlite").exists()
    assert not list(done.folder.glob(".state.sqlite.rebuild-*"))
    _refused_run(done)
    assert _rebuild(done)[0] == 0
    assert done.run() == 0 and done.stats()["creates"] == JOBS


def test_a_killed_rebuilds_leftover_is_not_a_state(done: Batch) -> None:
    """A SIGKILL leaves the temporary file (a dot-name, never the state's): the run is still
    refused, and the next rebuild clears it."""
    leftover = done.folder / ".state.sqlite.rebuild-99999"
    StateStore.open(leftover, "http://x").close()
    _refused_run(done)
    assert _rebuild(done)[0] == 0
    assert not leftover.exists()
    assert done.run() == 0 and done.stats()["creates"] == JOBS


def test_an_empty_valid_state_is_refused_when_the_ledger_shows_tasks(done: Batch) -> None:
    """What an interrupted rebuild of an older version left: a state with no attempt."""
    StateStore.open(done.folder / "state.sqlite", done.sim.base_url).close()
    err = _refused_run(done)
    assert "remembers no task" in err


def test_the_csv_ledger_and_media_alone_stop_a_rerun_and_rebuild_the_state(done: Batch) -> None:
    """state.sqlite, ledger.jsonl and run.log gone; ledger.csv and media/ left."""
    for name in ("ledger.jsonl", "run.log"):
        (done.folder / name).unlink()
    err = _refused_run(done)
    assert "ledger.csv lists task" in err
    code, _ = _rebuild(done)
    assert code == 0
    assert done.run() == 0
    assert done.stats()["creates"] == JOBS  # tracked, not re-created
    rows = done.rows()
    assert all(r["status"] == "succeeded" and r["file"] and r["creates"] == 1 for r in rows)


@pytest.mark.parametrize("where", ["media", "takes"])
def test_result_files_alone_stop_a_rerun(done: Batch, where: str) -> None:
    for name in ("ledger.jsonl", "ledger.csv", "run.log", "index.html"):
        (done.folder / name).unlink(missing_ok=True)
    media = done.folder / "media"
    if where == "takes":  # only an earlier take is left
        takes = media / "takes" / "job-000"
        takes.mkdir(parents=True)
        for file in media.glob("*.*"):
            file.rename(takes / file.name)
    err = _refused_run(done)
    assert "a result an earlier run downloaded" in err


def test_a_rebuilt_state_migrates_nothing_and_keeps_creates(done: Batch) -> None:
    """The ledger's `creates` goes back into the state, so the count survives a rebuild."""
    _edit_ledger(done, 0, creates=3, possible_duplicate=True)
    assert _rebuild(done)[0] == 0
    conn = sqlite3.connect(done.folder / "state.sqlite")
    creates = dict(conn.execute("SELECT job_id, creates FROM attempts").fetchall())
    conn.close()
    assert creates == {"job-000": 3, "job-001": 1, "job-002": 1}
