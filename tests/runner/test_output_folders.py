"""Issue 17: output folders that cannot be mixed up, and --simulate's books kept in them."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.cli.requests import RunRequest
from pipeline.commands.run import simulator_config
from pipeline.simulator.persist import FILE_NAME as SIM_FILE
from pipeline.state.lock import FolderLock
from pipeline.state.store import StateStore, TaskIdConflict
from tests.support.batch import Batch
from tests.support.hostile import hostile, json_answer

ONE = """\
version: 1
settings:
  download: false
jobs:
  - id: hero
    model: seedream/5-lite-text-to-image
    prompt: {prompt}
"""


def _manifest(path: Path, prompt: str = "A lamp") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ONE.format(prompt=prompt))
    return path


def test_another_manifest_is_refused_with_exit_3_and_rebind_takes_the_folder_over(
    batch: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _manifest(batch.manifest.parent / "batches" / "summer.yaml")
    second = _manifest(batch.manifest.parent / "batches" / "2025" / "summer.yaml", "Other")
    out = str(batch.out)
    args = ["--base-url", batch.sim.base_url, "--out", out, "-q", "--time-scale", "0.005"]
    assert main([str(first), *args]) == 0
    assert main([str(second), *args]) == 3
    err = capsys.readouterr().err
    assert "belongs to the manifest" in err and "--out" in err and "--rebind" in err
    assert main(["status", str(second), "--out", out]) == 3  # status reads it neither
    assert batch.stats()["creates"] == 1
    # Moved on purpose: --rebind binds the folder to the new path; its jobs are kept.
    moved = first.rename(first.with_name("summer-final.yaml"))
    assert main([str(moved), *args]) == 3
    assert main([str(moved), *args, "--rebind"]) == 0
    assert batch.stats()["creates"] == 1
    with StateStore.open(batch.out / "state.sqlite", readonly=True) as store:
        assert store.meta("manifest") == "../batches/summer-final.yaml"


def test_a_folder_of_an_earlier_release_adopts_the_first_manifest(batch: Batch) -> None:
    manifest = _manifest(batch.manifest)
    with StateStore.open(batch.out / "state.sqlite", batch.sim.base_url) as store:
        assert store.meta("manifest") is None  # as an earlier release left it
    assert batch.run() == 0
    with StateStore.open(batch.out / "state.sqlite", readonly=True) as store:
        assert store.meta("manifest") == "../batch.yaml"  # relative to the folder
    assert manifest.parent / "out" == batch.out


def test_a_folder_bound_by_an_absolute_path_is_migrated_in_place(batch: Batch) -> None:
    manifest = _manifest(batch.manifest)
    assert batch.run() == 0
    state = batch.out / "state.sqlite"
    with sqlite3.connect(state) as conn:  # as a release before 2026-12 left it
        conn.execute("UPDATE meta SET value = ? WHERE key = 'manifest'", (str(manifest.resolve()),))
    conn.close()
    assert batch.run() == 0
    with StateStore.open(state, readonly=True) as store:
        assert store.meta("manifest") == "../batch.yaml"
    assert batch.stats()["creates"] == 1


def test_a_content_repo_copied_elsewhere_runs_with_no_create(
    batch: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = batch.manifest.parent / "repo"
    manifest = _manifest(repo / "campaigns" / "summer.yaml")
    args = ["--base-url", batch.sim.base_url, "-q", "--time-scale", "0.005"]
    assert main([str(manifest), *args, "--out", str(repo / "outputs" / "summer")]) == 0
    copy = batch.manifest.parent / "elsewhere" / "repo-copy"
    shutil.copytree(repo, copy)
    shutil.rmtree(repo)  # the old path is gone: nothing can lean on it
    moved = copy / "campaigns" / "summer.yaml"
    assert main([str(moved), *args, "--out", str(copy / "outputs" / "summer")]) == 0
    assert main(["status", str(moved), "--out", str(copy / "outputs" / "summer")]) == 0
    assert batch.stats()["creates"] == 1


def test_rebind_works_under_a_budget(batch: Batch, capsys: pytest.CaptureFixture[str]) -> None:
    first = batch.manifest.parent / "summer.yaml"
    first.write_text(
        ONE.format(prompt="A lamp").replace("settings:", "settings:\n  max_credits: 100")
    )
    args = [
        "--base-url",
        batch.sim.base_url,
        "--out",
        str(batch.out),
        "-q",
        "--time-scale",
        "0.005",
    ]
    assert main([str(first), *args]) == 0
    moved = first.rename(first.with_name("summer-final.yaml"))
    assert main([str(moved), *args]) == 3
    assert "--rebind" in capsys.readouterr().err
    assert main([str(moved), *args, "--dry-run", "--rebind"]) == 0
    assert main([str(moved), *args, "--rebind"]) == 0
    assert batch.stats()["creates"] == 1


def test_status_and_ledger_without_state_say_where_they_looked_and_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    manifest = _manifest(tmp_path / "summer.yaml")
    for command in ("status", "ledger"):
        assert main([command, str(manifest)]) == 3
        err = capsys.readouterr().err
        assert "no state file in outputs/summer" in err and "--simulate" in err
    assert not (tmp_path / "outputs").exists()


def test_ledger_does_not_rewrite_under_a_running_batch(
    batch: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    _manifest(batch.manifest)
    assert batch.run() == 0
    before = (batch.out / "ledger.jsonl").read_bytes()
    with FolderLock(batch.out):  # a batch running into the folder holds this
        assert main(["ledger", str(batch.manifest), "--out", str(batch.out)]) == 3
    assert "in use by another run" in capsys.readouterr().err
    assert (batch.out / "ledger.jsonl").read_bytes() == before


def test_simulate_takes_the_lock_before_starting_its_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path / "m.yaml")
    out = tmp_path / "out"
    with FolderLock(out):
        assert main([str(manifest), "--simulate", "--out", str(out), "-q"]) == 3
    assert "in use by another run" in capsys.readouterr().err
    assert not (out / SIM_FILE).exists()


def test_simulate_behaves_like_kie_today_and_keeps_its_books_in_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = simulator_config(RunRequest(Path("m.yaml"), out=tmp_path, simulate=True), 0.01)
    assert config.model_pauses and config.validation_500 and config.unknown_task_422
    assert config.state_dir == str(tmp_path)
    manifest = _manifest(tmp_path / "m.yaml")
    out = tmp_path / "out"
    run = [str(manifest), "--simulate", "--out", str(out), "-q", "--time-scale", "0.002"]
    assert main(run) == 0
    _manifest(manifest, "An edited lamp")
    assert main(run) == 0  # the edit: a new task, no UNIQUE error
    with sqlite3.connect(out / SIM_FILE) as db:
        assert db.execute("SELECT count(*) FROM tasks").fetchone()[0] == 2
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert rows[0]["attempts"] == 1 and not rows[0]["possible_duplicate"]


def test_simulate_credits_sets_the_simulated_balance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path / "m.yaml")
    out = tmp_path / "out"
    run = [str(manifest), "--simulate", "--out", str(out), "-q", "--time-scale", "0.002"]
    assert main([*run, "--credits", "3"]) == 3  # the 5-credit image is more than that
    assert "short of the 5" in capsys.readouterr().err
    assert main([*run, "--credits", "1000000"]) == 0
    assert main([str(manifest), "--credits", "5"]) == 2  # a real run has no such thing


def test_a_reused_task_id_is_a_clear_error_not_a_sqlite_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIE_API_KEY", "k")
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        ONE.format(prompt="A lamp")
        + "  - id: again\n    model: seedream/5-lite-text-to-image\n    prompt: Another\n"
    )
    same = json.dumps({"code": 200, "msg": "success", "data": {"taskId": "reused-id"}})
    with hostile(json_answer(same)) as server:
        out = tmp_path / "out"
        code = main([str(manifest), "--base-url", server.url, "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 3
    assert "reused a task id" in err and "UNIQUE" not in err
    with StateStore.open(out / "state.sqlite", readonly=True) as store:
        phases = sorted(a.phase for rows in store.attempts_by_job().values() for a in rows)
    assert phases == ["intent", "submitted"]  # the second is left ambiguous for a rerun


def test_task_id_conflict_names_both_jobs(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state.sqlite", "e") as store:
        one = store.record_intent("one", "f1", 1, "m")
        two = store.record_intent("two", "f2", 1, "m")
        store.record_task(one.id, "t-1")
        with pytest.raises(TaskIdConflict) as caught:
            store.record_task(two.id, "t-1")
    assert "job two" in str(caught.value) and "job one" in str(caught.value)
