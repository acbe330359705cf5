"""The one place that decides what happens to each job next.

`decide` reads a job's history from the state file and the run's options and answers with a
`Decision`: the stage its history is at, the action the next run takes (submit, track,
download, wait, nothing), why, and the ledger status. `--dry-run`, `status`, the ledger, the
runner and the run summary all ask it, so what a dry run announces is what a run does.

A job that takes another job's result or task (`Job.upstream`) is decided after those jobs,
by `plan`: one that needs a new task waits until every upstream job's task has succeeded,
and is `blocked` (never submitted, costs nothing) once one of them has failed for good.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from pipeline.engine.moderation import EDIT_THE_PROMPT, moderated
from pipeline.manifest import Job, Manifest, OnAmbiguous, Settings
from pipeline.models.registry import CREDIT_USD
from pipeline.state.store import Attempt, StoredResult
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
    # Earlier takes: the job's other attempts whose results are on disk, newest first.
    takes: tuple[Attempt, ...] = ()

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


def current_attempts(job: Job, history: Sequence[Attempt]) -> tuple[Attempt, ...]:
    """The attempts of `job`'s current version (its fingerprint), oldest first."""
    return tuple(a for a in history if a.fingerprint == job.fingerprint)


def succeeded_task(job: Job, history: Sequence[Attempt]) -> Attempt | None:
    """The successful task of `job`'s current version, or None: the one predicate of "this
    upstream is done" (the planner's stage `done`, the inputs' `{output:}`/`{task:}`)."""
    current = current_attempts(job, history)
    latest = current[-1] if current else None
    return latest if latest is not None and _done(latest) else None


def _done(latest: Attempt) -> bool:
    return latest.phase == "succeeded" and latest.task_id is not None


def _stage(job: Job, history: Sequence[Attempt], current: Sequence[Attempt], limit: int) -> Stage:
    if not current:
        return "changed" if history else "new"
    latest = current[-1]
    if latest.phase == "intent":
        return "ambiguous"
    if latest.phase == "submitted":
        return "in_flight"
    if latest.phase == "timed_out":
        return "timed_out"
    if _done(latest):
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
    if stage == "in_flight":
        return "track", "submitted; tracked to the end"
    if stage == "timed_out":
        if options.retry_failed:
            return "submit", "timed out; resubmitted (--retry-failed)"
        return "track", "timed out; tracked again"
    if stage == "failed":
        if latest is not None and moderated(latest):  # until the job is edited
            return "none", EDIT_THE_PROMPT
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
    upstream: Mapping[str, Decision] | None = None,
) -> Decision:
    """What happens next to `job`, given every attempt ever made for its id.

    `upstream`: the decisions of the jobs it takes input from (at least those of
    `job.upstream`); without them the job is decided on its own history alone.
    """
    current = current_attempts(job, history)
    latest = current[-1] if current else None
    stage = _stage(job, history, current, options.max_attempts)
    action, reason = _action(stage, latest, options, has_file)
    takes = sorted(
        (a for a in history if a is not latest and a.downloaded and a.results),
        key=lambda a: a.finished_at,
        reverse=True,
    )
    if stage == "changed" and takes and options.download:
        reason += "; the last result stays, as an earlier take"
    status = _status(stage, latest, options.download)
    decision = Decision(job, stage, action, reason, status, current, tuple(takes))
    if upstream is None or not job.upstream or action != "submit":
        return decision  # a task of this version exists: it was made from its inputs
    return _gate(decision, [upstream[u] for u in job.upstream if u in upstream])


def failed_for_good(decision: Decision) -> bool:
    """Nothing more will be tried for this job unless the user acts (an edit, or
    --retry-failed), or its result was refused for good (a wrong type, a refused host: the
    same checks a downstream's input must pass): the jobs that take its result are blocked."""
    latest = decision.latest
    refused = decision.stage == "done" and decision.status == "failed"
    return (
        decision.status == "blocked"
        or (decision.stage == "failed" and decision.action == "none")
        or (refused and latest is not None and latest.permanent)
    )


def _why(upstream: Decision) -> str:
    if upstream.status == "blocked":
        return f"{upstream.job.id} is blocked ({upstream.reason.removeprefix('blocked: ')})"
    latest = upstream.latest
    code = latest.error_code if latest else None
    message = (latest.error_message if latest else None) or "no reason given"
    return f"{upstream.job.id} failed ({code + ': ' if code else ''}{message})"


def _gate(decision: Decision, upstream: Sequence[Decision]) -> Decision:
    """A job that needs a new task, seen against the jobs it takes input from."""
    blockers = [u for u in upstream if failed_for_good(u)]
    if blockers:
        return replace(
            decision, action="none", status="blocked", reason="blocked: " + _why(blockers[0])
        )
    # Done means its result is checked: on disk with downloads on (status succeeded).
    waiting = [u for u in upstream if u.status != "succeeded"]
    if waiting:
        names = ", ".join(f"{u.job.id} ({u.status})" for u in waiting)
        return replace(decision, action="wait", reason=f"waiting for {names}")
    return decision


def dependency_order(jobs: Sequence[Job]) -> list[Job]:
    """`jobs` with every upstream job before the jobs that take its input (validation has
    ruled out cycles); iterative, so a chain of any length is fine."""
    by_id = {j.id: j for j in jobs}
    done: set[str] = set()
    order: list[Job] = []
    for job in jobs:
        stack = [job]
        while stack:
            top = stack[-1]
            if top.id in done:
                stack.pop()
                continue
            ahead = [by_id[u] for u in top.upstream if u in by_id and u not in done]
            if ahead:
                stack.extend(ahead)
                continue
            done.add(top.id)
            order.append(top)
            stack.pop()
    return order


def plan(
    manifest: Manifest,
    attempts: Mapping[str, Sequence[Attempt]],
    options: PlanOptions,
    has_file: FilePresent = _recorded,
) -> list[Decision]:
    """A decision for every job of the manifest, in manifest order. Upstream jobs are
    decided first, so that a job taking their input can wait for them or be blocked."""
    decided: dict[str, Decision] = {}
    for job in dependency_order(manifest.jobs):
        upstream = decided if job.upstream else None
        decided[job.id] = decide(job, attempts.get(job.id, ()), options, has_file, upstream)
    return [decided[job.id] for job in manifest.jobs]


@dataclass(frozen=True)
class Estimate:
    tasks: int
    credits: Decimal
    unpriced: int  # tasks whose price is unknown (a model without a price rule)
    usd: Decimal
    waiting: int = 0  # of the tasks, those submitted once the jobs they wait for succeed


def price_of(job: Job) -> Decimal | None:
    """Credits one task of `job` costs (estimated from its model file's price rule, filled
    in by the loader), or None when its model has no known price."""
    return job.credits


def unpriced_jobs(decisions: Sequence[Decision]) -> list[Decision]:
    """The jobs the next run would submit, at every stage of a pipeline, whose price is
    unknown: what `max_credits` refuses (a budget cannot be kept blindly)."""
    return [d for d in decisions if d.action in ("submit", "wait") and price_of(d.job) is None]


def estimate(decisions: Sequence[Decision]) -> Estimate:
    """Credits the next run would commit to new submissions, those of jobs waiting for
    other jobs included (an estimate: Kie's reported figure, where it gives one, is the
    truth). A blocked job costs nothing."""
    tasks = unpriced = waiting = 0
    credits = Decimal(0)
    for decision in decisions:
        if decision.action not in ("submit", "wait"):
            continue
        tasks += 1
        waiting += decision.action == "wait"
        price = price_of(decision.job)
        if price is None:
            unpriced += 1
        else:
            credits += price
    return Estimate(tasks, credits, unpriced, credits * CREDIT_USD, waiting)
