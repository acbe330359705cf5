"""What the runner reports while it works. The CLI turns these into progress bars and run.log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

EventKind = Literal["transition", "info", "warning", "stop"]


@dataclass(frozen=True)
class Event:
    """One thing that happened. A transition moves a job from `old` to `new` status:
    pending, submitting, submitted, running, succeeded, failed, timed_out, downloaded."""

    kind: EventKind
    job_id: str | None = None
    old: str | None = None
    new: str | None = None
    task_id: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class RunTotals:
    """Known up front, so progress bars can show totals."""

    jobs: int
    to_submit: int
    to_track: int
    to_download: int


Listener = Callable[[Event], None]


@dataclass
class Fanout:
    """Send each event to every listener, in order."""

    listeners: list[Listener] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        for listener in self.listeners:
            listener(event)
