"""Helpers for the reliability tests: spawn and kill the runner, and audit an output folder
against the simulator's own books (what it created, for which fingerprint, whose answer it
lost)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipeline.engine.planner import PlanOptions, decide
from pipeline.manifest import Manifest, load_manifest
from pipeline.results.download import part_path
from pipeline.simulator import Simulator
from pipeline.state.store import Attempt, StateStore

ROOT = Path(__file__).resolve().parents[2]
MEDIA = ROOT / "pipeline" / "simulator" / "media"
FINAL = frozenset({"succeeded", "failed"})
OUTPUT_FILES = frozenset(
    {
        "state.sqlite",
        "state.sqlite-wal",
        "state.sqlite-shm",
        ".lock",
        ".reserve",  # room kept for recording task ids on a full disk (diskguard)
        "ledger.jsonl",
        "ledger.csv",
        "run.log",
        "index.html",
        "media",
    }
)


def video(aspect_ratio: str) -> bytes:
    """The bytes the simulator serves for a task of this aspect ratio."""
    return (
        MEDIA / ("portrait.mp4" if aspect_ratio == "portrait" else "landscape.mp4")
    ).read_bytes()


def spawn(command: list[str], key: str, **kwargs: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "KIE_API_KEY": key, "PYTHONFAULTHANDLER": "0"}
    env.pop("KIE_BASE_URL", None)
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def run_to_end(
    command: list[str], key: str, timeout: float = 240.0, **kwargs: Any
) -> tuple[int, str, str]:
    proc = spawn(command, key, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the runner did not finish in {timeout} s:\n{err}") from None
    return proc.returncode, out, err


def left_pending(folder: Path) -> bool:
    """Whether the ledger shows a job left for the next run: a job whose creates met
    `policy.AMBIGUOUS` ambiguous answers in one run waits there, flagged (issue 26)."""
    ledger = folder / "ledger.jsonl"
    if not ledger.is_file():
        return False
    return any(json.loads(line)["status"] == "pending" for line in ledger.open())


def assert_no_traceback(text: str) -> None:
    for marker in (
        "Traceback (most recent call last)",
        "exception was never retrieved",
        "Exception ignored",
        "Task was destroyed",
    ):
        assert marker not in text, text


def read_state(folder: Path) -> dict[str, list[Attempt]]:
    with StateStore.open(folder / "state.sqlite", readonly=True) as store:
        return store.attempts_by_job()


def integrity(folder: Path) -> str:
    conn = sqlite3.connect(folder / "state.sqlite")
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def stored_task_ids(state: dict[str, list[Attempt]]) -> dict[str, tuple[str, str]]:
    """task id -> (job id, fingerprint) of every task the state holds."""
    return {
        a.task_id: (a.job_id, a.fingerprint) for rows in state.values() for a in rows if a.task_id
    }


def intent_fingerprints(state: dict[str, list[Attempt]]) -> list[str]:
    """Fingerprints with a submission in flight (intent committed, no task id yet)."""
    return [a.fingerprint for rows in state.values() for a in rows if a.phase == "intent"]


@dataclass
class Audit:
    """What an output folder says, checked against the simulator. Every figure is exact."""

    jobs: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    creates: int = 0
    attempts: int = 0
    duplicates: int = 0  # creates beyond the job's attempts
    flagged_duplicates: int = 0  # ... on a job flagged possible_duplicate
    unflagged_duplicates: int = 0
    duplicates_from_lost_answers: int = 0
    duplicates_from_kills: int = 0
    flagged_jobs: int = 0
    lost_answers: int = 0
    files: int = 0
    partial_files: int = 0

    def figures(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in vars(self).items())


def audit(
    sim: Simulator,
    folder: Path,
    manifest: Manifest | Path,
    *,
    kill_windows: Counter[str] | None = None,
    final: Iterable[str] = FINAL,
    download: bool = True,
) -> Audit:
    """Check the invariants of a finished batch; raise AssertionError naming the first
    violation.

    A create that the simulator saw but the state cannot hold is legitimate in exactly two
    cases: its answer was lost (the simulator marks the task `lost_answer`), or the runner
    was killed after sending it and before committing the task id (the state then holds an
    intent for that fingerprint at the kill: `kill_windows` counts those, and one kill
    leaves at most one such create, as creates are sent one at a time). Either way the job
    must be flagged possible_duplicate.
    """
    if isinstance(manifest, Path):
        manifest = load_manifest(manifest)
    kill_windows = kill_windows or Counter()
    assert integrity(folder) == "ok"
    state = read_state(folder)
    stored = stored_task_ids(state)
    tasks = sim.tasks()
    by_id = {t["taskId"]: t for t in tasks}
    stats = sim.stats()
    result = Audit(jobs=len(manifest.jobs), lost_answers=stats["lost_answers"])
    # No task id in the state that the simulator did not create, for that fingerprint.
    for task_id, (job_id, fp) in stored.items():
        assert task_id in by_id, f"{job_id}: task {task_id} unknown to the simulator"
        assert by_id[task_id]["fingerprint"] == fp, f"{job_id}: task {task_id} fingerprint"
    tasks_by_fp: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        tasks_by_fp.setdefault(task["fingerprint"], []).append(task)
    for fp, count in stats["creates_by_fingerprint"].items():
        assert count == len(tasks_by_fp.get(fp, ())), "simulator books disagree"
    settings = manifest.settings
    final = frozenset(final)
    videos = folder / "media"
    expected_files: set[str] = set()
    partial_ok: dict[str, bytes] = {}
    ledger = {}
    if (folder / "ledger.jsonl").exists():
        for line in (folder / "ledger.jsonl").read_text().splitlines():
            row = json.loads(line)
            ledger[row["id"]] = row
    for job in manifest.jobs:
        options = PlanOptions.of(settings.override(download=download))
        plan = decide(job, state.get(job.id, ()), options)
        status = plan.status
        result.statuses[status] += 1
        assert status in final, f"{job.id} ended {status}: {plan.latest}"
        # A job has at most one live submission, and only the latest attempt can be it.
        live = [a for a in plan.current if a.phase in ("intent", "submitted")]
        assert len(live) <= 1 and (not live or live[0] is plan.latest), (job.id, live)
        created = tasks_by_fp.get(job.fingerprint, [])
        ids = {a.task_id for a in plan.current if a.task_id}
        unstored = [t for t in created if t["taskId"] not in ids]
        # Every create the simulator saw for the job is in the state, or explained.
        extra = len(created) - plan.attempts
        intents = sum(1 for a in plan.current if a.phase == "intent" and not a.task_id)
        assert extra == len(unstored) - intents, (job.id, extra, len(unstored), intents)
        flagged = any(a.possible_duplicate for a in plan.current)
        result.creates += len(created)
        result.attempts += plan.attempts
        result.flagged_jobs += flagged
        if extra > 0:
            result.duplicates += extra
            if flagged:
                result.flagged_duplicates += extra
            else:
                result.unflagged_duplicates += extra
        lost = [t for t in unstored if t["lost_answer"]]
        unknown = len(unstored) - len(lost)
        result.duplicates_from_lost_answers += len(lost)
        result.duplicates_from_kills += unknown
        assert not unstored or flagged, f"{job.id}: unrecorded create(s) {unstored}, not flagged"
        assert unknown <= kill_windows[job.fingerprint], (
            f"{job.id}: {unknown} create(s) neither recorded, nor lost answers, nor explained "
            f"by a kill during a create ({kill_windows[job.fingerprint]} such kills)"
        )
        # Succeeded means a verified file (downloads on).
        latest = plan.latest
        expected = video(str(job.input.get("aspect_ratio", "landscape")))
        if download and status == "succeeded":
            first = latest.first if latest is not None else None
            assert first is not None and first.file == f"media/{job.id}.mp4", latest
            data = (folder / first.file).read_bytes()
            assert data == expected, f"{job.id}: {first.file} differs from the served video"
            assert first.sha256 == hashlib.sha256(data).hexdigest()
            assert first.bytes == len(data)
            expected_files.add(f"{job.id}.mp4")
        elif latest is not None and latest.task_id:
            part = part_path(folder / f"media/{job.id}", latest.task_id)
            partial_ok[part.name] = expected
        if ledger:
            row = ledger[job.id]
            assert row["status"] == status and row["attempts"] == plan.attempts, row
            assert row["possible_duplicate"] == flagged, row
    # Nothing half-written lies around (atomic writes leave no temp files behind).
    litter = sorted(p.name for p in folder.iterdir() if p.name not in OUTPUT_FILES)
    assert not litter, f"unexpected files in the output folder: {litter}"
    # No file in media/ is partial, foreign, or fails its checksum.
    if videos.exists():
        for path in videos.iterdir():
            if path.name == "takes":
                _audit_takes(folder, state)
            elif path.name in expected_files:
                result.files += 1
            elif path.name in partial_ok:
                result.partial_files += 1
                data = path.read_bytes()
                assert partial_ok[path.name].startswith(data), f"{path.name} is not a prefix"
            else:
                raise AssertionError(f"unexpected file in media/: {path.name}")
    return result


def _audit_takes(folder: Path, state: Mapping[str, Sequence[Attempt]]) -> None:
    """Every file under media/takes/ is a recorded result (of an earlier version: the
    current one's files are checked at their own names above), whole and unchanged."""
    recorded = {r.file: r for tries in state.values() for a in tries for r in a.results if r.file}
    for path in (folder / "media" / "takes").rglob("*"):
        if path.is_dir():
            continue
        rel = path.relative_to(folder).as_posix()
        assert rel in recorded, f"{rel}: a take the state does not know"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded[rel].sha256, rel


def settle(sim: Simulator) -> None:
    """Let the simulator finish requests a killed runner left behind."""
    last = -1
    while (count := sim.stats()["requests"]) != last:
        last = count
        time.sleep(0.05)


def kill_at_random(
    command: list[str], key: str, sim: Simulator, out: Path, *, kills: int, rng: random.Random
) -> dict[str, tuple[str, str]]:
    """Start the batch `kills` times, each SIGKILLed at a random moment; after each, a task
    id once stored is never lost (nor moved to another job). The task ids stored last."""
    killed = 0
    seen: dict[str, tuple[str, str]] = {}
    while killed < kills:
        proc = spawn(command, key)
        try:
            code = proc.wait(timeout=rng.uniform(0.3, 1.5))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            killed += 1
        else:
            _, err = proc.communicate()
            assert_no_traceback(err)
            pytest.fail(f"the batch finished (exit {code}) after {killed} kills")
        settle(sim)
        if (out / "state.sqlite").exists():
            stored = stored_task_ids(read_state(out))
            assert not {t for t, owner in seen.items() if stored.get(t) != owner}
            seen = stored
    return seen


def rerun_to_success(command: list[str], key: str, *, most: int = 5) -> int:
    """Run the batch to its end until it exits 0 (1 meanwhile: ambiguous creates may take a
    rerun); how many runs it took."""
    reruns = 0
    while True:
        reruns += 1
        code, _, err = run_to_end(command, key, timeout=300)
        assert_no_traceback(err)
        if code == 0:
            return reruns
        assert code == 1 and reruns < most, err
