"""The planner alone: every stage, every action, and the options that change them."""

from __future__ import annotations

import pytest

from pipeline.engine.planner import PlanOptions, decide
from tests.support.factories import attempt, make_job, result

JOB = make_job("hero")


def test_a_new_job_is_submitted() -> None:
    d = decide(JOB, [], PlanOptions())
    assert (d.stage, d.action, d.status, d.attempts) == ("new", "submit", "pending", 0)


def test_an_edited_job_is_submitted_again() -> None:
    old = make_job("hero", "An older prompt")
    d = decide(JOB, [attempt(old, "succeeded")], PlanOptions())
    assert (d.stage, d.action, d.status) == ("changed", "submit", "pending")
    assert d.current == ()


def test_a_failed_job_with_attempts_left_is_retried() -> None:
    d = decide(JOB, [attempt(JOB, "failed")], PlanOptions(max_attempts=3))
    assert (d.stage, d.action, d.status) == ("retry", "submit", "failed")


@pytest.mark.parametrize("retry_failed", [False, True])
def test_a_job_failed_for_good_is_resubmitted_only_on_request(retry_failed: bool) -> None:
    history = [attempt(JOB, "failed", permanent=True)]
    d = decide(JOB, history, PlanOptions(retry_failed=retry_failed))
    assert d.stage == "failed" and d.status == "failed"
    assert d.action == ("submit" if retry_failed else "none")
    # During a run, --retry-failed has been used up: a job failing again stays failed.
    again = decide(JOB, history, PlanOptions(retry_failed=retry_failed).in_run())
    assert again.action == "none"


def test_out_of_attempts_is_failed_for_good() -> None:
    history = [attempt(JOB, "failed"), attempt(JOB, "failed", attempt=2)]
    assert decide(JOB, history, PlanOptions(max_attempts=2)).stage == "failed"
    assert decide(JOB, history, PlanOptions(max_attempts=3)).stage == "retry"


@pytest.mark.parametrize(("policy", "action"), [("resubmit", "submit"), ("skip", "none")])
def test_an_intent_without_a_task_is_ambiguous(policy: str, action: str) -> None:
    d = decide(JOB, [attempt(JOB, "intent")], PlanOptions(on_ambiguous=policy))  # type: ignore[arg-type]
    assert (d.stage, d.action, d.status, d.attempts) == ("ambiguous", action, "pending", 1)


def test_a_submitted_task_is_tracked() -> None:
    d = decide(JOB, [attempt(JOB, "submitted")], PlanOptions())
    assert (d.stage, d.action, d.status) == ("in_flight", "track", "running")


@pytest.mark.parametrize(("retry_failed", "action"), [(False, "track"), (True, "submit")])
def test_a_timed_out_task_is_tracked_again_unless_retried(retry_failed: bool, action: str) -> None:
    d = decide(JOB, [attempt(JOB, "timed_out")], PlanOptions(retry_failed=retry_failed))
    assert (d.stage, d.action, d.status) == ("timed_out", action, "timed_out")


def test_success_without_the_file_is_downloaded() -> None:
    done = attempt(JOB, "succeeded")
    assert decide(JOB, [done], PlanOptions(), has_file=lambda a: True).action == "none"
    d = decide(JOB, [done], PlanOptions(), has_file=lambda a: False)
    assert (d.action, d.status) == ("download", "succeeded")


def test_success_is_only_succeeded_with_a_verified_file_when_downloading() -> None:
    no_file = attempt(JOB, "succeeded", results=(result(JOB.id, downloaded=False),))
    assert decide(JOB, [no_file], PlanOptions(download=True)).status == "running"
    failed = attempt(
        JOB, "succeeded", results=(result(JOB.id, downloaded=False),), error_code="download"
    )
    assert decide(JOB, [failed], PlanOptions(download=True)).status == "failed"
    assert decide(JOB, [no_file], PlanOptions(download=False)).status == "succeeded"
