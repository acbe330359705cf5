"""Every status name the product uses, in one place.

Three vocabularies, for three readers:
- the **ledger status** of a job (ledger, `status`, gallery, exit code): what a user's script
  reads, pinned in interfaces.md;
- the **stage** of a job's history (`--dry-run`, `status` reasons): what the state file says
  happened so far;
- the **action** the next run takes for it (the planner's answer).
Live transitions in events and run.log (`JobState`) use the ledger statuses plus the steps
in between (`submitting`, `submitted`, `downloaded`) and Kie's own task states (`KieState`).
Names never hold spaces: the same word is written in run.log, JSON, the ledger and the plan.
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

Stage = Literal["new", "changed", "retry", "ambiguous", "in_flight", "timed_out", "done", "failed"]
STAGE_ORDER: tuple[Stage, ...] = (
    "new",
    "changed",
    "retry",
    "ambiguous",
    "in_flight",
    "timed_out",
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
    "in_flight": "running",
    "timed_out": "timed_out",
    "done": "succeeded",
    "failed": "failed",
}

# Kie's own states of a task (recordInfo's `state`; a family's flags are read into these).
KieState = Literal["waiting", "queuing", "generating", "success", "fail"]
KIE_STATES: frozenset[str] = frozenset({"waiting", "queuing", "generating", "success", "fail"})
FINISHED_KIE_STATES: frozenset[str] = frozenset({"success", "fail"})
# The steps of a job between ledger statuses, in live transitions.
Step = Literal["submitting", "submitted", "downloaded"]
JobState = LedgerStatus | Step | KieState
