"""A folder of the first release (state schema 1, tests/fixtures/schema1, made by commit
70fdbfb on the simulator) under this one: read as it is, migrated in place on first write,
nothing lost, nothing paid or downloaded again."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pipeline.simulator
from pipeline.cli.main import main
from pipeline.errors import StateError
from pipeline.simulator import Simulator
from pipeline.state import schema as stateschema
from pipeline.state.store import StateStore

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "schema1"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the fixture: the manifest and its output folder, side by side."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "schema1"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def schema_version(folder: Path) -> int:
    with contextlib.closing(sqlite3.connect(folder / "state.sqlite")) as conn:
        (value,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(value)


def cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(args))
    return code, out.getvalue()


def old_ledger(folder: Path) -> dict[str, dict[str, Any]]:
    lines = (FIXTURE / "ledger.jsonl").read_text().splitlines()
    return {row["id"]: row for row in map(json.loads, lines)}


def test_status_and_dry_run_read_a_copy_and_leave_the_file_alone(folder: Path) -> None:
    before = digest(folder / "state.sqlite")
    code, text = cli("status", str(folder / "manifest.yaml"), "--out", str(folder), "--json")
    assert code == 0
    jobs = {job["id"]: job for job in json.loads(text)["jobs"]}
    old = old_ledger(folder)
    assert {j: (v["status"], v["task_id"]) for j, v in jobs.items()} == {
        j: (v["status"], v["task_id"]) for j, v in old.items()
    }
    assert [jobs[j]["outputs"] for j in ("boat", "kite", "refused")] == [1, 1, 0]
    assert jobs["boat"]["next"] == "none"  # videos/boat.mp4 counts as downloaded
    code, text = cli(str(folder / "manifest.yaml"), "--out", str(folder), "--dry-run")
    assert code == 0 and "Would submit 0 task(s)" in text
    assert digest(folder / "state.sqlite") == before and schema_version(folder) == 1


@contextlib.contextmanager
def watched_simulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Simulator]]:
    """The simulator that `--simulate` starts, kept for its books."""
    started: list[Simulator] = []
    real = pipeline.simulator.running_simulator

    @contextlib.contextmanager
    def running(config: Any) -> Iterator[Simulator]:
        with real(config) as sim:
            started.append(sim)
            yield sim

    monkeypatch.setattr(pipeline.simulator, "running_simulator", running)
    yield started


def test_a_rerun_migrates_in_place_and_neither_creates_nor_downloads(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    videos = {p.name: digest(p) for p in (folder / "videos").iterdir()}
    with watched_simulator(monkeypatch) as started:
        code, _ = cli(str(folder / "manifest.yaml"), "--simulate", "--out", str(folder), "--quiet")
    assert code == 1  # the moderated job stays failed, as before
    (sim,) = started
    stats = sim.stats()
    assert (stats["creates"], stats["queries"], stats["file_downloads"]) == (0, 0, 0)
    assert schema_version(folder) == stateschema.SCHEMA_VERSION
    assert {p.name: digest(p) for p in (folder / "videos").iterdir()} == videos
    assert not (folder / "media").exists()
    # Every task id, outcome and file is kept; the old video is result 1 of its task.
    rows = {r["id"]: r for r in map(json.loads, (folder / "ledger.jsonl").read_text().splitlines())}
    for job_id, old in old_ledger(folder).items():
        row = rows[job_id]
        kept = ("status", "task_id", "file", "sha256", "bytes", "error_code", "error_message")
        assert {k: row[k] for k in kept} == {k: old[k] for k in kept}, job_id
        assert row["result_url"] == old["video_url"]
    assert rows["boat"]["media_type"] == "video/mp4" and len(rows["boat"]["outputs"]) == 1
    assert rows["refused"]["outputs"] == [] and rows["boat"]["credits"] is None
    with StateStore.open(folder / "state.sqlite", readonly=True) as store:
        history = store.attempts_by_job()
    assert history["kite"][0].first is not None
    assert history["kite"][0].first.file == "videos/kite.mp4"


def test_a_migration_that_fails_leaves_the_file_as_it_was(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = digest(folder / "state.sqlite")
    step = stateschema.MIGRATIONS[0][1]

    def broken(conn: sqlite3.Connection) -> None:
        step(conn)  # the whole step, then a failure
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(stateschema, "MIGRATIONS", ((2, broken),))
    with pytest.raises(StateError, match="disk I/O error"):
        StateStore.open(folder / "state.sqlite", "simulator")
    monkeypatch.undo()
    assert schema_version(folder) == 1
    with contextlib.closing(sqlite3.connect(folder / "state.sqlite")) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        rows = conn.execute("SELECT count(*), count(file) FROM attempts").fetchone()
    assert "results" not in tables and rows == (3, 2)
    with StateStore.open(folder / "state.sqlite", "simulator") as store:  # and it still works
        assert len(store.attempts_by_job()) == 3
    assert digest(folder / "state.sqlite") != before  # now migrated
