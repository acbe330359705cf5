"""The one place that decides what happens to each job next.

`decide` reads a job's history from the state file and the run's options and answers with a
`Decision`: the stage its history is at, the action the next run takes (submit, track,
download, nothing), why, and the ledger status. `--dry-run`, `status`, the ledger, the
runner and the run summary all ask it, so what a dry run announces is what a run does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from pipeline.manifest import Job, Manifest, OnAmbiguous, Settings
from pipeline.models import load_prices
from pipeline.state import Attempt, StoredResult
from pipeline.status import STAGE_STATUS, Action, LedgerStatus, Stage

FilePresent = Callable[[Attempt], bool]


def _recorded(attempt: Attempt) -> bool:
    return attempt.downloaded


@dataclass(frozen=True)
class PlanOptions:
    """The options that change a decision; every one of them is accepted by --dry-run."""

    max_attempts: int = 3
    on_ambiguous: OnAmbiguous = "resubmit"
    retry_failed: bool = False
    download: bool = True

    @classmethod
    def of(cls, settings: Settings, *, retry_failed: bool = False) -> PlanOptions:
        return cls(settings.max_attempts, settings.on_ambiguous, retry_failed, settings.download)

    def in_run(self) -> PlanOptions:
        """The options for decisions taken during a run, after a task failed: retrying
        failed jobs is what starting with --retry-failed does, once; a job that fails again
        in the same run is retried only while it has attempts left."""
        return replace(self, retry_failed=False)


@dataclass(frozen=True)
class Decision:
    job: Job
    stage: Stage
    action: Action
    reason: str
    status: LedgerStatus
    current: tuple[Attempt, ...]  # attempts for the job's current fingerprint, oldest first

    @property
    def latest(self) -> Attempt | None:
        return self.current[-1] if self.current else None

    @property
    def results(self) -> tuple[StoredResult, ...]:
        """The results of the job's latest task (none unless it succeeded)."""
        return self.latest.results if self.latest else ()

    @property
    def attempts(self) -> int:
        """Submissions that reached, or may have reached, Kie (a create refused outright is
        not one)."""
        return sum(1 for a in self.current if a.task_id or a.phase == "intent")


def _stage(job: Job, history: Sequence[Attempt], current: Sequence[Attempt], limit: int) -> Stage:
    if not current:
        return "changed" if history else "new"
    latest = current[-1]
    if latest.phase == "intent":
        return "ambiguous"
    if latest.phase == "submitted":
        return "in flight"
    if latest.phase == "timed_out":
        return "timed out"
    if latest.phase == "succeeded":
        return "done"
    submitted = sum(1 for a in current if a.task_id or a.phase == "intent")
    return "failed" if latest.permanent or submitted >= limit else "retry"


def _action(
    stage: Stage, latest: Attempt | None, options: PlanOptions, has_file: FilePresent
) -> tuple[Action, str]:
    if stage == "new":
        return "submit", "new job"
    if stage == "changed":
        return "submit", "edited since its last run"
    if stage == "retry":
        return "submit", "failed; attempts left"
    if stage == "ambiguous":
        if options.on_ambiguous == "skip":
            return "none", "a create may have reached Kie; skipped (--on-ambiguous skip)"
        return "submit", "a create may have reached Kie; resubmitted, flagged possible duplicate"
    if stage == "in flight":
        return "track", "submitted; tracked to the end"
    if stage == "timed out":
        if options.retry_failed:
            return "submit", "timed out; resubmitted (--retry-failed)"
        return "track", "timed out; tracked again"
    if stage == "failed":
        if options.retry_failed:
            return "submit", "failed; resubmitted (--retry-failed)"
        return "none", "failed for good (--retry-failed resubmits)"
    assert latest is not None  # done
    if options.download and not has_file(latest):
        if len(latest.results) > 1:
            return "download", f"succeeded; not all {len(latest.results)} results on disk"
        return "download", "succeeded; result not on disk"
    return "none", "done"


def _status(stage: Stage, latest: Attempt | None, download: bool) -> LedgerStatus:
    """The ledger status. With downloads on, `succeeded` means every result of the task is
    on disk and verified."""
    status = STAGE_STATUS[stage]
    if status == "succeeded" and download and latest is not None and not latest.downloaded:
        return "failed" if latest.error_code else "running"
    return status


def decide(
    job: Job,
    history: Sequence[Attempt],
    options: PlanOptions,
    has_file: FilePresent = _recorded,
) -> Decision:
    """What happens next to `job`, given every attempt ever made for its id."""
    current = tuple(a for a in history if a.fingerprint == job.fingerprint)
    latest = current[-1] if current else None
    stage = _stage(job, history, current, options.max_attempts)
    action, reason = _action(stage, latest, options, has_file)
    return Decision(job, stage, action, reason, _status(stage, latest, options.download), current)


def plan(
    manifest: Manifest,
    attempts: Mapping[str, Sequence[Attempt]],
    options: PlanOptions,
    has_file: FilePresent = _recorded,
) -> list[Decision]:
    """A decision for every job of the manifest, in manifest order."""
    return [decide(job, attempts.get(job.id, ()), options, has_file) for job in manifest.jobs]


@dataclass(frozen=True)
class Estimate:
    tasks: int
    credits: int
    unpriced: int  # tasks whose price is unknown (a model without a price rule)
    usd: float


def price_of(job: Job) -> int | None:
    """Credits one task of `job` costs, or None when its model has no known price."""
    return load_prices().credits_for(job.model, job.input)


def estimate(decisions: Sequence[Decision]) -> Estimate:
    """Credits the next run would commit to new submissions (an estimate: Kie's reported
    figure, where it gives one, is the truth)."""
    tasks = credits = unpriced = 0
    for decision in decisions:
        if decision.action != "submit":
            continue
        tasks += 1
        price = price_of(decision.job)
        if price is None:
            unpriced += 1
        else:
            credits += price
    return Estimate(tasks, credits, unpriced, credits * load_prices().credit_usd)
