"""Every status name the product uses, in one place.

Three vocabularies, for three readers:
- the **ledger status** of a job (ledger, `status`, gallery, exit code): what a user's script
  reads, pinned in interfaces.md;
- the **stage** of a job's history (`--dry-run`, `status` reasons): what the state file says
  happened so far;
- the **action** the next run takes for it (the planner's answer).
Live transitions in events and run.log use the ledger statuses plus the steps in between
(`submitting`, `submitted`, Kie's own states, `downloaded`).
"""

from __future__ import annotations

from typing import Literal

LedgerStatus = Literal["succeeded", "failed", "timed_out", "blocked", "running", "pending"]
# The order in which counts are shown everywhere.
LEDGER_ORDER: tuple[LedgerStatus, ...] = (
    "succeeded",
    "failed",
    "timed_out",
    "blocked",
    "running",
    "pending",
)
# What counts as not done for the exit code (1).
UNFINISHED: frozenset[str] = frozenset({"failed", "timed_out", "blocked", "running", "pending"})

Stage = Literal["new", "changed", "retry", "ambiguous", "in flight", "timed out", "done", "failed"]
STAGE_ORDER: tuple[Stage, ...] = (
    "new",
    "changed",
    "retry",
    "ambiguous",
    "in flight",
    "timed out",
    "done",
    "failed",
)

# `wait`: a job that will be submitted once the jobs it takes input from have succeeded.
Action = Literal["submit", "track", "download", "wait", "none"]

# The ledger status of each stage, before the download check (see planner.decide).
STAGE_STATUS: dict[Stage, LedgerStatus] = {
    "new": "pending",
    "changed": "pending",
    "retry": "failed",
    "ambiguous": "pending",
    "in flight": "running",
    "timed out": "timed_out",
    "done": "succeeded",
    "failed": "failed",
}

_LABELS = {"timed_out": "timed out"}


def label(status: str) -> str:
    """A status as a person reads it."""
    return _LABELS.get(status, status)
