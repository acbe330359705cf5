"""Environment faults: a full or read-only disk, a folder in use, a state file from the future.

Each gives a clear one-line error, exit 3 (or 1), never a traceback, and leaves a state file
that a later run resumes from without paying twice.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import StateError
from pipeline.state.store import SCHEMA_VERSION, StateStore
from tests.support.batch import Batch, MakeBatch
from tests.support.harness import (
    assert_no_traceback,
    audit,
    integrity,
    intent_fingerprints,
    read_state,
    run_to_end,
    spawn,
)
from tests.support.manifests import jobs_yaml

JOBS = 4
_real_open = Path.open


class _FailingWriter:
    """A file that takes `budget` more bytes, then fails like a full (or read-only) disk."""

    def __init__(self, handle: Any, budget: int, error: int) -> None:
        self.handle, self.budget, self.error = handle, budget, error

    def write(self, data: bytes) -> int:
        if len(data) > self.budget:
            self.handle.write(data[: self.budget])
            self.budget = 0
            raise OSError(self.error, os.strerror(self.error))
        self.budget -= len(data)
        return int(self.handle.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    def __enter__(self) -> _FailingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


@contextmanager
def failing_part_writes(
    monkeypatch: pytest.MonkeyPatch, *, budget: int, error: int
) -> Iterator[list[str]]:
    """Every video download fails with `error` after `budget` bytes (injected writer)."""
    hits: list[str] = []

    def open_(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = _real_open(self, mode, *args, **kwargs)
        if self.name.endswith(".part") and "a" in mode:
            hits.append(self.name)
            return _FailingWriter(handle, budget, error)
        return handle

    with monkeypatch.context() as patch:
        patch.setattr(Path, "open", open_)
        yield hits


def _check_resumes(batch: Batch, capsys: pytest.CaptureFixture[str]) -> None:
    """The state is sound, and a rerun on a healthy disk finishes without paying twice
    unflagged. (A failure between a create and the write of its task id leaves an intent,
    like a kill there: that one create may be repeated, flagged.)"""
    windows: Counter[str] = Counter()
    try:
        state = read_state(batch.out)
    except StateError:  # the first run could not even make it a state file
        assert batch.sim.stats()["creates"] == 0
    else:
        assert integrity(batch.out) == "ok"
        windows.update(intent_fingerprints(state))
    assert batch.run() == 0
    assert_no_traceback(capsys.readouterr().err)
    result = audit(batch.sim, batch.out, batch.manifest, kill_windows=windows)
    # An intent left behind means the create may or may not have been sent before the
    # failure (which one depends on when the failing write struck): each such intent allows
    # one create more, never more than that, and never an unflagged duplicate.
    assert JOBS <= result.creates <= JOBS + sum(windows.values())
    assert result.unflagged_duplicates == 0


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS, errno.EIO])
def test_disk_failing_mid_download(
    error: int,
    make_batch: MakeBatch,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch = make_batch()
    batch.write(jobs_yaml(JOBS))
    with failing_part_writes(monkeypatch, budget=10_000, error=error) as hits:
        code = batch.run()
    err = capsys.readouterr().err
    assert hits, "no download was attempted"
    assert code in (1, 3), err
    assert_no_traceback(err)
    assert os.strerror(error) in err and "media" in err, err
    _check_resumes(batch, capsys)


def test_state_file_failing_mid_run(
    make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk fills up under SQLite after some tasks were submitted: every later write
    fails. The run ends with a clear error (it must not hang or crash), and what was
    committed is intact."""
    batch = make_batch()
    batch.write(jobs_yaml(JOBS))
    real = StateStore.transaction
    commits = {"n": 0}

    def transaction(self: StateStore) -> Any:
        commits["n"] += 1
        if commits["n"] > 2 * JOBS + 2:  # schema, endpoint, intents and task ids go through
            raise sqlite3.OperationalError("database or disk is full")
        return real(self)

    with monkeypatch.context() as patch:
        patch.setattr(StateStore, "transaction", transaction)
        code = batch.run()
    err = capsys.readouterr().err
    assert code in (1, 3), err
    assert_no_traceback(err)
    assert "database or disk is full" in err and "state" in err, err
    _check_resumes(batch, capsys)


@pytest.mark.parametrize(
    "method",
    [
        "record_intent",
        "record_task",
        "record_success",
        "record_result_file",
        "holders",
        "record_progress",
    ],
)
def test_state_write_failing_at_each_step(
    method: str,
    make_batch: MakeBatch,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Whichever write fails (in the submit loop, a poll task, a download), the run ends with
    a clear error and never hangs."""
    batch = make_batch()
    batch.write(jobs_yaml(JOBS))

    def fail(self: StateStore, *args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(StateStore, method, fail)
        code = batch.run()
    err = capsys.readouterr().err
    assert code == 3, err
    assert_no_traceback(err)
    assert "could not be written: disk I/O error" in err, err
    _check_resumes(batch, capsys)


def test_read_only_output_folder_is_refused_clearly(
    make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = make_batch()
    batch.write(jobs_yaml(JOBS))
    folder = str(batch.out)
    real_open = os.open

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).startswith(folder) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", open_)
        code = batch.run()
    err = capsys.readouterr().err
    assert code == 3, err
    assert_no_traceback(err)
    assert "Read-only file system" in err and folder in err, err
    assert batch.sim.stats()["creates"] == 0
    _check_resumes(batch, capsys)


def _limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a core dump
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("limit", [20_000, 60_000])
def test_file_size_limit_of_the_os(
    limit: int, make_batch: MakeBatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real OS limit (RLIMIT_FSIZE, no root needed): any file of the run that grows past
    `limit` fails with EFBIG. At 20 kB SQLite cannot even make its 32 kB shared-memory file;
    at 60 kB the WAL of the state file fills up mid-run."""
    batch = make_batch()
    batch.write(jobs_yaml(JOBS))
    code, out, err = run_to_end(batch.command(), batch.key, preexec_fn=_limit_file_size(limit))
    assert code in (1, 3), err
    assert_no_traceback(out + err)
    assert "state.sqlite" in err and ("rerun" in err or "cannot be used" in err), err
    _check_resumes(batch, capsys)


def test_second_run_on_a_folder_in_use_is_refused(
    make_batch: MakeBatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first run lasts a few seconds (and no task times out).
    batch = make_batch(latency_median=400.0, latency_min=300.0, latency_max=500.0)
    batch.write(jobs_yaml(JOBS))
    first = spawn(batch.command(), batch.key)
    try:
        deadline = time.monotonic() + 30
        while not (batch.out / "state.sqlite").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.poll() is None, "the first run ended too soon"
        code, out, err = run_to_end(batch.command(), batch.key)
        assert first.poll() is None, "the first run ended too soon"
    finally:
        _, first_err = first.communicate(timeout=120)
    assert code == 3 and "in use by another run" in err, err
    assert_no_traceback(out + err)
    assert first.returncode == 0, first_err
    result = audit(batch.sim, batch.out, batch.manifest)
    assert result.creates == JOBS and result.duplicates == 0


def test_state_from_a_newer_version_is_refused(
    make_batch: MakeBatch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = make_batch()
    batch.write(jobs_yaml(JOBS))
    assert batch.run() == 0
    state = batch.out / "state.sqlite"
    conn = sqlite3.connect(state)
    with conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    before = conn.execute("SELECT * FROM attempts ORDER BY id").fetchall()
    conn.close()
    capsys.readouterr()
    for extra in ((), ("--dry-run",)):
        assert batch.run(*extra) == 3
        err = capsys.readouterr().err
        assert "newer run-pipeline" in err and f"schema {SCHEMA_VERSION + 1}" in err, err
        assert_no_traceback(err)
    from pipeline.cli.main import main

    assert main(["status", str(batch.manifest), "--out", str(batch.out)]) == 3
    assert "newer run-pipeline" in capsys.readouterr().err
    conn = sqlite3.connect(state)
    assert conn.execute("SELECT * FROM attempts ORDER BY id").fetchall() == before
    conn.close()
    assert batch.sim.stats()["creates"] == JOBS
