"""Listeners that turn runner events into run.log lines and tqdm progress bars."""

from __future__ import annotations

import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Never, TextIO

from tqdm import tqdm

from pipeline.events import Event, RunTotals
from pipeline.state.folder import LOG_LIMIT, rotated_log

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with every control character (terminal escape codes included) shown as
    `\\xNN`: text from a server never moves the cursor, recolours or retitles a terminal,
    nor splits one log line into two."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class RunLog:
    """run.log: one line per transition: time, job, from, to, task, detail.

    Rotated before a line would take it past `limit` bytes: the file becomes run.log.1
    and a new run.log starts, with the run's header line again, so that each part says
    which run and endpoint its lines belong to (rebuild-state reads the endpoint there)."""

    HEADER = "=== run of "

    def __init__(self, path: Path, mirror: TextIO | None = None, limit: int | None = None) -> None:
        self.path = path
        self.mirror = mirror
        self.limit = LOG_LIMIT if limit is None else limit
        self.header: str | None = None  # this run's header line, written again on rotation
        self._open()

    def _open(self) -> None:
        # Appended to, never through a symbolic link (that would write outside the folder).
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self.path, flags, 0o644)
        self.size = os.fstat(fd).st_size
        self.handle = os.fdopen(fd, "a", encoding="utf-8")

    def _rotate(self) -> None:
        """run.log becomes run.log.1 (replacing an older one) and a new run.log is opened.
        A rotation that fails leaves the log as it is: the log must never stop a run."""
        self.handle.close()
        try:
            os.replace(self.path, rotated_log(self.path))
        except OSError:
            self.limit = max(self.limit, 2 * self.size)  # not again at every line
        self._open()

    def __call__(self, event: Event) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if event.kind == "transition":
            line = (
                f"{stamp} {event.job_id} {event.old} -> {event.new}"
                f" task={event.task_id or '-'}" + (f" {event.detail}" if event.detail else "")
            )
        else:
            line = (
                f"{stamp} {event.kind.upper()}"
                + (f" {event.job_id}" if event.job_id else "")
                + f" {event.detail}"
            )
        self.write(line)

    def write(self, line: str) -> None:
        line = printable(line.replace("\n", " "))
        if line.startswith(self.HEADER):
            self.header = line
        size = len(line.encode("utf-8", "replace")) + 1
        if self.size and self.size + size > self.limit:
            self._rotate()
            if self.header is not None and self.header != line:
                self._append(self.header)
        self._append(line)
        if self.mirror is not None:
            print(line, file=self.mirror, flush=True)

    def _append(self, line: str) -> None:
        self.handle.write(line + "\n")
        self.handle.flush()
        self.size += len(line.encode("utf-8", "replace")) + 1

    def close(self) -> None:
        self.handle.close()


def terminal_columns(stream: TextIO) -> int | None:
    """The width the terminal reports for `stream`, None when it cannot say. A pty may
    report 0 columns: bars cannot be drawn there, so plain lines are used instead."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return None


class ProgressBars:
    """Three bars on stderr: submitted, finished, downloaded. Silent unless stderr is a TTY.

    Each bar is redrawn when its count changes (not on a timer, which left a bar showing an
    old count while another moved on), and keeps its own elapsed time: the time of its last
    change. A terminal that reports no width gets plain lines instead of bars. Run-level
    warnings and stops (Kie unreachable, out of credits) are printed above the bars."""

    def __init__(
        self,
        totals: RunTotals,
        *,
        download: bool,
        enabled: bool | None = None,
        stream: TextIO | None = None,
        columns: int | None = -1,
    ) -> None:
        stream = stream or sys.stderr
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        if columns == -1:
            columns = terminal_columns(stream)
        self.plain = columns == 0
        self.started = time.time()  # tqdm's own clock
        finished_total = totals.to_submit + totals.to_track
        self.bars: dict[str, tqdm[Never]] = {}
        self.counts: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self.changed: dict[str, float] = {}
        if not self.enabled:
            return
        specs = [("submitted", totals.to_submit), ("finished", finished_total)]
        if download:
            specs.append(("downloaded", finished_total + totals.to_download))
        for position, (name, total) in enumerate(specs):
            self.counts[name], self.totals[name] = 0, total
            self.changed[name] = self.started
            if self.plain:
                continue
            self.bars[name] = tqdm(
                total=total,
                desc=f"{name:<10}",
                unit="job",
                file=stream,
                position=position,
                leave=True,
                dynamic_ncols=True,
                mininterval=0,
            )

    def _line(self, text: str) -> None:
        if self.bars:
            tqdm.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def __call__(self, event: Event) -> None:
        if not self.enabled:
            return
        if event.kind in {"stop", "warning"} and event.job_id is None:
            self._line(f"run-pipeline: {event.detail}")
            return
        if event.kind == "info" and event.detail.startswith("Kie reachable again"):
            self._line(f"run-pipeline: {event.detail}")
            return
        if event.kind != "transition":
            return
        bar = {"submitted": "submitted", "downloaded": "downloaded"}.get(event.new or "")
        if event.new in {"succeeded", "failed", "timed_out"} and event.old != "succeeded":
            bar = "finished"
        if bar and bar in self.counts:
            self._advance(bar)

    def _advance(self, name: str) -> None:
        now = time.time()
        self.counts[name] += 1
        self.changed[name] = now
        if name in self.bars:
            self.bars[name].update(1)
            self.bars[name].refresh()
            return
        count, total = self.counts[name], self.totals[name]
        step = max(1, total // 20)  # at most about 20 lines a bar, whatever the batch size
        if count == total or count % step == 0:
            print(
                f"{name:<10} {count}/{total} ({now - self.started:.1f} s)",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        for name, bar in self.bars.items():
            # Frozen at its own last change: a bar that finished early keeps its time.
            last = max(self.changed[name], bar.start_t)
            setattr(bar, "_time", lambda last=last: last)  # noqa: B010 (tqdm has no API)
            bar.close()
