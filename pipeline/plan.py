"""Where each job of a manifest stands, from the state file: the plan and the ledger status.

Shared by `--dry-run`, `status`, the ledger and the runner, so all four always agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pipeline.manifest import Job, Manifest, Settings
from pipeline.models import load_prices
from pipeline.state import Attempt

PlanStatus = Literal[
    "new", "changed", "retry", "ambiguous", "in flight", "timed out", "done", "failed"
]
LedgerStatus = Literal["succeeded", "failed", "running", "pending", "timed_out"]

# Plan statuses that lead to a createTask call in the next run.
SUBMITS: frozenset[str] = frozenset({"new", "changed", "retry", "ambiguous"})


@dataclass(frozen=True)
class JobPlan:
    job: Job
    status: PlanStatus
    current: tuple[Attempt, ...]  # attempts for the job's current fingerprint, oldest first

    @property
    def latest(self) -> Attempt | None:
        return self.current[-1] if self.current else None

    @property
    def attempts(self) -> int:
        """Submissions that reached, or may have reached, Kie (a create refused outright is
        not one)."""
        return sum(1 for a in self.current if a.task_id or a.phase == "intent")

    @property
    def ledger_status(self) -> LedgerStatus:
        return {
            "new": "pending",
            "changed": "pending",
            "retry": "failed",
            "ambiguous": "pending",
            "in flight": "running",
            "timed out": "timed_out",
            "done": "succeeded",
            "failed": "failed",
        }[self.status]  # type: ignore[return-value]


def classify(job: Job, history: Sequence[Attempt], settings: Settings) -> JobPlan:
    """The plan status of `job` given every attempt ever made for its id."""
    current = tuple(a for a in history if a.fingerprint == job.fingerprint)
    if not current:
        return JobPlan(job, "changed" if history else "new", current)
    latest = current[-1]
    submitted = sum(1 for a in current if a.task_id or a.phase == "intent")
    status: PlanStatus
    if latest.phase == "intent":
        status = "ambiguous"
    elif latest.phase == "submitted":
        status = "in flight"
    elif latest.phase == "timed_out":
        status = "timed out"
    elif latest.phase == "succeeded":
        status = "done"
    elif latest.permanent or submitted >= settings.max_attempts:
        status = "failed"
    else:
        status = "retry"
    return JobPlan(job, status, current)


def plan_manifest(
    manifest: Manifest, attempts: Mapping[str, Sequence[Attempt]], settings: Settings
) -> list[JobPlan]:
    return [classify(job, attempts.get(job.id, ()), settings) for job in manifest.jobs]


@dataclass(frozen=True)
class Estimate:
    tasks: int
    credits: int
    unpriced: int  # tasks whose price is unknown (a model without a price entry)
    usd: float


def estimate(plans: Sequence[JobPlan], *, on_ambiguous: str = "resubmit") -> Estimate:
    """Credits the next run would spend on new submissions."""
    prices = load_prices()
    tasks = credits = unpriced = 0
    for plan in plans:
        if plan.status not in SUBMITS or (plan.status == "ambiguous" and on_ambiguous == "skip"):
            continue
        tasks += 1
        price = prices.credits_for(plan.job.model, plan.job.input)
        if price is None:
            unpriced += 1
        else:
            credits += price
    return Estimate(tasks, credits, unpriced, credits * prices.credit_usd)


def counts(plans: Sequence[JobPlan]) -> Counter[str]:
    return Counter(p.status for p in plans)
