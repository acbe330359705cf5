"""Hostile folders (issue 18): a lost state, links, damaged files, a full disk, a read-only
folder, a poisoned state row, server text with escape codes. Each runs the CLI in-process
against the simulator and edits the output folder between runs."""

from __future__ import annotations

import io
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli.main import main
from pipeline.engine import diskguard
from pipeline.engine import session as session_module
from pipeline.engine.timing import Timing
from pipeline.errors import StateError
from pipeline.outputs.live import LiveOutputs
from pipeline.outputs.runlog import RunLog
from pipeline.state.store import StateStore
from tests.support.batch import Batch, MakeBatch, batch_factory
from tests.support.manifests import jobs_yaml


@pytest.fixture
def make_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeBatch]:
    yield from batch_factory(tmp_path, monkeypatch)


@pytest.fixture
def done(make_batch: MakeBatch) -> Batch:
    """A batch of 3 jobs run to the end: every video downloaded."""
    batch = make_batch()
    batch.write(jobs_yaml(3))
    assert batch.run() == 0
    assert batch.stats()["creates"] == 3
    return batch


def _run(batch: Batch, *extra: str) -> tuple[int, str]:
    err = io.StringIO()
    import contextlib

    with contextlib.redirect_stderr(err):
        code = main(batch.args(*extra))
    return code, err.getvalue()


def _lose_state(folder: Path, how: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        (folder / f"state.sqlite{suffix}").unlink(missing_ok=True)
    if how == "emptied":
        (folder / "state.sqlite").write_bytes(b"")
    elif how == "foreign":
        conn = sqlite3.connect(folder / "state.sqlite")
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.commit()
        conn.close()


@pytest.mark.parametrize("how", ["deleted", "emptied", "foreign"])
def test_a_lost_state_is_refused_and_rebuilt_from_the_ledger(done: Batch, how: str) -> None:
    _lose_state(done.folder, how)
    code, err = _run(done)
    assert code == 3 and "rebuild-state" in err and "pay for those jobs again" in err
    assert done.stats()["creates"] == 3  # nothing sent
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        assert main(["rebuild-state", str(done.manifest), "--out", str(done.folder)]) == 0
    assert "3 task(s)" in out.getvalue()
    assert done.run() == 0
    assert done.stats()["creates"] == 3  # tracked, not re-created
    assert all(r["status"] == "succeeded" and r["file"] for r in done.rows())


def test_a_task_only_the_log_knows_is_tracked_after_a_rebuild(make_batch: MakeBatch) -> None:
    batch = make_batch()
    batch.write(jobs_yaml(2))
    assert batch.run("--no-download") == 0
    (batch.folder / "ledger.jsonl").write_text("")  # the ledger lost too: the log remains
    _lose_state(batch.folder, "deleted")
    assert _run(batch)[0] == 3
    assert main(["rebuild-state", str(batch.manifest), "--out", str(batch.folder)]) == 0
    assert batch.run() == 0 and batch.stats()["creates"] == 2


def test_a_rebuild_restores_every_result_of_a_task(make_batch: MakeBatch) -> None:
    """Four images of one task: all four are restored from the ledger's `outputs`, so the
    rerun neither creates nor downloads anything, and the ledger still lists four."""
    batch = make_batch()
    batch.write(
        "version: 1\njobs:\n  - id: poster\n    model: bytedance/seedream-v4-text-to-image\n"
        "    prompt: Four posters of a paper boat\n    max_images: 4\n"
    )
    assert batch.run() == 0
    before, stats = batch.rows(), batch.stats()
    _lose_state(batch.folder, "deleted")
    assert main(["rebuild-state", str(batch.manifest), "--out", str(batch.folder)]) == 0
    assert batch.run() == 0
    after = batch.stats()
    assert (after["creates"], after["file_downloads"]) == (
        stats["creates"],
        stats["file_downloads"],
    )
    (row,) = batch.rows()
    assert row["outputs"] == before[0]["outputs"] and len(row["outputs"]) == 4


def test_a_log_only_task_of_an_edited_job_is_not_taken_for_the_new_version(
    make_batch: MakeBatch,
) -> None:
    """The log says which version made each task: a job edited before the rebuild gets a
    new task, instead of the old version's result passing for the new one's."""
    batch = make_batch()
    batch.write(jobs_yaml(2))
    assert batch.run("--no-download") == 0
    (batch.folder / "ledger.jsonl").write_text("")  # the ledger lost too: the log remains
    _lose_state(batch.folder, "deleted")
    batch.write(jobs_yaml(2).replace("A paper boat number 0", "A paper kite number 0"))
    assert main(["rebuild-state", str(batch.manifest), "--out", str(batch.folder)]) == 0
    assert batch.run() == 0
    assert batch.stats()["creates"] == 3  # job-000's new version only; job-001 tracked
    rows = batch.ledger()
    prompts = {t["taskId"]: t["input"]["prompt"] for t in batch.sim.tasks()}
    assert prompts[rows["job-000"]["task_id"]] == "A paper kite number 0 on a pond"


@pytest.mark.parametrize("part", ["run.log", ".lock", "MEDIA", "MEDIA/job-000.mp4.x.part"])
def test_a_linked_part_of_the_folder_is_refused(done: Batch, part: str, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    target = outside / "target"
    media = Path(done.rows()[0]["file"]).parts[0]  # the media folder files are saved in
    part = part.replace("MEDIA", media)
    if part == media:
        (done.folder / media).rename(target)
    else:
        target.write_text("not yours\n")
        (done.folder / part).unlink(missing_ok=True)
    (done.folder / part).symlink_to(target)
    code, err = _run(done)
    assert code == 3 and "symbolic link" in err
    if part != media:
        assert target.read_text() == "not yours\n"


@pytest.mark.parametrize("damage", ["truncated", "emptied"])
def test_a_damaged_video_is_downloaded_again(done: Batch, damage: str) -> None:
    row = done.rows()[0]
    video = done.folder / row["file"]
    size = video.stat().st_size
    video.write_bytes(video.read_bytes()[: size // 2] if damage == "truncated" else b"")
    assert done.run() == 0
    assert video.stat().st_size == size == done.rows()[0]["bytes"]
    assert done.stats()["creates"] == 3


def test_a_state_row_pointing_outside_the_folder_is_refused(done: Batch) -> None:
    with StateStore.open(done.folder / "state.sqlite") as store, store.transaction():
        store.conn.execute("UPDATE results SET file = '../../etc/passwd' WHERE attempt_id = 1")
    code, err = _run(done)
    assert code == 3 and "outside the output folder" in err


def test_a_non_integer_schema_version_is_a_clear_state_error(done: Batch) -> None:
    with StateStore.open(done.folder / "state.sqlite") as store, store.transaction():
        store.conn.execute("UPDATE meta SET value = 'one' WHERE key = 'schema_version'")
    with pytest.raises(StateError, match="not a number"):
        StateStore.open(done.folder / "state.sqlite", readonly=True)
    code, err = _run(done)
    assert code == 3 and "Traceback" not in err


def test_status_and_dry_run_read_a_wal_state_they_cannot_open_in_place(
    done: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only folder cannot give a WAL database its -shm: opening it in place fails
    (the tests run as root, who may write anywhere, so that failure is made here)."""
    real = sqlite3.connect

    def connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if isinstance(database, str) and "mode=ro" in database:
            raise sqlite3.OperationalError("unable to open database file")
        connection: sqlite3.Connection = real(database, *args, **kwargs)
        return connection

    monkeypatch.setattr(sqlite3, "connect", connect)
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        assert main(["status", str(done.manifest), "--out", str(done.folder)]) == 0
        assert main([*done.args("--dry-run")]) == 0
    assert out.getvalue().count("succeeded") >= 3


def test_a_full_disk_while_recording_a_task_id_uses_the_reserve(
    make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = make_batch()
    batch.write(jobs_yaml(2))
    real = StateStore.record_task
    failed: list[str] = []

    def record_task(self: StateStore, attempt_id: int, task_id: str) -> Any:
        if not failed and (batch.folder / ".reserve").exists():
            failed.append(task_id)
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, attempt_id, task_id)

    monkeypatch.setattr(StateStore, "record_task", record_task)
    assert batch.run() == 0
    assert failed and batch.stats()["creates"] == 2
    assert failed[0] in {r["task_id"] for r in batch.rows()}


def test_a_task_id_the_full_disk_refuses_is_printed_and_the_run_ends(
    make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = make_batch()
    batch.write(jobs_yaml(2))

    def record_task(self: StateStore, attempt_id: int, task_id: str) -> Any:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(StateStore, "record_task", record_task)
    code, err = _run(batch)
    assert code == 3
    task_ids = {t["taskId"] for t in batch.sim.tasks()}
    assert task_ids and any(f"Kie task {t}" in err for t in task_ids)


def test_a_nearly_full_disk_sends_no_create(
    make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = make_batch()
    batch.write(jobs_yaml(2))
    monkeypatch.setattr(diskguard.DiskGuard, "has_room", lambda self: False)
    code, err = _run(batch)
    assert code == 3 and "nearly full" in err
    assert batch.stats()["creates"] == 0


def test_escape_codes_from_a_server_never_reach_the_log_raw(tmp_path: Path) -> None:
    mirror = io.StringIO()
    log = RunLog(tmp_path / "run.log", mirror=mirror)
    log.write("job failed: \x1b]0;pwned\x07\x1b[2J\x1b[31mred\r\nfake line")
    log.close()
    text = (tmp_path / "run.log").read_text()
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert text.count("\n") == 1 and "\\x1b" in text
    assert "\x1b" not in mirror.getvalue()


def test_the_ledger_is_rewritten_off_the_event_loop(
    make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = make_batch(scale=0.02)
    batch.write(jobs_yaml(6))
    threads: list[str] = []
    real, live = session_module.write_outputs, LiveOutputs.write  # type: ignore[attr-defined]

    def write_outputs(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args)

    def write(*args: Any) -> Any:  # the periodic writes, in proportion to what changed
        threads.append(threading.current_thread().name)
        return live(*args)

    monkeypatch.setattr(session_module, "write_outputs", write_outputs)
    monkeypatch.setattr(LiveOutputs, "write", write)
    monkeypatch.setattr(Timing, "of", _fast_outputs(Timing.of))
    assert batch.run() == 0
    main_thread = threading.main_thread().name
    assert threads[-1] == main_thread  # the final write, after the loop
    assert any(name != main_thread for name in threads[:-1])


def _fast_outputs(of: Any) -> Any:
    import dataclasses

    def timing(*args: Any, **kwargs: Any) -> Any:
        return dataclasses.replace(of(*args, **kwargs), outputs_every=0.01)

    return classmethod(lambda cls, *a, **k: timing(*a, **k))
