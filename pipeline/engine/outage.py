"""Kie unreachable: one outage, not hundreds of per-job errors.

When calls cannot even connect (connection refused, DNS, connect timeout), the problem is
the line to Kie, not any job. The submitter and the tracker report such failures here
instead of logging each one: the first starts an outage (one warning, with the time), the
next successful answer ends it (one line, with how long it lasted). While Kie is unreachable
no task is timed out (the clock of a task runs on Kie's side, which we cannot see) and no
create counts as a failed try. An outage longer than `give_up` seconds stops the run: the
state holds everything, and a rerun resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from pipeline.events import Event, Listener


class Outage:
    def __init__(self, emit: Listener, stop: Callable[[str], None], give_up: float) -> None:
        self.emit = emit
        self.stop = stop
        self.give_up = give_up
        self.since: float | None = None  # wall-clock start of the current outage
        self.started: float = 0.0  # its monotonic start
        self.failures = 0
        self._on_end: list[Callable[[float], None]] = []

    @property
    def down(self) -> bool:
        return self.since is not None

    def on_end(self, callback: Callable[[float], None]) -> None:
        """Called with the outage's length in seconds when Kie answers again."""
        self._on_end.append(callback)

    def stamp(self) -> str:
        assert self.since is not None
        return datetime.fromtimestamp(self.since).astimezone().strftime("%H:%M:%S")

    def failed(self, exc: BaseException) -> None:
        """A call could not reach Kie."""
        now = time.monotonic()
        self.failures += 1
        if self.since is None:
            self.since, self.started = time.time(), now
            self.emit(
                Event(
                    "outage",
                    detail=f"Kie is unreachable since {self.stamp()} ({exc}); "
                    "waiting for it, no job is timed out meanwhile",
                )
            )
            return
        if now - self.started >= self.give_up:
            self.stop(
                f"outage: Kie has been unreachable since {self.stamp()} "
                f"({now - self.started:.0f} s, {self.failures} calls failed); everything is "
                "recorded in the state file: run the same command again to resume"
            )

    def answered(self) -> None:
        """A call got an answer: the outage, if any, is over."""
        if self.since is None:
            return
        length = time.monotonic() - self.started
        self.emit(
            Event(
                "recovered",
                detail=f"Kie reachable again after {length:.1f} s "
                f"(unreachable since {self.stamp()})",
            )
        )
        self.since = None
        self.failures = 0
        for callback in self._on_end:
            callback(length)
