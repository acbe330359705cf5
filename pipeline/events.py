"""What the runner reports while it works. The CLI turns these into progress bars and run.log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pipeline.status import JobState

# transition: a job moved from `old` to `new` (see `pipeline.status.JobState`);
# outage / recovered: Kie became unreachable / answered again (one each per outage);
# info, warning: a line for the log (and, without a job, for the terminal); stop: the run stops.
EventKind = Literal["transition", "info", "warning", "stop", "outage", "recovered"]


@dataclass(frozen=True)
class Event:
    """One thing that happened. A transition moves a job from `old` to `new` state: the
    ledger statuses, the steps between them and Kie's own task states (`JobState`)."""

    kind: EventKind
    job_id: str | None = None
    old: JobState | None = None
    new: JobState | None = None
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
