"""One run of a batch: the parts, put together.

The runner asks the planner what each job needs, hands each job to the part that does it
(submitter, tracker, downloader), keeps the batch's money rules (balance check, budget) and
decides, when a task fails, whether the job goes round again. Everything durable goes
through the journal; everything shared about stopping through the run control. It reports
through events and never prints.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from pipeline.cli.requests import RunRequest
from pipeline.engine.control import RunControl
from pipeline.engine.diskguard import DiskGuard
from pipeline.engine.downloader import Downloader
from pipeline.engine.inputs import Inputs
from pipeline.engine.journal import Journal
from pipeline.engine.liveplan import LivePlan
from pipeline.engine.planner import Decision, PlanOptions, decide, plan, price_of, succeeded_task
from pipeline.engine.stopping import gather_until_stopped
from pipeline.engine.submitter import Submission, Submitter
from pipeline.engine.timing import Timing
from pipeline.engine.tracker import Tracker
from pipeline.engine.uploader import Uploader
from pipeline.engine.upstream import Upstream
from pipeline.events import Event, Listener, RunTotals
from pipeline.kie import client as kie
from pipeline.kie.pacing import SlidingWindowLimiter
from pipeline.kie.policy import Action, verdict
from pipeline.kie.uploads import UploadClient
from pipeline.manifest import Job, Manifest
from pipeline.models.pricing import as_credits, credits_text
from pipeline.state.store import Attempt, StateStore


@dataclass
class RunSummary:
    decisions: list[Decision]
    stop_reason: str | None = None  # set when the account or service stopped the run
    interrupted: bool = False
    # This run's estimate: the price of each task it made or may have made, counted once.
    credits_committed: Decimal = Decimal(0)
    queries: int = 0
    creates: int = 0  # createTask calls, refused and unanswered ones included
    # What Kie itself reported (creditsConsumed) for the tasks that ended in this run.
    credits_reported: Decimal = Decimal(0)
    reported_tasks: int = 0
    # Models Kie said are paused or unknown in this run, with its message.
    unavailable: dict[str, str] = field(default_factory=dict)
    created: int = 0  # tasks made in this run (a task id answered)


class Runner:
    def __init__(
        self,
        manifest: Manifest,
        request: RunRequest,
        store: StateStore,
        client: kie.KieClient,
        folder: Path,
        emit: Listener,
        uploads: UploadClient | None = None,  # the file host, for {file: ...} inputs
        disk: DiskGuard | None = None,
    ) -> None:
        self.manifest = manifest
        self.jobs = {job.id: job for job in manifest.jobs}
        self.request = request
        self.settings = settings = request.settings(manifest)  # in real seconds
        self.plan_options = PlanOptions.of(settings, retry_failed=request.retry_failed)
        self.timing = timing = Timing.of(settings, request.scale)
        self.client = client
        self.emit = emit
        rng = random.Random(request.seed)
        self.journal = Journal(store, emit)
        self.control = RunControl(emit, timing.outage_give_up)
        self.creates = SlidingWindowLimiter(timing.create_rate, rng=rng)
        self.queries = SlidingWindowLimiter(timing.query_rate, rng=rng)
        self.downloader = Downloader(
            self.journal,
            client,
            self.control,
            self.queries,
            timing,
            folder,
            rng,
            frozenset(j.id for j in manifest.jobs),
            on_done=self._downloaded,
            max_download_mb=settings.max_download_mb,
            room=disk.download_room if disk else None,
        )
        self.tracker = Tracker(
            self.journal,
            client,
            self.control,
            self.queries,
            timing,
            on_success=self._succeeded,
            on_failure=self._failed,
            callbacks=request.callback_url is not None,
            concurrency=settings.concurrency,
        )
        # Local input files ({file: PATH}) are uploaded for the jobs about to be submitted.
        self.uploader = (
            Uploader(self.journal, uploads, self.control, timing, rng) if uploads else None
        )
        files = self.uploader.url_for if self.uploader else None
        self.inputs = Inputs(
            self.journal,
            client,
            self.queries,
            timing,
            self.jobs,
            rng,
            files,
            download=settings.download,
        )
        self.upstream = Upstream(manifest.jobs)
        self.started = False  # prepare() has run: --retry-failed is used up
        self.submitter = Submitter(
            self.journal,
            client,
            self.control,
            self.creates,
            timing,
            rng,
            callback_url=request.callback_url,
            room=self._room,
            admit=self._admit,
            release=self._release,
            on_submitted=self._submitted,
            inputs=self.inputs.resolver,
            files=files,
            disk=disk,
        )
        # The decisions the periodic outputs show, re-made only where the history moved.
        self.live = LivePlan(manifest, self.journal, self.current_options, self.downloader.has_file)
        # Decimals, as Kie's prices are (24.8 per second): budgets add up without drift.
        self.credits_committed = Decimal(0)  # this run: reserved when a create starts
        self.credits_before = Decimal(0)  # earlier runs, for the current jobs (the budget)
        self.credits_reported = Decimal(0)  # Kie's creditsConsumed of the tasks ended here
        self.reported_tasks = 0

    # -- what the run does ---------------------------------------------------------------

    def current_options(self) -> PlanOptions:
        """--retry-failed is used up once the run has started."""
        return self.plan_options.in_run() if self.started else self.plan_options

    def decisions(self) -> list[Decision]:
        options = self.current_options()
        return plan(self.manifest, self.journal.history, options, self.downloader.has_file)

    def prepare(self) -> RunTotals:
        """Hand every job to the part its decision names."""
        now = time.monotonic()
        counts = {"submit": 0, "track": 0, "download": 0}
        for decision in self.decisions():
            job, latest = decision.job, decision.latest
            self.credits_before += (price_of(job) or 0) * decision.attempts
            if decision.action == "submit":
                self._queue(decision)
            elif decision.action == "wait":
                self.upstream.hold(decision)
                counts["submit"] += 1
                continue
            elif decision.action == "track":
                assert latest is not None
                self.tracker.track(job, latest, now)
            elif decision.action == "download":
                assert latest is not None
                self.downloader.enqueue(job, latest)
            else:
                continue
            counts[decision.action] += 1
        self.started = True
        return RunTotals(
            len(self.manifest.jobs), counts["submit"], counts["track"], counts["download"]
        )

    def _queue(self, decision: Decision) -> None:
        latest = decision.latest
        submission = Submission(decision.job, len(decision.current) + 1)
        if latest is not None and latest.phase == "intent":
            # An earlier run wrote the intent and may have sent the create: the next try
            # counts on the same row and flags it.
            submission = Submission(decision.job, latest.attempt, latest, ambiguous=True)
        self.submitter.add(submission)

    # -- money ---------------------------------------------------------------------------

    def _admit(self, submission: Submission) -> bool:
        """Count the job's price before its create: once per task that may exist, so a
        try after a 429 or a refused connection (released) is counted again, and a try
        after one that may have reached Kie (still reserved) is not."""
        if submission.reserved:
            return True
        price = price_of(submission.job) or Decimal(0)
        budget = self.settings.max_credits
        if budget is not None and self.credits_before + self.credits_committed + price > budget:
            if self.submitter.in_flight:  # they may give their reservation back (a 429, an
                return False  # outage): the budget is reached only by what may exist
            self.control.stop(
                f"credit budget of {credits_text(budget)} reached; the rest stays pending",
                hard=False,
            )
            return False
        submission.credits = price
        submission.reserved = True
        self.credits_committed += price
        return True

    def _release(self, submission: Submission) -> None:
        if not submission.reserved:  # released once; a later admit counts it again
            return
        self.credits_committed -= submission.credits
        submission.credits = Decimal(0)
        submission.reserved = False

    async def check_balance(self) -> None:
        """Before the first create: refuse to start a batch the balance cannot pay for."""
        held = [d.job for d in self.upstream.held.values()]
        jobs = [s.job for s in self.submitter.ready] + held
        needed = sum((price_of(j) or Decimal(0) for j in jobs), Decimal(0))
        if self.settings.max_credits is not None:
            needed = min(needed, max(self.settings.max_credits - self.credits_before, Decimal(0)))
        if not needed:
            return
        try:
            async with self.queries.slot():
                balance = await self.client.credit()
        except kie.KieError as exc:
            what = verdict(exc, "query")
            if what.action is Action.STOP and what.hard:  # the key refused, the URL wrong
                self.control.stop(what.stop or exc.message, hard=True)
            else:  # the balance is a courtesy check: the creates will say what they must
                self.emit(Event("warning", detail=f"could not read the balance: {exc.message}"))
            return
        have, need = credits_text(balance), credits_text(needed)
        self.emit(Event("info", detail=f"balance {have} credits; this run needs up to {need}"))
        if as_credits(balance) < needed and not self.request.partial:
            self.control.stop(
                f"the balance ({have} credits) is short of the {need} this run "
                "needs; top up, or pass --partial to submit what it covers",
                hard=False,
            )

    # -- hand-offs between the parts -----------------------------------------------------

    def _room(self) -> bool:
        return len(self.tracker.active) + self.submitter.creating < self.settings.concurrency

    def _submitted(self, job: Job, attempt: Attempt) -> None:
        self.tracker.track(job, attempt, time.monotonic())

    def _succeeded(self, job: Job, attempt: Attempt, info: kie.TaskInfo) -> None:
        if info.credits is not None:
            self.credits_reported += as_credits(info.credits)
            self.reported_tasks += 1
        if self.settings.download and attempt.results:  # its takers wait for the download
            self.downloader.enqueue(job, attempt)
        else:  # no download (off, or a result that is not a file): checked already
            self._release_downstream(job)

    def _release_downstream(self, job: Job) -> None:
        """`job`'s result is checked: the jobs held for it (and only it) may go."""
        for decision in self.upstream.succeeded(job.id, self._done_upstream):
            if not self.control.stop_submitting:
                self.emit(Event("info", decision.job.id, detail=f"{job.id} succeeded: ready"))
                self._queue(decision)

    def _downloaded(self, job: Job, attempt: Attempt) -> None:
        """`job`'s downloads ended: whole, its results are checked and the jobs taking them
        go; else those jobs cannot run in this run (blocked when the result was refused)."""
        if attempt.downloaded:
            self._release_downstream(job)
            return
        for dependent in self.upstream.failed(job.id):
            why = attempt.error_message or "its result could not be downloaded"
            self.emit(Event("info", dependent, detail=f"not submitted: {job.id}: {why}"))

    def _failed(self, job: Job, attempt: Attempt) -> None:
        """A task failed: the job goes round again while it has attempts left."""
        decision = decide(job, self.journal.attempts(job.id), self.plan_options.in_run())
        if decision.stage == "retry" and not self.control.stop_submitting:
            self.emit(Event("info", job.id, detail="retrying: " + decision.reason))
            self.submitter.add(Submission(job, len(decision.current) + 1))
        elif decision.stage == "failed":
            for dependent in self.upstream.failed(job.id):
                self.emit(Event("info", dependent, detail=f"blocked: {job.id} failed"))

    def _done_upstream(self, job_id: str) -> bool:
        """`job_id`'s current version succeeded and its results are checked (downloaded,
        when the run downloads)."""
        job = self.jobs[job_id]
        task = succeeded_task(job, self.journal.attempts(job_id))
        return task is not None and (not self.settings.download or task.downloaded)

    # -- the run -------------------------------------------------------------------------

    def interrupt(self) -> None:
        self.control.interrupt()

    def poll_now(self, task_id: str) -> None:
        self.tracker.poll_now(task_id)

    @property
    def revision(self) -> int:
        return self.journal.revision

    def _done(self) -> bool:
        if self.control.over:
            return True
        return self.submitter.idle and self.tracker.idle and self.downloader.idle

    async def run(self) -> RunSummary:
        await gather_until_stopped([asyncio.ensure_future(self.check_balance())], self.control)
        loops = [
            self.submitter.run(self._done),
            self.tracker.run(self._done),
            self.downloader.run(self._done),
        ]
        tasks = [asyncio.ensure_future(loop) for loop in loops]
        try:
            await gather_until_stopped(tasks, self.control)  # an interrupt: within seconds
        except BaseException:
            # One loop failed, or the run was cancelled: end the others before going on.
            # They are told to stop as well as cancelled, because asyncio.wait_for (in
            # control.wait) can swallow a cancellation (Python < 3.12), and a loop that lost
            # its cancellation would otherwise keep the process alive forever.
            self.control.aborted = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            self.tracker.flush_progress(force=True)
            if self.uploader is not None:
                await self.uploader.close()
        if self.control.fatal is not None:
            raise self.control.fatal
        return RunSummary(
            self.decisions(),
            self.control.stop_reason,
            self.control.interrupted,
            self.credits_committed,
            self.queries.calls,
            self.creates.calls,
            self.credits_reported,
            self.reported_tasks,
            dict(self.submitter.unavailable),
            self.submitter.created,
        )
