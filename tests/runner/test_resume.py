"""Resuming after a crash or an interrupt: nothing paid twice that could have been avoided."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipeline.state.store import StateStore
from tests.support.batch import KEY, SCALE, Batch
from tests.support.manifests import jobs_yaml

ROOT = Path(__file__).resolve().parents[2]


def _spawn(batch: Batch, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "KIE_API_KEY": KEY}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            str(batch.manifest),
            "--base-url",
            batch.sim.base_url,
            "--out",
            str(batch.folder),
            "--time-scale",
            str(SCALE),
            "--quiet",
            "--verbose",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_log(proc: subprocess.Popen[str], needle: str) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if needle in line:
            return
    raise AssertionError(f"the run ended before logging {needle!r}")


def test_intent_without_task_id_is_resubmitted_and_flagged(batch: Batch) -> None:
    """The process died between recording the intent and recording the task id."""
    batch.write(jobs_yaml(2))
    from pipeline.manifest import load_manifest

    job = load_manifest(batch.manifest).jobs[0]
    with StateStore.open(batch.folder / "state.sqlite", batch.sim.base_url) as store:
        store.record_intent(job.id, job.fingerprint, 1, job.model)
    assert batch.run() == 0
    rows = {r["id"]: r for r in batch.rows()}
    assert rows["job-000"]["possible_duplicate"] is True
    assert rows["job-000"]["attempts"] == 1
    assert rows["job-001"]["possible_duplicate"] is False
    assert batch.stats()["creates"] == 2


def test_on_ambiguous_skip_leaves_the_job_to_the_user(batch: Batch) -> None:
    batch.write(jobs_yaml(2))
    from pipeline.manifest import load_manifest

    job = load_manifest(batch.manifest).jobs[0]
    with StateStore.open(batch.folder / "state.sqlite", batch.sim.base_url) as store:
        store.record_intent(job.id, job.fingerprint, 1, job.model)
    assert batch.run("--on-ambiguous", "skip") == 1
    rows = {r["id"]: r for r in batch.rows()}
    assert rows["job-000"]["status"] == "pending"
    assert "may or may not" in rows["job-000"]["error_message"]
    assert batch.stats()["creates"] == 1


def test_sigint_stops_gracefully_with_130_and_a_rerun_resumes(batch: Batch) -> None:
    batch.write(jobs_yaml(8))
    proc = _spawn(batch)
    _wait_for_log(proc, "-> submitted")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Run the same command again to resume" in err
    assert (batch.folder / "ledger.jsonl").exists()
    assert batch.run() == 0
    rows = batch.rows()
    flagged = sum(r["possible_duplicate"] for r in rows)
    assert batch.stats()["creates"] == 8 + flagged and flagged == 0


def test_sigkill_at_several_points_never_pays_twice_unflagged(batch: Batch) -> None:
    batch.write(jobs_yaml(10))
    for needle in ("-> submitting", "-> submitted", "-> succeeded", "-> downloaded"):
        proc = _spawn(batch)
        try:
            _wait_for_log(proc, needle)
        except AssertionError:
            proc.wait(timeout=60)
            continue
        proc.kill()
        proc.wait(timeout=30)
        time.sleep(0.05)
    assert batch.run() == 0
    rows = batch.rows()
    creates = batch.stats()["creates_by_fingerprint"]
    for row in rows:
        extra = creates[row["fingerprint"]] - row["attempts"]
        assert extra == 0 or row["possible_duplicate"], row
    with StateStore.open(batch.folder / "state.sqlite", readonly=True) as store:
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {a.task_id for rows_ in store.attempts_by_job().values() for a in rows_}
    flagged = {r["fingerprint"] for r in rows if r["possible_duplicate"]}
    for task in batch.sim.tasks():
        # A task id can only be missing when the kill fell between Kie creating the task and
        # the state recording its id; that job was then resubmitted and flagged.
        assert task["taskId"] in stored or task["fingerprint"] in flagged, task
