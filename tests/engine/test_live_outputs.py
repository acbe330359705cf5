"""Outputs written in proportion to what changed (issue 27): the run's live decisions
(`LivePlan`) are what the whole plan would say, and the periodic ledger (`LiveOutputs`) is a
journal whose last line per job is the row a whole write would show, never with half a line,
written whole again when it doubles or is not as it was left."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli.main import main
from pipeline.engine.journal import Journal
from pipeline.engine.liveplan import LivePlan
from pipeline.engine.planner import Decision, PlanOptions, decide, plan
from pipeline.engine.timing import Timing
from pipeline.manifest import Job, Manifest, Settings
from pipeline.outputs import ledger
from pipeline.outputs.live import LiveOutputs
from pipeline.state.store import Attempt, StateStore, StoredResult
from tests.support.batch import MakeBatch, batch_factory
from tests.support.factories import attempt, make_job
from tests.support.manifests import jobs_yaml


@pytest.fixture
def make_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeBatch]:
    yield from batch_factory(tmp_path, monkeypatch)


def manifest_of(jobs: list[Job]) -> Manifest:
    return Manifest(Path("m.yaml"), "m", Settings(), tuple(jobs))


# -- LivePlan ---------------------------------------------------------------------------


def chain_manifest() -> Manifest:
    """Independent jobs, a chain a -> b -> c (each takes the one before's result), and x ->
    y, where x is refused for good (see `step`)."""
    jobs = [make_job(f"solo-{n}", f"A boat number {n}") for n in range(6)]
    a, b, c, x, y = (make_job(name, f"Step {name}") for name in "abcxy")
    chain = [a, replace(b, upstream=("a",)), replace(c, upstream=("b",))]
    return manifest_of([*jobs, *chain, x, replace(y, upstream=("x",))])


def step(journal: Journal, job: Job, rng: random.Random) -> bool:
    """One transition of `job`, whichever its history allows (False: it is done)."""
    history = [a for a in journal.attempts(job.id) if a.fingerprint == job.fingerprint]
    latest = history[-1] if history else None
    ready = all(any(a.phase == "succeeded" for a in journal.attempts(up)) for up in job.upstream)
    if latest is not None and latest.permanent:
        return False  # failed for good: the jobs that take its result are blocked
    if latest is None or latest.phase in ("failed", "timed_out"):
        if not ready:
            return False  # as the runner: a job waits for the jobs it takes input from
        journal.intend(job, len(history) + 1)
    elif latest.phase == "intent":
        choice = 1.0 if job.id == "x" else rng.random()
        if choice < 0.7:
            journal.submitted(job, latest, f"task-{latest.id}")
        elif choice < 0.85:
            journal.withdraw(job, latest, "refused")
        else:
            journal.create_failed(job, latest, "bad input", code="422", permanent=True)
    elif latest.phase == "submitted":
        if rng.random() < 0.7:
            journal.succeeded(job, latest, "generating", [f"https://f/{job.id}.mp4"], 20)
        else:
            journal.failed(job, latest, "generating", code="500", message="x", permanent=False)
    elif latest.phase == "succeeded" and not latest.downloaded:
        stored = StoredResult(1, None, f"media/{job.id}.mp4", "ab" * 32, 10, "video/mp4")
        journal.result_downloaded(job, latest, 1, stored)
    else:
        return False
    return True


def test_the_live_plan_is_the_whole_plan_at_every_step(tmp_path: Path) -> None:
    manifest = chain_manifest()
    rng = random.Random(5)
    options = [PlanOptions(retry_failed=True)]
    with StateStore.open(tmp_path / "state.sqlite", "http://kie") as store:
        journal = Journal(store, lambda event: None)
        live_plan = LivePlan(manifest, journal, lambda: options[0], lambda a: a.downloaded)
        assert len(live_plan.refresh()) == len(manifest.jobs)  # the first call: every job
        seen: set[str] = set()
        for n in range(300):
            if n == 150:
                options[0] = options[0].in_run()  # the run started: every job again
            picked = rng.sample(manifest.jobs, rng.randint(0, 2))
            touched = [job for job in picked if step(journal, job, rng)]
            remade = live_plan.refresh()
            whole = plan(manifest, journal.history, options[0], lambda a: a.downloaded)
            assert [live_plan.decided[j.id] for j in manifest.jobs] == whole, n
            seen |= {d.status for d in whole}
            if n != 150:  # proportional: the jobs touched and those downstream, no more
                below = {"a": {"a", "b", "c"}, "b": {"b", "c"}, "x": {"x", "y"}}
                expected = set().union(*(below.get(j.id, {j.id}) for j in touched))
                assert {d.job.id for d in remade} == expected, n
        assert seen == {"pending", "running", "succeeded", "failed", "blocked"}, seen


# -- LiveOutputs ------------------------------------------------------------------------


def decisions_for(jobs: list[Job], phases: dict[str, str]) -> list[Decision]:
    options = PlanOptions()
    return [decide(job, attempts_of(job, phases.get(job.id)), options) for job in jobs]


_made: dict[tuple[str, str], Attempt] = {}


def attempts_of(job: Job, phase: str | None) -> list[Attempt]:
    """The job's one attempt, in `phase` (the same row each time it is asked for)."""
    if phase is None:
        return []
    if (job.id, phase) not in _made:
        extra = {"error_code": "500", "error_message": "boom"} if phase == "failed" else {}
        _made[job.id, phase] = attempt(job, phase, **extra)  # type: ignore[arg-type]
    return [_made[job.id, phase]]


def collapsed(folder: Path, jobs: list[Job]) -> tuple[str, str]:
    """ledger.jsonl and ledger.csv as a whole write would have them: each job's last line,
    in manifest order (every line must be whole)."""
    text = (folder / "ledger.jsonl").read_text()
    assert text.endswith("\n")
    last = {}
    for line in text.splitlines(keepends=True):
        last[json.loads(line)["id"]] = line
    csv_lines = (folder / "ledger.csv").read_text().splitlines(keepends=True)
    by_id = {line.split(",", 1)[0]: line for line in csv_lines[1:]}
    return (
        "".join(last[j.id] for j in jobs),
        csv_lines[0] + "".join(by_id[j.id] for j in jobs),
    )


def rendered(decisions: list[Decision]) -> tuple[str, str]:
    return ledger.render([ledger.row(d) for d in decisions])


def test_the_ledger_grows_by_the_changed_rows_only(tmp_path: Path) -> None:
    jobs = [make_job(f"job-{n:03d}", f"A boat number {n}") for n in range(300)]
    outputs = LiveOutputs(tmp_path, manifest_of(jobs))
    phases: dict[str, str] = {}
    first = decisions_for(jobs, phases)
    outputs.write(first)
    assert (outputs.writes["whole"], outputs.writes["gallery"]) == (1, 1)
    files = ((tmp_path / "ledger.jsonl").read_text(), (tmp_path / "ledger.csv").read_text())
    assert files == rendered(first)
    page = os.stat(tmp_path / "index.html")
    size = (tmp_path / "ledger.jsonl").stat().st_size
    phases.update({"job-000": "submitted", "job-007": "succeeded", "job-299": "failed"})
    now = decisions_for(jobs, phases)
    changed = [now[0], now[7], now[299], now[5]]  # job-005 handed in, but unchanged
    outputs.write(changed)
    assert outputs.writes == {"whole": 1, "append": 1, "gallery": 1}
    lines = [ledger.jsonl_line(ledger.row(d)) for d in changed[:3]]
    assert (tmp_path / "ledger.jsonl").stat().st_size == size + len("".join(lines).encode())
    assert collapsed(tmp_path, jobs) == rendered(now)
    assert os.stat(tmp_path / "index.html").st_ino == page.st_ino  # 3 of 300: not rewritten
    outputs.write([now[1]])  # nothing new: nothing written
    assert outputs.writes["append"] == 1


def test_the_gallery_follows_half_the_batch_and_the_ledger_is_rewritten_when_doubled(
    tmp_path: Path,
) -> None:
    jobs = [make_job(f"job-{n:03d}", f"A boat number {n}") for n in range(300)]
    outputs = LiveOutputs(tmp_path, manifest_of(jobs))
    outputs.write(decisions_for(jobs, {}))
    phases: dict[str, str] = {}
    for phase in ("submitted", "succeeded"):
        for n in range(0, 300, 10):  # ten at a time, as jobs move during a run
            phases.update({j.id: phase for j in jobs[n : n + 10]})
            now = decisions_for(jobs, phases)
            outputs.write(now[n : n + 10])
            assert collapsed(tmp_path, jobs) == rendered(now)
    # 600 rows changed: the page was written at the start and about every 150 changes.
    assert outputs.writes["gallery"] == 1 + 600 // 150
    # The appended rows outgrew the whole files once at least: written whole again.
    assert outputs.writes["whole"] >= 2
    assert outputs.appended < outputs.whole
    assert (tmp_path / "ledger.jsonl").stat().st_size < 2 * outputs.whole


@pytest.mark.parametrize("tamper", ["deleted", "replaced", "appended"])
def test_a_ledger_not_as_it_was_left_is_written_whole(tmp_path: Path, tamper: str) -> None:
    jobs = [make_job(f"job-{n}", f"A boat number {n}") for n in range(5)]
    outputs = LiveOutputs(tmp_path, manifest_of(jobs))
    outputs.write(decisions_for(jobs, {}))
    path = tmp_path / "ledger.jsonl"
    if tamper == "deleted":
        path.unlink()
    elif tamper == "replaced":
        path.write_text('{"id": "someone else\'s"}\n')
    else:
        with path.open("a") as handle:
            handle.write('{"id": "job-1", "status": "made up"}\n')
    now = decisions_for(jobs, {"job-2": "succeeded"})
    outputs.write([now[2]])
    assert outputs.writes["whole"] == 2
    assert (path.read_text(), (tmp_path / "ledger.csv").read_text()) == rendered(now)


def test_an_append_that_fails_leaves_no_half_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = [make_job(f"job-{n}", f"A boat number {n}") for n in range(5)]
    outputs = LiveOutputs(tmp_path, manifest_of(jobs))
    outputs.write(decisions_for(jobs, {}))
    before = (tmp_path / "ledger.jsonl").read_bytes()
    real = os.write
    calls: list[int] = []

    def full_disk(fd: int, data: Any) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real(fd, bytes(data[: len(data) // 2]))  # half of it lands ...
        raise OSError(errno.ENOSPC, "No space left on device")  # ... then the disk is full

    monkeypatch.setattr(os, "write", full_disk)
    now = decisions_for(jobs, {"job-3": "succeeded"})
    with pytest.raises(OSError, match="No space"):
        outputs.write([now[3]])
    assert (tmp_path / "ledger.jsonl").read_bytes() == before
    monkeypatch.setattr(os, "write", real)  # room again: the next write is whole
    outputs.write([now[3]])
    assert outputs.writes["whole"] == 2
    files = ((tmp_path / "ledger.jsonl").read_text(), (tmp_path / "ledger.csv").read_text())
    assert files == rendered(now)


# -- a run ------------------------------------------------------------------------------


def test_a_run_appends_during_and_writes_whole_at_the_end(
    make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ledger a reader could have caught during the run is whole lines naming every
    job; the final one is exactly what `run-pipeline ledger` writes from the state."""
    batch = make_batch(scale=0.02)
    batch.write(jobs_yaml(8))
    seen: list[tuple[str, dict[str, int]]] = []
    real = LiveOutputs.write

    def write(self: LiveOutputs, changed: Any) -> None:
        real(self, changed)
        seen.append(((self.folder / "ledger.jsonl").read_text(), dict(self.writes)))

    def fast(*args: Any, **kwargs: Any) -> Timing:
        return replace(of(*args, **kwargs), outputs_every=0.01)

    of = Timing.of
    monkeypatch.setattr(LiveOutputs, "write", write)
    monkeypatch.setattr(Timing, "of", fast)
    assert batch.run() == 0
    assert seen and seen[-1][1]["append"] >= 1  # rows were appended during the run
    ids = {f"job-{n:03d}" for n in range(8)}
    for text, _ in seen:
        assert text.endswith("\n")
        assert {json.loads(line)["id"] for line in text.splitlines()} == ids
    final = {name: (batch.folder / name).read_bytes() for name in ("ledger.jsonl", "ledger.csv")}
    assert len(final["ledger.jsonl"].splitlines()) == 8
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["ledger", str(batch.manifest), "--out", str(batch.folder)]) == 0
    assert final == {name: (batch.folder / name).read_bytes() for name in final}
