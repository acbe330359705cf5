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
from pathlib import Path

from pipeline.cli.requests import RunRequest
from pipeline.engine.control import RunControl
from pipeline.engine.diskguard import DiskGuard
from pipeline.engine.downloader import Downloader
from pipeline.engine.inputs import Inputs, succeeded_task
from pipeline.engine.journal import Journal
from pipeline.engine.planner import Decision, PlanOptions, decide, plan, price_of
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
from pipeline.state.store import Attempt, StateStore


@dataclass
class RunSummary:
    decisions: list[Decision]
    stop_reason: str | None = None  # set when the account or service stopped the run
    interrupted: bool = False
    credits_committed: int = 0
    queries: int = 0
    creates: int = 0
    # What Kie itself reported (creditsConsumed) for the tasks that ended in this run.
    credits_reported: float = 0.0
    reported_tasks: int = 0
    # Models Kie said are paused or unknown in this run, with its message.
    unavailable: dict[str, str] = field(default_factory=dict)


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
        self.inputs = Inputs(self.journal, client, self.queries, timing, self.jobs, rng, files)
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
        self.credits_committed = 0  # this run: reserved when a create starts
        self.credits_before = 0  # earlier runs, for the current jobs (the batch budget)
        self.credits_reported = 0.0  # Kie's creditsConsumed of the tasks ended in this run
        self.reported_tasks = 0

    # -- what the run does ---------------------------------------------------------------

    def decisions(self) -> list[Decision]:
        options = self.plan_options.in_run() if self.started else self.plan_options
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
        price = price_of(submission.job) or 0
        budget = self.settings.max_credits
        if budget is not None and self.credits_before + self.credits_committed + price > budget:
            self.control.stop(
                f"credit budget of {budget} reached; the rest stays pending", hard=False
            )
            return False
        submission.credits = price
        self.credits_committed += price
        return True

    def _release(self, submission: Submission) -> None:
        self.credits_committed -= submission.credits
        submission.credits = 0

    async def check_balance(self) -> None:
        """Before the first create: refuse to start a batch the balance cannot pay for."""
        held = [d.job for d in self.upstream.held.values()]
        needed = sum(price_of(j) or 0 for j in [s.job for s in self.submitter.ready] + held)
        if self.settings.max_credits is not None:
            needed = min(needed, max(self.settings.max_credits - self.credits_before, 0))
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
        self.emit(
            Event("info", detail=f"balance {balance:g} credits; this run needs up to {needed}")
        )
        if balance < needed and not self.request.partial:
            self.control.stop(
                f"the balance ({balance:g} credits) is short of the {needed} this run "
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
            self.credits_reported += info.credits
            self.reported_tasks += 1
        for decision in self.upstream.succeeded(job.id, self._done_upstream):
            if not self.control.stop_submitting:
                self.emit(Event("info", decision.job.id, detail=f"{job.id} succeeded: ready"))
                self._queue(decision)
        if self.settings.download:
            self.downloader.enqueue(job, attempt)

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
        job = self.jobs[job_id]
        return succeeded_task(job, self.journal.attempts(job_id)) is not None

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
        )
