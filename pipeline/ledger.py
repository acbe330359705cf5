"""The results ledger: one row per job of the current manifest, in manifest order.

Written as JSONL and CSV with the same fields, each atomically (temp file + rename), so a
reader never sees half a ledger, even if the run is killed while writing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.plan import JobPlan

FIELDS = (
    "id",
    "status",
    "task_id",
    "model",
    "video_url",
    "file",
    "sha256",
    "bytes",
    "attempts",
    "error_code",
    "error_message",
    "possible_duplicate",
    "submitted_at",
    "completed_at",
    "fingerprint",
)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def row_status(plan: JobPlan, download: bool) -> str:
    """The ledger status. With downloads on, `succeeded` means a verified file on disk."""
    latest = plan.latest
    status: str = plan.ledger_status
    if status == "succeeded" and download and latest is not None and not latest.file:
        status = "failed" if latest.error_code else "running"
    return status


STATUS_ORDER = ("succeeded", "failed", "timed_out", "running", "pending")


def status_counts(plans: Sequence[JobPlan], download: bool) -> dict[str, int]:
    """Jobs per ledger status, in STATUS_ORDER, leaving out statuses no job has."""
    counts = Counter(row_status(plan, download) for plan in plans)
    return {status: counts[status] for status in STATUS_ORDER if counts[status]}


def row(plan: JobPlan, *, download: bool) -> dict[str, Any]:
    """The ledger row of one job."""
    latest = plan.latest
    status = row_status(plan, download)
    error_code = latest.error_code if latest else None
    error_message = latest.error_message if latest else None
    if plan.status == "ambiguous" and latest is not None:
        error_message = error_message or (
            "the create call may or may not have reached Kie; not resubmitted yet"
        )
    return {
        "id": plan.job.id,
        "status": status,
        "task_id": latest.task_id if latest else None,
        "model": plan.job.model,
        "video_url": latest.video_url if latest else None,
        "file": latest.file if latest else None,
        "sha256": latest.sha256 if latest else None,
        "bytes": latest.bytes if latest else None,
        "attempts": plan.attempts,
        "error_code": error_code,
        "error_message": error_message,
        "possible_duplicate": any(a.possible_duplicate for a in plan.current),
        "submitted_at": iso(latest.submitted_at) if latest else None,
        "completed_at": iso(latest.completed_at) if latest else None,
        "fingerprint": plan.job.fingerprint,
    }


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); outputs are read by other tools and people.
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def render(rows: Sequence[dict[str, Any]]) -> tuple[str, str]:
    jsonl = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _csv_value(v) for k, v in r.items()} for r in rows)
    return jsonl, buffer.getvalue()


def write_ledger(folder: Path, plans: Sequence[JobPlan], *, download: bool) -> list[dict[str, Any]]:
    rows = [row(p, download=download) for p in plans]
    jsonl, csv_text = render(rows)
    atomic_write(folder / "ledger.jsonl", jsonl)
    atomic_write(folder / "ledger.csv", csv_text)
    return rows
