"""Ledger rows from decisions: the columns users' scripts read, and the tally."""

from __future__ import annotations

from pipeline.engine.planner import PlanOptions, decide
from pipeline.outputs.ledger import FIELDS, render, row, status_counts
from tests.support.factories import attempt, make_job


def test_a_row_has_every_column_in_order() -> None:
    job = make_job("hero")
    r = row(decide(job, [attempt(job, "succeeded")], PlanOptions()))
    assert tuple(r) == FIELDS
    assert (r["status"], r["attempts"], r["file"]) == ("succeeded", 1, "videos/hero.mp4")
    assert r["completed_at"].endswith("Z") and r["fingerprint"] == job.fingerprint


def test_an_ambiguous_job_says_why_it_is_pending() -> None:
    job = make_job("hero")
    r = row(decide(job, [attempt(job, "intent")], PlanOptions(on_ambiguous="skip")))
    assert r["status"] == "pending" and r["task_id"] is None
    assert "may or may not have reached Kie" in r["error_message"]


def test_possible_duplicate_covers_every_attempt_of_the_version() -> None:
    job = make_job("hero")
    history = [attempt(job, "failed", possible_duplicate=True), attempt(job, "submitted")]
    assert row(decide(job, history, PlanOptions()))["possible_duplicate"] is True


def test_counts_follow_the_one_status_order() -> None:
    jobs = [make_job(f"j{i}") for i in range(4)]
    decisions = [
        decide(jobs[0], [], PlanOptions()),
        decide(jobs[1], [attempt(jobs[1], "succeeded")], PlanOptions()),
        decide(jobs[2], [attempt(jobs[2], "failed", permanent=True)], PlanOptions()),
        decide(jobs[3], [attempt(jobs[3], "succeeded")], PlanOptions()),
    ]
    assert list(status_counts(decisions).items()) == [
        ("succeeded", 2),
        ("failed", 1),
        ("pending", 1),
    ]


def test_csv_and_jsonl_hold_the_same_rows() -> None:
    job = make_job("hero")
    jsonl, csv_text = render([row(decide(job, [attempt(job, "succeeded")], PlanOptions()))])
    assert jsonl.count("\n") == 1 and '"id": "hero"' in jsonl
    header, line = csv_text.splitlines()
    assert header.split(",") == list(FIELDS)
    assert line.startswith("hero,succeeded,")
