"""The results ledger: one row per job of the current manifest, in manifest order.

Rendered as JSONL and CSV with the same fields; `outputs.writer` writes both atomically
(temp file + rename), so a reader never sees half a ledger, even if the run is killed.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pipeline.engine.planner import Decision
from pipeline.outputs.runlog import printable
from pipeline.status import LEDGER_ORDER

FIELDS = (
    "id",
    "status",
    "task_id",
    "model",
    "result_url",
    "file",
    "sha256",
    "bytes",
    "media_type",
    "outputs",
    "credits",
    "attempts",
    "error_code",
    "error_message",
    "possible_duplicate",
    "submitted_at",
    "completed_at",
    "fingerprint",
    "creates",
    "result_json",
)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def status_counts(decisions: Sequence[Decision]) -> dict[str, int]:
    """Jobs per ledger status, in LEDGER_ORDER, leaving out statuses no job has."""
    counts = Counter(d.status for d in decisions)
    return {status: counts[status] for status in LEDGER_ORDER if counts[status]}


def _credits(value: float | None) -> int | float | None:
    """Kie's figure as it reads best: 20, not 20.0."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def row(decision: Decision) -> dict[str, Any]:
    """The ledger row of one job. The flat result columns describe result 1; `outputs` is
    the list of every result (the CSV shows its length)."""
    latest = decision.latest
    error_code = latest.error_code if latest else None
    error_message = latest.error_message if latest else None
    if decision.status == "blocked":  # the upstream job's id and its error
        error_code, error_message = "blocked", decision.reason.removeprefix("blocked: ")
    elif decision.stage == "ambiguous" and latest is not None:
        error_message = error_message or (
            "the create call may or may not have reached Kie; not resubmitted yet"
        )
    first = latest.first if latest else None
    outputs = [
        {
            "url": r.url,
            "file": r.file,
            "sha256": r.sha256,
            "bytes": r.bytes,
            "media_type": r.media_type,
        }
        for r in decision.results
    ]
    return {
        "id": decision.job.id,
        "status": decision.status,
        "task_id": latest.task_id if latest else None,
        "model": decision.job.model,
        "result_url": first.url if first else None,
        "file": first.file if first else None,
        "sha256": first.sha256 if first else None,
        "bytes": first.bytes if first else None,
        "media_type": first.media_type if first else None,
        "outputs": outputs,
        "credits": _credits(latest.credits) if latest else None,
        "attempts": decision.attempts,
        "error_code": error_code,
        "error_message": error_message,
        "possible_duplicate": any(a.possible_duplicate for a in decision.current),
        "submitted_at": iso(latest.submitted_at) if latest else None,
        "completed_at": iso(latest.completed_at) if latest else None,
        "fingerprint": decision.job.fingerprint,
        # createTask calls made for this version, the ambiguous ones and refusals included
        "creates": sum(a.creates for a in decision.current),
        # A success whose result is not a file (a detection's JSON): Kie's result as text.
        "result_json": latest.result_json if latest and decision.status == "succeeded" else None,
    }


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): a
# prompt-controlled error message must not. Such text gets a leading apostrophe, which
# spreadsheets show as text and scripts can strip; numbers are left as they are.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):  # `outputs`: the CSV has the count, the JSONL the list
        return len(value)
    if isinstance(value, str):
        # Escape codes too: `cat ledger.csv` must not let a server's text drive the terminal.
        value = printable(value)
        return "'" + value if value.startswith(_FORMULA_START) else value
    return "" if value is None else value


def jsonl_line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def csv_text(rows: Sequence[dict[str, Any]], *, header: bool = True) -> str:
    """The CSV of `rows`; without the header: lines to append to a ledger.csv."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows({k: _csv_value(v) for k, v in r.items()} for r in rows)
    return buffer.getvalue()


def render(rows: Sequence[dict[str, Any]]) -> tuple[str, str]:
    return "".join(jsonl_line(r) for r in rows), csv_text(rows)
