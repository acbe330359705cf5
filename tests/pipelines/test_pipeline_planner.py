"""The planner's graph view and the run's holding of waiting jobs, without a network."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pipeline.engine.planner import Decision, PlanOptions, decide, estimate, plan
from pipeline.engine.upstream import Upstream
from pipeline.manifest import Job, Manifest, OutputRef, Settings
from pipeline.state.store import Attempt
from tests.support.factories import attempt, make_job

STILL = make_job("still", "A mug")


def downstream(job_id: str, *upstream: str) -> Job:
    refs = [OutputRef(up) for up in upstream]
    return Job(
        job_id,
        "kling-2.6/image-to-video",
        {"prompt": f"{job_id} moves", "image_urls": refs, "sound": False, "duration": "5"},
        None,
        f"fp-{job_id}",
        1,
        upstream=upstream,
    )


FILM = downstream("film", "still")
HD = downstream("hd", "film")


def decisions(
    jobs: list[Job], history: dict[str, list[Attempt]], **options: bool
) -> dict[str, Decision]:
    manifest = Manifest(Path("m.yaml"), "m", Settings(), tuple(jobs))
    return {d.job.id: d for d in plan(manifest, history, PlanOptions(**options))}  # type: ignore[arg-type]


def test_a_job_waits_for_the_jobs_it_takes_input_from() -> None:
    d = decisions([HD, FILM, STILL], {})  # any manifest order: upstream jobs decided first
    assert (d["still"].action, d["film"].action, d["hd"].action) == ("submit", "wait", "wait")
    assert d["film"].reason == "waiting for still (pending)"
    assert (d["film"].status, d["hd"].status) == ("pending", "pending")
    est = estimate(list(d.values()))
    assert (est.tasks, est.waiting) == (3, 2)  # the dry run's cost counts them all


def test_a_job_whose_upstream_succeeded_is_submitted() -> None:
    d = decisions([STILL, FILM, HD], {"still": [attempt(STILL, "succeeded")]})
    assert (d["film"].action, d["hd"].action) == ("submit", "wait")


def test_a_job_whose_upstream_failed_for_good_is_blocked_for_free() -> None:
    failed = attempt(STILL, "failed", permanent=True, error_code="400", error_message="nope")
    d = decisions([STILL, FILM, HD], {"still": [failed]})
    assert (d["film"].status, d["film"].action) == ("blocked", "none")
    assert d["film"].reason == "blocked: still failed (400: nope)"
    assert d["hd"].reason == "blocked: film is blocked (still failed (400: nope))"
    assert estimate(list(d.values())).tasks == 0
    # --retry-failed: the upstream goes again, and the jobs below wait for it.
    again = decisions([STILL, FILM, HD], {"still": [failed]}, retry_failed=True)
    assert (again["still"].action, again["film"].action, again["hd"].action) == (
        "submit",
        "wait",
        "wait",
    )
    # Refused by moderation: the same prompt is not resent, even with --retry-failed.
    refused = replace(failed, error_code="422", error_message="prohibited content")
    again = decisions([STILL, FILM, HD], {"still": [refused]}, retry_failed=True)
    assert again["still"].action == "none" and "edit the prompt" in again["still"].reason
    assert again["film"].status == "blocked"


def test_a_timed_out_upstream_is_tracked_and_its_downstream_waits() -> None:
    d = decisions([STILL, FILM], {"still": [attempt(STILL, "timed_out")]})
    assert d["still"].action == "track"
    assert (d["film"].action, d["film"].reason) == ("wait", "waiting for still (timed_out)")


def test_a_job_with_a_task_of_its_version_is_not_held_back() -> None:
    history = {"film": [attempt(FILM, "submitted")]}
    assert decisions([STILL, FILM], history)["film"].action == "track"


def test_decide_alone_ignores_upstream_jobs() -> None:
    assert decide(FILM, [], PlanOptions()).action == "submit"


def test_held_jobs_go_once_every_upstream_job_is_done() -> None:
    two = downstream("two", "still", "film")
    held = Upstream([STILL, FILM, two, HD])
    d = decisions([STILL, FILM, two, HD], {})
    for job_id in ("film", "two", "hd"):
        held.hold(d[job_id])
    done = {"still"}
    assert [x.job.id for x in held.succeeded("still", done.__contains__)] == ["film"]
    done.add("film")
    assert sorted(x.job.id for x in held.succeeded("film", done.__contains__)) == ["hd", "two"]
    assert not held.held


def test_a_failure_lets_go_of_everything_below_it() -> None:
    held = Upstream([STILL, FILM, HD])
    d = decisions([STILL, FILM, HD], {})
    held.hold(d["film"])
    held.hold(d["hd"])
    assert sorted(held.failed("still")) == ["film", "hd"]
    assert not held.held
