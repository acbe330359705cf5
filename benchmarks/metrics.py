"""Figures computed from what the simulator saw and what a client logged (pure functions)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

QUERY_PATHS = ("/api/v1/jobs/recordInfo", "/api/v1/common/download-url", "/api/v1/chat/credit")
CREATE_PATH = "/api/v1/jobs/createTask"
_TRANSITION = re.compile(r"^(\S+) (\S+) (\S+) -> (\S+) task=(\S+)")


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (q in [0, 1]); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def max_in_window(times: Iterable[float], window: float) -> int:
    """The most events in any half-open interval [t, t + window)."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def min_span(creates: int, count: int, window: float) -> float:
    """Shortest possible time from the first to the last of `creates` calls under a limit of
    `count` per sliding `window`: bursts of `count`, one window apart."""
    return max(math.ceil(creates / count) - 1, 0) * window


def parse_iso(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def knowledge_times(run_log: Path) -> dict[str, float]:
    """When the runner learned that each task had finished: the run.log transition of the task
    to succeeded or failed (wall-clock seconds)."""
    known: dict[str, float] = {}
    parts = [run_log.with_name(run_log.name + ".1"), run_log]  # a rotated log has two
    lines = [line for p in parts if p.is_file() for line in p.read_text("utf-8").splitlines()]
    for line in lines:
        match = _TRANSITION.match(line)
        if not match:
            continue
        stamp, _job, old, new, task = match.groups()
        if new in {"succeeded", "failed"} and old != "succeeded" and task != "-":
            known.setdefault(task, parse_iso(stamp))
    return known


def last_event_time(run_log: Path) -> float:
    last = 0.0
    for line in run_log.read_text(encoding="utf-8").splitlines():
        if line[:1].isdigit():
            last = max(last, parse_iso(line.split(" ", 1)[0]))
    return last
