"""`run-pipeline rebuild-state MANIFEST`: a new state file from ledger.jsonl and run.log.

For a folder whose state file was lost (deleted, emptied, replaced by another file) while its
ledger and log still show the tasks an earlier run made. Every job with a known task id gets
an attempt row as the ledger last saw it (succeeded, failed, timed out, or running), so the
next run tracks, downloads or retries it and never re-creates a task it already paid for. A
task id only the log knows (a create answered after the last ledger rewrite) is restored as
running, under the version of the job the log names (a run writes `version=` with each
`submitted`); the manifest's current version when the log is older than that. The old file,
if any, is kept beside as `state.sqlite.lost-<time>`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from pipeline.cli.requests import RebuildRequest
from pipeline.errors import EXIT_OK, StateError
from pipeline.manifest import load_manifest
from pipeline.paths import STATE_FILE
from pipeline.state.folder import log_files, refuse_links, state_problem
from pipeline.state.lock import FolderLock
from pipeline.state.store import StateStore

_PHASES = {"succeeded": "succeeded", "failed": "failed", "timed_out": "timed_out"}
_HEADER = re.compile(r"^=== run of .* against (\S+)$")
_SUBMITTED = re.compile(r"^\S+ (\S+) \S+ -> submitted task=(\S+)(?: version=([0-9a-f]+))?")


def _time(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def ledger_rows(path: Path) -> list[dict[str, Any]]:
    """The ledger's rows that name a task, as attempt rows. During a run the ledger is a
    journal (a job's later line supersedes its earlier ones; see outputs.live), so the last
    line of each job is the one taken; a line cut short by a crash is skipped."""
    if not path.is_file():
        return []
    latest: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if isinstance(r, dict) and _text(r.get("id")):
            latest[r["id"]] = r
    rows = []
    now = time.time()
    for r in latest.values():
        if not _text(r.get("task_id")):
            continue
        submitted = _time(r.get("submitted_at")) or now
        attempts = r.get("attempts")
        rows.append(
            {
                "job_id": r["id"],
                "fingerprint": _text(r.get("fingerprint")) or "",
                "attempt": attempts if isinstance(attempts, int) and attempts > 0 else 1,
                "model": _text(r.get("model")) or "",
                "phase": _PHASES.get(str(r.get("status")), "submitted"),
                "task_id": r["task_id"],
                "possible_duplicate": int(bool(r.get("possible_duplicate"))),
                "creates": 1,
                "intent_at": submitted,
                "submitted_at": submitted,
                "completed_at": _time(r.get("completed_at")),
                "error_code": _text(r.get("error_code")),
                "error_message": _text(r.get("error_message")),
                "results": _results(r),
                # A success whose result is not a file: its JSON, so it stays done.
                "result_json": _text(r.get("result_json")),
            }
        )
    return rows


def _result(url: object, output: dict[str, Any]) -> dict[str, Any]:
    size = output.get("bytes")
    return {
        "url": _text(url),
        "file": _text(output.get("file")),
        "sha256": _text(output.get("sha256")),
        "bytes": size if isinstance(size, int) and not isinstance(size, bool) else None,
        "media_type": _text(output.get("media_type")),
    }


def _results(row: dict[str, Any]) -> list[dict[str, Any]]:
    """Every result of the row's task: the JSONL's `outputs` list (ledger v2), else the
    flat columns of result 1 (`result_url`, or 0.1's `video_url`). A task that ended without
    a URL has none."""
    outputs = row.get("outputs")
    if isinstance(outputs, list) and outputs and all(isinstance(o, dict) for o in outputs):
        return [_result(o.get("url"), o) for o in outputs]
    url = row.get("result_url", row.get("video_url"))
    first = _result(url, row)
    return [first] if any(first.values()) else []


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
        rows = ledger_rows(folder / "ledger.jsonl")
        logged_endpoint, logged = log_facts(folder)
        known = {r["task_id"] for r in rows}
        jobs = {j.id: j for j in manifest.jobs}
        from_log = 0
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
            from_log += 1
        if state.exists():
            aside = state.with_name(f"{STATE_FILE}.lost-{int(time.time())}")
            state.rename(aside)
            for suffix in ("-wal", "-shm"):
                extra = state.with_name(STATE_FILE + suffix)
                if extra.exists():
                    extra.rename(aside.with_name(aside.name + suffix))
        with StateStore.open(state, logged_endpoint or endpoint) as store:
            count = store.restore(rows)
    print(
        f"rebuilt {state}: {count} task(s) ({count - from_log} from ledger.jsonl, {from_log} "
        f"from run.log only); the next run tracks them instead of creating them again",
        file=stdout,
    )
    return EXIT_OK
