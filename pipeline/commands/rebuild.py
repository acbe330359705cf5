"""`run-pipeline rebuild-state MANIFEST`: a new state file from the ledger and run.log.

For a folder whose state file was lost (deleted, emptied, replaced by another file) while its
ledger and log still show the tasks an earlier run made. Every job with a known task id gets
an attempt row as the ledger last saw it (succeeded, failed, timed out, or running), so the
next run tracks, downloads or retries it and never re-creates a task it already paid for. A
task id only the log knows (a create answered after the last ledger rewrite) is restored as
running, under the version of the job the log names (a run writes `version=` with each
`submitted`); the manifest's current version when the log is older than that. The old file,
if any, is kept beside as `state.sqlite.lost-<time>`.

The ledger is ledger.jsonl, or ledger.csv when the JSONL is gone (`state.restore`, which
checks every value first). The new state is built whole in a temporary file and renamed over
the old one at the end: a refused value or a kill on the way leaves the folder as it was,
never an empty state that looks valid (which would make the next run pay for every job again).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from pipeline.cli.requests import RebuildRequest
from pipeline.errors import EXIT_OK, StateError
from pipeline.manifest import load_manifest
from pipeline.paths import STATE_FILE
from pipeline.state.folder import log_files, refuse_links
from pipeline.state.lock import FolderLock
from pipeline.state.opening import state_problem
from pipeline.state.restore import ledger_rows
from pipeline.state.store import StateStore

_HEADER = re.compile(r"^=== run of .* against (\S+)$")
_SUBMITTED = re.compile(r"^\S+ (\S+) \S+ -> submitted task=(\S+)(?: version=([0-9a-f]+))?")
_BUILDING = f".{STATE_FILE}.rebuild-"  # the new state, until it is complete


def log_facts(folder: Path) -> tuple[str | None, dict[str, tuple[str, str | None]]]:
    """(the endpoint of the last run, {job id: (the last task id it was submitted as, the
    start of that version's fingerprint, when the log says)}), from both parts of the
    folder's log, the rotated one first."""
    endpoint, tasks = None, {}
    for path in log_files(folder):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if m := _HEADER.match(line):
                endpoint = m.group(1)
            elif m := _SUBMITTED.match(line):
                tasks[m.group(1)] = (m.group(2), m.group(3))
    return endpoint, tasks


def _version(current: str, logged: str | None) -> str:
    """The fingerprint to restore a log-only task under: the job's current one if the log
    names no version or names this one; else a marker that no version of the manifest
    has, so the next run treats the task as made by an older version of the job (it is
    not downloaded as the current one's result; the current version is submitted)."""
    if logged is None or current.startswith(logged):
        return current
    return f"logged-{logged}"


def run(request: RebuildRequest, environ: Mapping[str, str], *, stdout: TextIO) -> int:
    manifest = load_manifest(request.manifest)
    folder = request.folder
    endpoint = request.endpoint(environ)
    refuse_links(folder)
    state = folder / STATE_FILE
    with FolderLock(folder):
        problem = state_problem(state)
        if problem is None:
            raise StateError(
                f"{state} is a run-pipeline state file already; rebuild-state only replaces "
                "one that is missing or foreign (move it aside first to rebuild anyway)"
            )
        rows, source = ledger_rows(folder)  # every value checked before anything is written
        logged_endpoint, logged = log_facts(folder)
        from_log = _log_only(rows, logged, {j.id: j for j in manifest.jobs})
        building = _build(folder, rows, logged_endpoint or endpoint)
        _put_in_place(building, state)
    count = len(rows)
    print(
        f"rebuilt {state}: {count} task(s) ({count - from_log} from {source}, {from_log} "
        f"from run.log only); the next run tracks them instead of creating them again",
        file=stdout,
    )
    return EXIT_OK


def _log_only(
    rows: list[dict[str, Any]],
    logged: Mapping[str, tuple[str, str | None]],
    jobs: Mapping[str, Any],
) -> int:
    """Add the tasks only the log knows (as running); how many there were."""
    known = {r["task_id"] for r in rows}
    added = 0
    for job_id, (task_id, version) in logged.items():
        job = jobs.get(job_id)
        if task_id in known or job is None:
            continue
        rows.append(
            {
                "job_id": job_id,
                "fingerprint": _version(job.fingerprint, version),
                "attempt": 1
                + max((r["attempt"] for r in rows if r["job_id"] == job_id), default=0),
                "model": job.model,
                "phase": "submitted",
                "task_id": task_id,
                "creates": 1,
                "intent_at": time.time(),
                "submitted_at": time.time(),
            }
        )
        known.add(task_id)
        added += 1
    return added


def _build(folder: Path, rows: list[dict[str, Any]], endpoint: str) -> Path:
    """The new state, complete, in a temporary file of the folder (an earlier rebuild's
    leftover removed first); the file is removed again if anything fails."""
    for stale in folder.glob(_BUILDING + "*"):
        stale.unlink(missing_ok=True)
    building = folder / f"{_BUILDING}{os.getpid()}"
    try:
        with StateStore.open(building, endpoint) as store:
            store.restore(rows)
            # Everything into the main file, so that it alone is the state once renamed.
            store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except BaseException:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{building}{suffix}").unlink(missing_ok=True)
        raise
    for suffix in ("-wal", "-shm"):
        Path(f"{building}{suffix}").unlink(missing_ok=True)
    return building


def _put_in_place(building: Path, state: Path) -> None:
    """Keep the old file (if any) beside as `.lost-<time>`, then rename the new one over
    it in one step, and make the rename durable."""
    if state.exists():
        aside = state.with_name(f"{STATE_FILE}.lost-{int(time.time())}")
        try:
            os.link(state, aside)  # the old name stays taken until the replace below
        except OSError:
            state.rename(aside)
        for suffix in ("-wal", "-shm"):
            extra = state.with_name(STATE_FILE + suffix)
            if extra.exists():
                extra.rename(aside.with_name(aside.name + suffix))
    os.replace(building, state)
    directory = os.open(state.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
