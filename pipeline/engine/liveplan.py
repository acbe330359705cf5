"""Every job's decision during a run, kept current at the cost of what changed.

The periodic ledger used to re-decide the whole batch at every write: at 20,000 jobs that is
20,000 decisions every few seconds for the handful of jobs that moved. A decision depends on
the job's own history and, for a job that takes another job's result, on the decisions of
its upstream jobs (`planner.plan`). So only the jobs whose history changed (the journal
marks them) and the jobs downstream of those can decide differently: `refresh` decides those
again, in dependency order, and leaves the rest. The result is what `planner.plan` would
answer at that moment (tests/engine/test_live_outputs.py checks it), except for a file a
user deletes by hand during the run, which the final, whole `plan` sees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pipeline.engine.journal import Journal
from pipeline.engine.planner import Decision, FilePresent, PlanOptions, decide, dependency_order
from pipeline.manifest import Manifest


class LivePlan:
    def __init__(
        self,
        manifest: Manifest,
        journal: Journal,
        options: Callable[[], PlanOptions],
        has_file: FilePresent,
    ) -> None:
        self.journal = journal
        self.options = options
        self.has_file = has_file
        self.jobs = {job.id: job for job in manifest.jobs}
        self.position = {job.id: n for n, job in enumerate(manifest.jobs)}
        self.rank = {job.id: n for n, job in enumerate(dependency_order(manifest.jobs))}
        self.dependents: dict[str, list[str]] = {}
        for job in manifest.jobs:
            for upstream in job.upstream:
                self.dependents.setdefault(upstream, []).append(job.id)
        self.decided: dict[str, Decision] = {}
        self.decided_with: PlanOptions | None = None

    def refresh(self) -> list[Decision]:
        """Decide again what may have changed since the last call (the first call, or a
        change of options, decides every job); the decisions made, in manifest order."""
        changed = self.journal.take_changed()
        options = self.options()
        if options != self.decided_with:
            changed, self.decided_with = set(self.jobs), options
        again = self._downstream(changed)
        for job_id in sorted(again, key=self.rank.__getitem__):  # upstream jobs first
            job = self.jobs[job_id]
            upstream = self.decided if job.upstream else None
            attempts = self.journal.attempts(job_id)
            self.decided[job_id] = decide(job, attempts, options, self.has_file, upstream)
        return [self.decided[job_id] for job_id in sorted(again, key=self.position.__getitem__)]

    def _downstream(self, changed: Iterable[str]) -> set[str]:
        """The changed jobs of the manifest and every job that takes their input, however
        far down the chain."""
        found: set[str] = set()
        stack = [job_id for job_id in changed if job_id in self.jobs]
        while stack:
            job_id = stack.pop()
            if job_id not in found:
                found.add(job_id)
                stack.extend(self.dependents.get(job_id, ()))
        return found
