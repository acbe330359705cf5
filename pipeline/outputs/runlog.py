"""run.log: one line per job transition and run event, appended, never through a link.

Text from servers reaches these lines (messages, task ids), so every line goes through
`printable` first.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from pipeline.events import Event
from pipeline.safefiles import open_regular

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with every control character (terminal escape codes included) shown as
    `\\xNN`: text from a server never moves the cursor, recolours or retitles a terminal,
    nor splits one log line into two."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def printable_lines(text: str) -> str:
    """`printable` line by line: a table keeps its line breaks, nothing else gets through."""
    return "\n".join(printable(line) for line in text.split("\n"))


class RunLog:
    """run.log: one line per transition: time, job, from, to, task, detail."""

    def __init__(self, path: Path, mirror: TextIO | None = None) -> None:
        # Appended to, never through a symbolic link (that would write outside the folder),
        # and never a FIFO or a device (opening one would block the start).
        fd = open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self.handle = os.fdopen(fd, "a", encoding="utf-8")
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
