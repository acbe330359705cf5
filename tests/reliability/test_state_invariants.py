"""State-machine tests: hypothesis interleaves Kie's answers (faults included), crashes of the
runner at any call, edits of the manifest and reruns, and checks after every step that

- a job (version) has at most one live task, and only its latest attempt can be live;
- a task id once stored is never lost, nor moved to another job;
- every create Kie saw is in the state, or is unknowable (answer lost, or a crash before the
  task id was committed) and then visible as such: an intent, or possible_duplicate;
- succeeded means a verified file (downloads are on), and a partial file is a prefix of the
  very video it is for.

The runner runs in-process against FakeKie (fake_kie.py): answers come from a script keyed by
fingerprint and task, and a crash stops everything at that call, like SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pipeline.cli.requests import Overrides, RunRequest
from pipeline.engine.planner import PlanOptions, decide
from pipeline.engine.runner import Runner
from pipeline.manifest import Manifest, Settings, load_manifest
from pipeline.results.download import part_path
from pipeline.state.store import Attempt, StateStore
from tests.support.fake_kie import (
    CREATE_ACTIONS,
    DOWNLOAD_ACTIONS,
    OUTCOMES,
    QUERY_ACTIONS,
    Crash,
    FakeKie,
    Script,
)

JOBS = 3
SCALE = 0.001
SETTINGS = Settings(max_attempts=2, concurrency=2)
RUN_TIMEOUT = 60.0  # a run that does not end is a hang: a failure, not a wait


def _manifest_text(ratios: list[str]) -> str:
    lines = ["version: 1", "defaults:", "  model: sora-2-text-to-video", "jobs:"]
    for i, ratio in enumerate(ratios):
        lines += [
            f"  - id: job-{i}",
            f"    prompt: A kite number {i}",
            f"    aspect_ratio: {ratio}",
        ]
    return "\n".join(lines) + "\n"


@st.composite
def scripts(draw: st.DrawFn, fingerprints: list[str]) -> Script:
    script = Script()
    for fp in fingerprints:
        script.creates[fp] = draw(st.lists(st.sampled_from(CREATE_ACTIONS), max_size=3))
        for n in range(3):
            script.outcomes[(fp, n)] = draw(st.sampled_from(OUTCOMES))
            script.queries[(fp, n)] = draw(st.lists(st.sampled_from(QUERY_ACTIONS), max_size=3))
            script.downloads[(fp, n)] = draw(
                st.lists(st.sampled_from(DOWNLOAD_ACTIONS), max_size=3)
            )
    return script


class RunnerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="reliability-sm-"))
        self.out = self.dir / "out"
        self.manifest_path = self.dir / "batch.yaml"
        self.ratios = ["landscape"] * JOBS
        self.manifest = self._write_manifest()
        self.kie = FakeKie()
        self.seen: dict[str, tuple[str, str]] = {}  # task id -> (job, fingerprint)
        self.runs = self.crashes = 0
        self.finished_clean = False
        self.may_leave = False  # the last run had faults: a job may wait for the next run

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _write_manifest(self) -> Manifest:
        self.manifest_path.write_text(_manifest_text(self.ratios))
        return load_manifest(self.manifest_path)

    # -- rules ---------------------------------------------------------------------------

    @rule(data=st.data())
    def run(self, data: st.DataObject) -> None:
        """A runner process: until it finishes, or the script kills it."""
        fps = sorted({job.fingerprint for job in self.manifest.jobs})
        script = data.draw(scripts(fps))
        crashed = asyncio.run(self._run(script))
        self.runs += 1
        self.crashes += crashed
        self.finished_clean = not crashed
        # A job whose creates met policy.AMBIGUOUS ambiguous answers is left for the next run.
        self.may_leave = True

    @rule(data=st.data())
    def rerun_without_faults(self, data: st.DataObject) -> None:
        crashed = asyncio.run(self._run(Script()))
        assert not crashed
        self.runs += 1
        self.finished_clean = True
        self.may_leave = False

    @rule(index=st.integers(0, JOBS - 1))
    def edit_job(self, index: int) -> None:
        """A new version of one job (another aspect ratio: a new fingerprint)."""
        self.ratios[index] = "portrait" if self.ratios[index] == "landscape" else "landscape"
        self.manifest = self._write_manifest()
        self.finished_clean = False

    async def _run(self, script: Script) -> bool:
        """One process lifetime. True when it was killed."""
        self.kie.start(script)
        assert self.kie.killed is not None
        request = RunRequest(
            self.manifest_path,
            out=self.out,
            time_scale=SCALE,
            seed=self.runs,
            overrides=Overrides(max_attempts=SETTINGS.max_attempts, concurrency=2),
        )
        store = StateStore.open(self.out / "state.sqlite", "fake")
        try:
            runner = Runner(
                self.manifest,
                request,
                store,
                self.kie,  # type: ignore[arg-type]
                self.out,
                lambda event: None,
            )
            runner.prepare()
            task = asyncio.create_task(runner.run())
            killed = asyncio.create_task(self.kie.killed.wait())
            done, _ = await asyncio.wait(
                {task, killed}, timeout=RUN_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
            assert done, "the run hung"
            killed.cancel()
            if task not in done:
                task.cancel()
            with contextlib.suppress(Crash, asyncio.CancelledError):
                await task
            if not self.kie.dead:
                summary = task.result()
                assert summary.stop_reason is None and not summary.interrupted
            return self.kie.dead
        finally:
            store.close()

    # -- invariants ----------------------------------------------------------------------

    def _state(self) -> dict[str, list[Attempt]]:
        path = self.out / "state.sqlite"
        if not path.exists():
            return {}
        with StateStore.open(path, readonly=True) as store:
            return store.attempts_by_job()

    @invariant()
    def tasks_are_never_lost(self) -> None:
        state = self._state()
        stored = {
            a.task_id: (a.job_id, a.fingerprint)
            for rows in state.values()
            for a in rows
            if a.task_id
        }
        for task_id, owner in self.seen.items():
            assert stored.get(task_id) == owner, f"task {task_id} of {owner} lost"
        for task_id, (_, fp) in stored.items():
            task = self.kie.tasks.get(task_id)
            assert task is not None and task.fingerprint == fp and task.answered, task_id
        self.seen = stored

    @invariant()
    def one_live_task_per_job_version(self) -> None:
        for rows in self._state().values():
            by_fp: dict[str, list[Attempt]] = {}
            for a in rows:
                by_fp.setdefault(a.fingerprint, []).append(a)
            for attempts in by_fp.values():
                live = [a for a in attempts if a.phase in ("intent", "submitted")]
                assert len(live) <= 1 and (not live or live[0] is attempts[-1]), attempts
                running = [
                    a for a in attempts if a.task_id and not self.kie.tasks[a.task_id].finished
                ]
                assert len(running) <= 1, running

    @invariant()
    def every_create_is_recorded_or_flagged(self) -> None:
        state = self._state()
        rows_by_fp: dict[str, list[Attempt]] = {}
        for rows in state.values():
            for a in rows:
                rows_by_fp.setdefault(a.fingerprint, []).append(a)
        for fp, tasks in self.kie.by_fp.items():
            rows = rows_by_fp.get(fp, [])
            ids = {a.task_id for a in rows}
            unrecorded = [t for t in tasks if t.task_id not in ids]
            assert all(not t.answered for t in unrecorded), unrecorded
            if unrecorded:  # known ambiguous: an intent still open, or a flag
                assert any(a.possible_duplicate or a.phase == "intent" for a in rows), fp
            flagged = any(a.possible_duplicate for a in rows)
            attempts = sum(1 for a in rows if a.task_id or a.phase == "intent")
            if not flagged and not any(a.phase == "intent" for a in rows):
                assert len(tasks) == attempts, (fp, tasks, rows)  # exactly once

    @invariant()
    def succeeded_means_a_verified_file(self) -> None:
        state = self._state()
        videos = self.out / "media"
        expected_parts: dict[str, bytes] = {}
        for job in self.manifest.jobs:
            plan = decide(job, state.get(job.id, ()), PlanOptions.of(SETTINGS))
            latest = plan.latest
            if plan.status == "succeeded":
                assert latest is not None and latest.task_id and latest.first
                assert latest.first.file and latest.downloaded
                data = (self.out / latest.first.file).read_bytes()
                assert data == self.kie.tasks[latest.task_id].content, job.id
                assert latest.first.sha256 == hashlib.sha256(data).hexdigest()
            elif self.finished_clean and not (self.may_leave and plan.stage == "ambiguous"):
                assert plan.status == "failed", (job.id, plan.stage)
            if latest is not None and latest.task_id:
                part = part_path(videos / job.id, latest.task_id)
                expected_parts[part.name] = self.kie.tasks[latest.task_id].content
        if videos.exists():
            for path in videos.iterdir():
                if path.name in expected_parts:
                    assert expected_parts[path.name].startswith(path.read_bytes()), path
                elif path.name == "takes":  # earlier versions' videos, each a recorded result
                    kept = {r.file for rows in state.values() for a in rows for r in a.results}
                    for take in path.rglob("*.mp4"):
                        assert take.relative_to(self.out).as_posix() in kept, take
                else:  # a finished video, or a part of an older version of the job
                    assert re.fullmatch(r"job-\d(\.mp4|\.[0-9a-f]{16}\.part)", path.name)

    @precondition(lambda self: self.runs > 0)
    @invariant()
    def state_file_is_sound(self) -> None:
        with StateStore.open(self.out / "state.sqlite", readonly=True) as store:
            assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _test_case(examples: int, steps: int) -> type:
    machine = type(f"Machine{examples}", (RunnerMachine,), {})
    machine.TestCase.settings = settings(  # type: ignore[attr-defined]
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    return machine.TestCase  # type: ignore[attr-defined, no-any-return]


TestRunnerStateMachine = _test_case(examples=40, steps=6)
TestRunnerStateMachineLong = pytest.mark.slow(_test_case(examples=300, steps=10))
