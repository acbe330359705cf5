"""The tracker alone, against a scripted fake Kie: what each answer to a poll leads to."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.engine.control import RunControl
from pipeline.engine.journal import Journal
from pipeline.engine.timing import UNKNOWN_GRACE, Timing
from pipeline.engine.tracker import Tracker, finished_durations
from pipeline.events import Event
from pipeline.kie import answers
from pipeline.kie import client as kie
from pipeline.kie.pacing import SlidingWindowLimiter
from pipeline.manifest import Job, Rate, Settings
from pipeline.state.store import Attempt, StateStore
from pipeline.status import KieState
from tests.support.factories import make_job

Answer = kie.TaskInfo | kie.KieError
SCALE = 0.001


class ScriptedKie:
    """Answers each task's polls from a script, in order; the last answer repeats."""

    def __init__(self, script: dict[str, list[Answer]]) -> None:
        self.script = {task: deque(answers) for task, answers in script.items()}
        self.polls: list[str] = []

    async def record(self, family: str | None, task_id: str) -> kie.TaskInfo:
        return await self.record_info(task_id)

    async def record_info(self, task_id: str) -> kie.TaskInfo:
        self.polls.append(task_id)
        answers = self.script[task_id]
        answer = answers.popleft() if len(answers) > 1 else answers[0]
        if isinstance(answer, kie.KieError):
            raise answer
        return answer


def info(
    task: str, state: KieState, url: str | None = None, code: str | None = None
) -> kie.TaskInfo:
    urls = (url,) if url else ()
    return kie.TaskInfo(task, state, urls, code, "refused: prohibited content" if code else None)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore.open(tmp_path / "state.sqlite") as store:
        yield store


def submitted(store: StateStore, job: Job, task_id: str) -> Attempt:
    intent = store.record_intent(job.id, job.fingerprint, 1, job.model)
    return store.record_task(intent.id, task_id)


def track(
    store: StateStore,
    fake: ScriptedKie,
    jobs: dict[str, Job],
    scale: float = SCALE,
    **settings: float,
) -> tuple[list[tuple[str, str]], list[Event], Journal]:
    """Track one task per job until the tracker is idle; (job id, outcome) in order."""
    outcomes: list[tuple[str, str]] = []
    events: list[Event] = []

    async def go() -> None:
        journal = Journal(store, events.append)
        control = RunControl(events.append)
        timing = Timing.of(
            Settings(query_rate=Rate(1000, 1.0), **settings),  # type: ignore[arg-type]
            scale,
        )
        tracker = Tracker(
            journal,
            fake,  # type: ignore[arg-type]
            control,
            SlidingWindowLimiter(timing.query_rate),
            timing,
            on_success=lambda job, a, i: outcomes.append((job.id, "succeeded")),
            on_failure=lambda job, a: outcomes.append((job.id, f"failed {a.error_code}")),
        )
        loop_now = asyncio.get_running_loop().time()
        for task_id, job in jobs.items():
            tracker.track(job, submitted(store, job, task_id), loop_now)
        await asyncio.wait_for(tracker.run(lambda: tracker.idle or control.over), 30)
        tracker.flush_progress(force=True)

    asyncio.run(go())
    return outcomes, events, Journal(store, lambda e: None)


def test_a_task_is_polled_until_it_ends(store: StateStore) -> None:
    job = make_job("hero")
    fake = ScriptedKie(
        {
            "t1": [
                info("t1", "waiting"),
                info("t1", "generating"),
                info("t1", "success", "https://f/1.mp4"),
            ]
        }
    )
    outcomes, events, journal = track(store, fake, {"t1": job})
    assert outcomes == [("hero", "succeeded")] and fake.polls == ["t1"] * 3
    moves = [(e.old, e.new) for e in events if e.kind == "transition"]
    assert moves == [("waiting", "generating"), ("generating", "succeeded")]
    (row,) = journal.attempts("hero")
    assert (row.phase, row.first and row.first.url) == ("succeeded", "https://f/1.mp4")


def test_a_moderated_task_fails_for_good(store: StateStore) -> None:
    job = make_job("hero")
    fake = ScriptedKie({"t1": [info("t1", "fail", code="422")]})
    outcomes, _, journal = track(store, fake, {"t1": job})
    assert outcomes == [("hero", "failed 422")]
    (row,) = journal.attempts("hero")
    assert row.permanent and row.remote_state == "fail"


def test_errors_of_a_poll_are_retried_and_do_not_end_the_task(store: StateStore) -> None:
    job = make_job("hero")
    fake = ScriptedKie(
        {
            "t1": [
                kie.ServerError("Kie answered 500: busy", 500),
                kie.RateLimited("Kie answered 429", 429),
                info("t1", "success", "https://f/1.mp4"),
            ]
        }
    )
    outcomes, events, _ = track(store, fake, {"t1": job})
    assert outcomes == [("hero", "succeeded")] and len(fake.polls) == 3
    assert any(e.kind == "warning" and "busy" in e.detail for e in events)


def test_a_task_unknown_for_good_is_lost_once_the_grace_has_passed(store: StateStore) -> None:
    job = make_job("hero")
    fake = ScriptedKie({"t1": [kie.NotFound("Kie answered 404: Task not found", 404)]})
    started = time.monotonic()
    outcomes, _, journal = track(store, fake, {"t1": job})
    assert outcomes == [("hero", "failed 404")] and len(fake.polls) > 1
    assert time.monotonic() - started >= UNKNOWN_GRACE * SCALE  # by time, not by polls
    assert "no longer knows" in (journal.attempts("hero")[0].error_message or "")


def test_a_task_unknown_right_after_its_create_is_waited_for(store: StateStore) -> None:
    job = make_job("hero")
    gone: kie.KieError = kie.NotFound("Kie answered 404: Task not found", 404)
    fake = ScriptedKie({"t1": [gone] * 8 + [info("t1", "success", "https://f/1.mp4")]})
    # Real seconds, polls a millisecond apart: the 90 s of grace never run out.
    outcomes, _, _ = track(
        store, fake, {"t1": job}, 1.0, poll_interval=0.001, poll_max_interval=0.002
    )
    assert outcomes == [("hero", "succeeded")] and len(fake.polls) == 9


def test_recordinfo_501_and_408_end_the_task_as_failed() -> None:
    for code, words in ((501, "Generation failed"), (408, "")):
        error = answers.error_for(code, words)
        ended = answers.ended_task("t1", error)
        assert (ended.state, ended.fail_code) == ("fail", str(code))
        assert ended.fail_msg == (words or "no result for over 10 minutes")


def test_a_task_past_max_wait_times_out_without_more_polls(store: StateStore) -> None:
    job = make_job("hero")
    fake = ScriptedKie({"t1": [info("t1", "generating")]})
    outcomes, events, journal = track(store, fake, {"t1": job}, max_wait=100.0)
    assert outcomes == []
    (row,) = journal.attempts("hero")
    assert row.phase == "timed_out" and row.error_code == "timeout"
    assert row.polls == len(fake.polls)  # every poll counted, however many there were
    assert events[-1].new == "timed_out"


def test_a_refused_key_stops_everything(store: StateStore) -> None:
    jobs = {"t1": make_job("a"), "t2": make_job("b")}
    fake = ScriptedKie(
        {
            "t1": [kie.AuthError("Kie answered 401: bad key", 401)],
            "t2": [info("t2", "generating")],
        }
    )
    outcomes, events, journal = track(store, fake, jobs)
    assert outcomes == []
    assert any(e.kind == "stop" and "refused" in e.detail for e in events)
    assert {a.phase for j in ("a", "b") for a in journal.attempts(j)} == {"submitted"}


def test_a_success_without_any_result_url_is_a_success_kept_as_json(store: StateStore) -> None:
    """A detection's `resultObject` (or any result without files) is a paid success: done,
    its JSON kept, nothing to download, never bought again."""
    job = make_job("hero")
    record = {
        "taskId": "t1",
        "state": "success",
        "resultJson": json.dumps({"resultObject": {"labels": ["cat"], "score": 0.9}}),
    }
    fake = ScriptedKie({"t1": [kie.parse_task_info(record)]})
    outcomes, _, journal = track(store, fake, {"t1": job})
    assert outcomes == [("hero", "succeeded")]
    (row,) = journal.attempts("hero")
    assert row.phase == "succeeded" and row.results == () and row.downloaded
    assert json.loads(row.result_json or "") == {"labels": ["cat"], "score": 0.9}


def test_an_empty_success_is_still_a_success(store: StateStore) -> None:
    job = make_job("hero")
    fake = ScriptedKie({"t1": [info("t1", "success")]})
    outcomes, _, journal = track(store, fake, {"t1": job})
    (row,) = journal.attempts("hero")
    assert outcomes == [("hero", "succeeded")] and row.result_json == "{}"


def test_every_result_url_and_the_reported_credits_are_kept(store: StateStore) -> None:
    job = make_job("poster")
    urls = tuple(f"https://f/{i}.png" for i in range(1, 5))
    fake = ScriptedKie({"t1": [kie.TaskInfo("t1", "success", urls, None, None, 20.0)]})
    outcomes, _, journal = track(store, fake, {"t1": job})
    (row,) = journal.attempts("poster")
    assert outcomes == [("poster", "succeeded")] and row.credits == 20
    assert [(r.index, r.url) for r in row.results] == list(enumerate(urls, 1))


def test_a_changed_list_of_results_keeps_the_first_and_says_so(store: StateStore) -> None:
    job = make_job("poster")
    events: list[Event] = []
    journal = Journal(store, events.append)
    attempt = submitted(store, job, "t1")
    first = journal.succeeded(job, attempt, "generating", ["https://f/1.png", "https://f/2.png"])
    again = journal.succeeded(job, first, "generating", ["https://f/9.png"])
    assert again.results == first.results
    assert any(e.kind == "warning" and "keeping the first" in e.detail for e in events)


def test_earlier_runs_are_classed_by_the_inputs_each_attempt_kept(store: StateStore) -> None:
    """The state seeds the poll planner: each finished task under its timing class, and a
    row from before inputs were kept under its bare model (the model's pool)."""
    journal = Journal(store, lambda e: None)
    long, short = make_job("long", n_frames="15"), make_job("short")
    for job, task in ((long, "t-long"), (short, "t-short")):
        attempt = journal.intend(job, 1)
        store.record_task(attempt.id, task)
        store.record_success(attempt.id, [f"https://x/{task}.mp4"], None)
    old = store.record_intent("old", "f-old", 1, "sora-2-text-to-video")  # no inputs kept
    store.record_task(old.id, "t-old")
    store.record_success(old.id, ["https://x/old.mp4"], None)
    keys = [key for key, _ in finished_durations(Journal(store, lambda e: None))]
    assert sorted(keys) == [
        "sora-2-text-to-video",
        "sora-2-text-to-video[n_frames=10]",
        "sora-2-text-to-video[n_frames=15]",
    ]
