"""Crash test with local input files: SIGKILL the runner at random moments of an upload-heavy
batch over a faulty simulator, rerun until it finishes, and prove that every job ended, no
task was paid twice unflagged, every task got the picture its job names, and no file was
uploaded more often than lost answers and kills explain.

A kill during an upload (or between it and its record) costs one more upload of that file,
never a task: uploads come before the intent row, and their names are their content.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.engine.planner import PlanOptions, decide
from pipeline.errors import StateError
from pipeline.manifest import load_manifest
from pipeline.simulator import FaultRates, SimConfig, Simulator, running_simulator
from pipeline.state.store import StateStore
from tests.support.batch import runner_command
from tests.support.harness import (
    assert_no_traceback,
    integrity,
    left_pending,
    read_state,
    run_to_end,
    settle,
    spawn,
    stored_task_ids,
)

KEY = "crash-upload-key"
UPLOAD = "/api/file-stream-upload"
LOST = frozenset({"lost_answer", "malformed_json", "gateway_error", "deep_json", "gzip_bomb"})
# `slow` holds an answer back after its effect: a kill then lands between an upload (or a
# create) and the runner learning of it.
FAULTS = FaultRates(
    http_500=0.05,
    reset=0.05,
    lost_answer=0.05,
    slow=0.15,
    generation_failure=0.05,
    truncated_download=0.2,
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _manifest(folder: Path, jobs: int, files: int) -> Path:
    """`jobs` image-to-video jobs over `files` pictures, each picture used by several jobs;
    every picture a few KB. A low concurrency spreads the uploads over the whole batch (they
    run just ahead of the creates), so kills land before, during and after them."""
    (folder / "assets").mkdir()
    for i in range(files):
        (folder / f"assets/{i}.png").write_bytes(PNG + f"picture {i}".encode() * 400)
    lines = ["version: 1", "settings:", "  concurrency: 6", "jobs:"]
    for j in range(jobs):
        lines += [
            f"  - id: clip-{j:03d}",
            "    model: kling-2.6/image-to-video",
            f"    prompt: The camera circles product shot {j}",
            f"    image_urls: [{{file: assets/{j % files}.png}}]",
            "    sound: false",
        ]
    path = folder / "uploads.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _stored_uploads(out: Path) -> set[str]:
    try:
        with StateStore.open(out / "state.sqlite", readonly=True) as store:
            rows = store.conn.execute("SELECT sha256 FROM uploads").fetchall()
    except (StateError, sqlite3.Error):  # a state file still being created, or killed so
        return set()
    return {str(r[0]) for r in rows}


@dataclass
class Figures:
    kills: int = 0
    reruns: int = 0
    files: int = 0
    uploads: int = 0
    lost_upload_answers: int = 0
    kill_unrecorded_uploads: int = 0
    max_uploads_of_one_file: int = 0
    creates: int = 0
    flagged_duplicates: int = 0
    unflagged_duplicates: int = 0
    statuses: Counter[str] | None = None


def _audit_tasks(sim: Simulator, out: Path, manifest_path: Path, figures: Figures) -> None:
    """Tasks against jobs (by prompt: each job has its own), state against the simulator."""
    manifest = load_manifest(manifest_path)
    state = read_state(out)
    assert integrity(out) == "ok"
    by_prompt = {job.prompt: job for job in manifest.jobs}
    created: dict[str, list[Any]] = {}
    for task in list(sim.service.tasks.values()):
        job = by_prompt[task.body["input"]["prompt"]]
        created.setdefault(job.id, []).append(task)
    stored = stored_task_ids(state)
    figures.statuses = Counter()
    for job in manifest.jobs:
        plan = decide(job, state.get(job.id, ()), PlanOptions.of(manifest.settings))
        figures.statuses[plan.status] += 1
        assert plan.status in ("succeeded", "failed"), (job.id, plan)
        tasks = created.get(job.id, [])
        figures.creates += len(tasks)
        ids = {a.task_id for a in plan.current if a.task_id}
        unstored = [t for t in tasks if t.task_id not in ids]
        flagged = any(a.possible_duplicate for a in plan.current)
        assert not unstored or flagged, f"{job.id}: unrecorded creates, not flagged"
        extra = len(tasks) - plan.attempts
        if extra > 0:
            if flagged:
                figures.flagged_duplicates += extra
            else:
                figures.unflagged_duplicates += extra
        # Every task was sent the picture its job names, under its content's name.
        (ref,) = job.files
        for task in tasks:
            (url,) = task.body["input"]["image_urls"]
            assert url.endswith(f"/run-pipeline/{ref.sha256}.png"), (job.id, url)
        for task_id in ids:
            assert stored[task_id][0] == job.id


def crash_uploads(tmp_path: Path, *, kills: int, jobs: int, files: int, scale: float) -> Figures:
    config = SimConfig(
        api_keys=(KEY,),
        time_scale=scale,
        seed=11,
        faults=FAULTS,
        latency_median=120.0,
        latency_min=60.0,
        latency_max=300.0,
        slow_delay=10.0,
    )
    manifest = _manifest(tmp_path, jobs, files)
    out = tmp_path / "out"
    rng = random.Random(5)
    figures = Figures(files=files)
    with running_simulator(config) as sim:
        command = runner_command(manifest, sim.base_url, out, scale, "--upload-url", sim.base_url)
        seen: dict[str, tuple[str, str]] = {}
        logged = 0
        while figures.kills < kills:
            proc = spawn(command, KEY)
            try:
                code = proc.wait(timeout=rng.uniform(0.3, 1.5))
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.communicate()
                figures.kills += 1
            else:
                _, err = proc.communicate()
                assert_no_traceback(err)
                pytest.fail(f"the batch finished (exit {code}) after {figures.kills} kills")
            settle(sim)
            if not (out / "state.sqlite").exists():
                continue
            # Uploads this life made that the state does not know: the kill cost them.
            log = sim.service.uploads_view()
            recorded = _stored_uploads(out)
            figures.kill_unrecorded_uploads += len({e["sha256"] for e in log[logged:]} - recorded)
            logged = len(log)
            stored = stored_task_ids(read_state(out))
            assert not {t for t, owner in seen.items() if stored.get(t) != owner}
            seen = stored
        while True:
            figures.reruns += 1
            code, _, err = run_to_end(command, KEY)
            assert_no_traceback(err)
            if code in (0, 1) and not left_pending(out):
                break
            assert code != 3 and figures.reruns < 5, err
        _audit_tasks(sim, out, manifest, figures)
        log = sim.service.uploads_view()
        per_file = Counter(e["sha256"] for e in log)
        figures.uploads = len(log)
        figures.max_uploads_of_one_file = max(per_file.values())
        figures.lost_upload_answers = sum(
            1 for r in sim.requests() if r["path"] == UPLOAD and r["fault"] in LOST
        )
    expected = {
        hashlib.sha256((tmp_path / f"assets/{i}.png").read_bytes()).hexdigest()
        for i in range(files)
    }
    assert set(per_file) == expected  # every picture uploaded, nothing else
    # No file uploaded more than needed: once, plus once per lost answer or killed upload.
    extra = figures.uploads - files
    assert extra <= figures.lost_upload_answers + figures.kill_unrecorded_uploads, figures
    assert figures.unflagged_duplicates == 0, figures
    print(f"\ncrash uploads: {figures}")
    return figures


def test_crash_kills_uploads_reduced(tmp_path: Path) -> None:
    crash_uploads(tmp_path, kills=4, jobs=30, files=20, scale=0.015)


@pytest.mark.slow
def test_crash_kills_uploads_full(tmp_path: Path) -> None:
    kills = int(os.environ.get("CRASH_KILLS", "12"))
    crash_uploads(tmp_path, kills=kills, jobs=30, files=20, scale=0.004 * kills)


def _wait_for(condition: Any, what: str, timeout: float = 60.0) -> None:
    """Poll until `condition()` holds (a state reached, not a duration)."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"never reached: {what}"
        time.sleep(0.02)


def _killed_at(sim: Simulator, command: list[str], condition: Any, what: str) -> None:
    proc = spawn(command, KEY)
    try:
        _wait_for(lambda: condition() or proc.poll() is not None, what)
        assert proc.poll() is None, "the runner ended before the moment to kill it"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    settle(sim)


def _finish(command: list[str]) -> None:
    code, _, err = run_to_end(command, KEY)
    assert_no_traceback(err)
    assert code == 0, err


def test_kill_while_an_upload_is_answered(tmp_path: Path) -> None:
    """Killed after the host stored the files but before the runner heard back: nothing was
    recorded, no task exists, and the rerun uploads those files once more and no more."""
    scale = 0.005
    config = SimConfig(api_keys=(KEY,), time_scale=scale, seed=2, slow_delay=800.0)
    manifest = _manifest(tmp_path, jobs=6, files=3)
    out = tmp_path / "out"
    with running_simulator(config) as sim:
        sim.control(faults={"slow": 1.0})  # every answer held back 4 s
        command = runner_command(manifest, sim.base_url, out, scale, "--upload-url", sim.base_url)
        _killed_at(
            sim, command, lambda: len(sim.service.uploads_view()) >= 3, "the files are stored"
        )
        stored = {e["sha256"] for e in sim.service.uploads_view()}
        unrecorded = stored - _stored_uploads(out)
        assert unrecorded and not stored_task_ids(read_state(out))
        assert sim.stats()["creates"] == 0
        sim.control(faults={"slow": 0.0})
        _finish(command)
        per_file = Counter(e["sha256"] for e in sim.service.uploads_view())
        # Once more for each upload the kill left unrecorded, and no more.
        assert per_file == {sha: 1 + (sha in unrecorded) for sha in stored}
        assert sim.stats()["creates"] == 6
        figures = Figures(files=3)
        _audit_tasks(sim, out, manifest, figures)
    assert figures.statuses == {"succeeded": 6} and figures.unflagged_duplicates == 0


def test_kill_between_the_upload_and_the_create(tmp_path: Path) -> None:
    """Killed with every file uploaded and recorded while creates are refused (maintenance):
    the rerun reuses the uploads (still served) and creates each job once."""
    scale = 0.005
    config = SimConfig(api_keys=(KEY,), time_scale=scale, seed=3)
    manifest = _manifest(tmp_path, jobs=6, files=3)
    out = tmp_path / "out"
    with running_simulator(config) as sim:
        sim.control(maintenance=True)  # the API answers 455; the upload host still works
        command = runner_command(manifest, sim.base_url, out, scale, "--upload-url", sim.base_url)
        _killed_at(
            sim,
            command,
            lambda: (out / "state.sqlite").exists() and len(_stored_uploads(out)) == 3,
            "every upload recorded",
        )
        assert sim.stats()["creates"] == 0
        sim.control(maintenance=False)
        _finish(command)
        assert len(sim.service.uploads_view()) == 3  # reused, not uploaded again
        assert sim.stats()["creates"] == 6
        figures = Figures(files=3)
        _audit_tasks(sim, out, manifest, figures)
    assert figures.statuses == {"succeeded": 6} and figures.unflagged_duplicates == 0
