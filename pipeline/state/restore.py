"""The rows of a rebuilt state (`run-pipeline rebuild-state`): read from the ledger, checked.

The ledger is read as JSONL, or as CSV when the JSONL is gone (the CSV has result 1 only: a
task of several results is restored as running, so that the next run asks Kie for the list
instead of taking one result for all). Every value is checked before anything is written: a
number out of range (a 30-digit size), a task id listed twice, a file outside the folder, a
bad row shape refuses the whole rebuild with the file, line and value, so a damaged ledger
never turns into a state that looks valid but forgot the tasks an earlier run paid for.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.errors import StateError
from pipeline.kie.answers import MAX_TASK_ID, clean_text
from pipeline.paths import LEDGER_CSV, LEDGER_JSONL
from pipeline.state.folder import inside

_PHASES = {"succeeded": "succeeded", "failed": "failed", "timed_out": "timed_out"}
MAX_RESULT_JSON = 20_000  # characters: the state keeps at most 16,000 (answers.py)
MAX_COUNT = 1_000_000  # attempts, creates: far above anything a run makes
MAX_BYTES = 1 << 53  # a result's size
MAX_CREDITS = 1e12
MAX_TEXT = 4096
_SHA256 = re.compile(r"[0-9a-f]{64}")
# A CSV cell the ledger protected from spreadsheets got a leading apostrophe (ledger.py).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class LedgerRefused(StateError):
    """The ledger holds a value a state cannot be rebuilt from; nothing was written."""


class _Reader:
    """Checks the values of one ledger file, naming the file and line of a bad one."""

    def __init__(self, path: Path, folder: Path) -> None:
        self.path = path
        self.folder = folder
        self.line = 0

    def refuse(self, what: str) -> LedgerRefused:
        return LedgerRefused(
            f"{self.path}:{self.line}: {what}; nothing was rebuilt (the state file is as it "
            "was): correct or remove that row, then run rebuild-state again"
        )

    def text(self, row: dict[str, Any], key: str, *, limit: int = MAX_TEXT) -> str | None:
        value = row.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str) or len(value) > limit:
            raise self.refuse(
                f"{key} {clean_text(repr(value), 60)} is not a text of at most {limit} characters"
            )
        return value

    def count(self, row: dict[str, Any], key: str, default: int, *, high: int = MAX_COUNT) -> int:
        value = _number(row.get(key))
        if value is None:
            return default
        if not isinstance(value, int) or not 0 <= value <= high:
            raise self.refuse(
                f"{key} {clean_text(repr(value), 60)} is not a whole number from 0 to {high}"
            )
        return value

    def credits(self, row: dict[str, Any]) -> float | None:
        value = _number(row.get("credits"))
        if value is None:
            return None
        if not math.isfinite(value) or not 0 <= value < MAX_CREDITS:
            raise self.refuse(f"credits {clean_text(repr(value), 60)} is out of range")
        return float(value)

    def task_id(self, row: dict[str, Any]) -> str:
        value = row["task_id"]
        if not 0 < len(value) <= MAX_TASK_ID or not all("!" <= ch <= "~" for ch in value):
            raise self.refuse(f"task id {clean_text(repr(value), 60)} is not a usable task id")
        return str(value)

    def result(self, url: object, output: dict[str, Any]) -> dict[str, Any]:
        if url is not None and url != "" and (not isinstance(url, str) or len(url) > 8192):
            raise self.refuse("a result URL is not a text of at most 8192 characters")
        file = self.text(output, "file")
        if file is not None and not inside(self.folder, file):
            raise self.refuse(f"file {clean_text(repr(file), 80)} is outside the output folder")
        sha = self.text(output, "sha256")
        if sha is not None and not _SHA256.fullmatch(sha):
            raise self.refuse(f"sha256 {clean_text(repr(sha), 80)} is not a SHA-256")
        size = _number(output.get("bytes"))
        if size is not None and (not isinstance(size, int) or not 0 <= size <= MAX_BYTES):
            raise self.refuse(f"bytes {clean_text(repr(size), 60)} is not a file size")
        return {
            "url": url or None,
            "file": file,
            "sha256": sha,
            "bytes": size,
            "media_type": self.text(output, "media_type", limit=200),
        }


def _number(value: object) -> int | float | None:
    """A JSON number, or the text of one (a CSV cell); None when empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                pass
    return math.nan  # refused by every caller's range check


def _time(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _attempt(reader: _Reader, r: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    now = time.time()
    submitted = _time(r.get("submitted_at")) or now
    phase = _PHASES.get(str(r.get("status")), "submitted")
    return {
        "job_id": reader.text(r, "id", limit=500),
        "fingerprint": reader.text(r, "fingerprint", limit=200) or "",
        "attempt": max(reader.count(r, "attempts", 1), 1),
        "model": reader.text(r, "model", limit=500) or "",
        "phase": phase,
        "task_id": reader.task_id(r),
        "possible_duplicate": int(r.get("possible_duplicate") in (True, "true")),
        "creates": max(reader.count(r, "creates", 1), 1),
        "intent_at": submitted,
        "submitted_at": submitted,
        "completed_at": _time(r.get("completed_at")),
        "error_code": reader.text(r, "error_code", limit=200),
        "error_message": reader.text(r, "error_message"),
        "credits": reader.credits(r),
        "results": results,
        # A success whose result is not a file (a detection's JSON): kept, so it stays done.
        "result_json": reader.text(r, "result_json", limit=MAX_RESULT_JSON),
    }


def _latest_lines(rows: Iterable[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
    """The last row of each job. During a run the ledger files are journals (a job's later
    line supersedes its earlier ones, see outputs.live): the last one is the job's state."""
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    for line, r in rows:
        if isinstance(r.get("id"), str) and r["id"]:
            latest[r["id"]] = (line, r)
    return sorted(latest.values(), key=lambda lr: lr[0])


def _jsonl_lines(reader: _Reader) -> Iterable[tuple[int, dict[str, Any]]]:
    with reader.path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            try:
                r = json.loads(line)
            except (ValueError, RecursionError):
                continue  # a line cut short by a crash: a whole line ends with a newline
            if isinstance(r, dict):
                yield number, r


def _jsonl_rows(reader: _Reader) -> Iterable[dict[str, Any]]:
    for line, r in _latest_lines(_jsonl_lines(reader)):
        reader.line = line
        if not r.get("task_id"):
            continue
        if not isinstance(r["task_id"], str):
            raise reader.refuse("task_id is not a text")
        # The flat columns (result 1, or 0.1's `video_url`) are checked even when the
        # list of every result (`outputs`) is what is restored.
        first = reader.result(r.get("result_url", r.get("video_url")), r)
        outputs = r.get("outputs")
        if isinstance(outputs, list) and outputs and all(isinstance(o, dict) for o in outputs):
            results = [reader.result(o.get("url"), o) for o in outputs]
        else:
            results = [first] if any(first.values()) else []
        yield _attempt(reader, r, results)


def _cell(value: str | None) -> str | None:
    if value is None:
        return None
    if value.startswith("'") and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value


def _csv_rows(reader: _Reader) -> Iterable[dict[str, Any]]:
    with reader.path.open(encoding="utf-8", errors="replace", newline="") as handle:
        lines = [
            (number, {k: _cell(v) for k, v in raw.items() if isinstance(k, str)})
            for number, raw in enumerate(csv.DictReader(handle), 2)
        ]
    for line, r in _latest_lines(lines):
        reader.line = line
        if not r.get("task_id"):
            continue
        outputs = reader.count(r, "outputs", 0)
        first = reader.result(r.get("result_url"), r)
        if outputs > 1:  # the CSV names result 1 only: Kie is asked for the list again
            r["status"], results = "running", []
        else:
            results = [first] if any(first.values()) else []
        yield _attempt(reader, r, results)


def ledger_rows(folder: Path) -> tuple[list[dict[str, Any]], str]:
    """Attempt rows for every ledger row naming a task, checked (LedgerRefused otherwise),
    and the name of the file they came from: ledger.jsonl, else ledger.csv."""
    jsonl, table = folder / LEDGER_JSONL, folder / LEDGER_CSV
    rows: list[dict[str, Any]] = []
    source = LEDGER_JSONL
    if jsonl.is_file():
        rows = list(_jsonl_rows(_Reader(jsonl, folder)))
    if not rows and table.is_file():
        rows, source = list(_csv_rows(_Reader(table, folder))), LEDGER_CSV
    return _unique(rows, folder / source), source


def _unique(rows: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """Refuse a task id, or a job's attempt, listed twice: one of the two would be lost."""
    tasks: dict[str, str] = {}
    attempts: set[tuple[str, str, int]] = set()
    for r in rows:
        job, task = clean_text(r["job_id"], 80), clean_text(r["task_id"], 80)
        holder = tasks.setdefault(r["task_id"], r["job_id"])
        key = (r["job_id"], r["fingerprint"], r["attempt"])
        if holder != r["job_id"] or key in attempts:
            what = (
                f"task {task} is listed for two jobs ({clean_text(holder, 80)} and {job})"
                if holder != r["job_id"]
                else f"job {job}'s attempt {r['attempt']} is listed twice (task {task})"
            )
            raise LedgerRefused(
                f"{path}: {what}; nothing was rebuilt (the state file is as it was): "
                "correct the ledger, then run rebuild-state again"
            )
        attempts.add(key)
    return rows
