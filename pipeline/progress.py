"""Listeners that turn runner events into run.log lines and tqdm progress bars."""

from __future__ import annotations

import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Never, TextIO

from tqdm import tqdm

from pipeline.events import Event, RunTotals

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with every control character (terminal escape codes included) shown as
    `\\xNN`: text from a server never moves the cursor, recolours or retitles a terminal,
    nor splits one log line into two."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class RunLog:
    """run.log: one line per transition: time, job, from, to, task, detail."""

    def __init__(self, path: Path, mirror: TextIO | None = None) -> None:
        # Appended to, never through a symbolic link (that would write outside the folder).
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        self.handle = os.fdopen(os.open(path, flags, 0o644), "a", encoding="utf-8")
        self.mirror = mirror

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
        self.handle.write(line + "\n")
        self.handle.flush()
        if self.mirror is not None:
            print(line, file=self.mirror, flush=True)

    def close(self) -> None:
        self.handle.close()


class ProgressBars:
    """Three bars on stderr: submitted, finished, downloaded. Silent unless stderr is a TTY."""

    def __init__(
        self,
        totals: RunTotals,
        *,
        download: bool,
        enabled: bool | None = None,
        stream: TextIO | None = None,
    ) -> None:
        stream = stream or sys.stderr
        self.enabled = stream.isatty() if enabled is None else enabled
        finished_total = totals.to_submit + totals.to_track
        self.bars: dict[str, tqdm[Never]] = {}
        if not self.enabled:
            return
        specs = [("submitted", totals.to_submit), ("finished", finished_total)]
        if download:
            specs.append(("downloaded", finished_total + totals.to_download))
        for position, (name, total) in enumerate(specs):
            self.bars[name] = tqdm(
                total=total,
                desc=f"{name:<10}",
                unit="job",
                file=stream,
                position=position,
                leave=True,
                dynamic_ncols=True,
            )

    def __call__(self, event: Event) -> None:
        if not self.enabled or event.kind != "transition":
            return
        bar = {"submitted": "submitted", "downloaded": "downloaded"}.get(event.new or "")
        if event.new in {"succeeded", "failed", "timed_out"} and event.old != "succeeded":
            bar = "finished"
        if bar and bar in self.bars:
            self.bars[bar].update(1)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
