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
from pipeline.state.folder import LOG_LIMIT, rotated_log

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
        # Appended to, never through a symbolic link (that would write outside the folder),
        # and never a FIFO or a device (opening one would block the start).
        fd = open_regular(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
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
