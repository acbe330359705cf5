"""Jobs held back in a run until the jobs they take input from have succeeded.

The planner says which jobs wait (`action == "wait"`); the runner hands them here. When an
upstream task succeeds, every held job whose upstream jobs are now all done is released to
the submitter at once (not at the end of the batch), within the usual pacing. When an
upstream job fails for good, the jobs held for it, and the jobs held for those, are let go:
they will not run in this run, and the planner shows them `blocked`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pipeline.engine.planner import Decision
from pipeline.manifest import Job


class Upstream:
    def __init__(self, jobs: Iterable[Job]) -> None:
        self.downstream: dict[str, list[str]] = {}  # job id -> ids of the jobs taking its input
        for job in jobs:
            for up in job.upstream:
                self.downstream.setdefault(up, []).append(job.id)
        self.held: dict[str, Decision] = {}

    def hold(self, decision: Decision) -> None:
        self.held[decision.job.id] = decision

    def succeeded(self, job_id: str, done: Callable[[str], bool]) -> list[Decision]:
        """`job_id`'s task succeeded: the held jobs now free to go (`done(id)`: whether that
        job's current version has a successful task)."""
        free = []
        for dependent in self.downstream.get(job_id, ()):
            decision = self.held.get(dependent)
            if decision is not None and all(done(up) for up in decision.job.upstream):
                del self.held[dependent]
                free.append(decision)
        return free

    def failed(self, job_id: str) -> list[str]:
        """`job_id` failed for good: the held jobs that can no longer run, transitively."""
        dropped: list[str] = []
        stack = list(self.downstream.get(job_id, ()))
        while stack:
            dependent = stack.pop()
            if self.held.pop(dependent, None) is not None:
                dropped.append(dependent)
                stack.extend(self.downstream.get(dependent, ()))
        return dropped
