"""Ledger rows from decisions: the columns users' scripts read, and the tally."""

from __future__ import annotations

import csv
import io
import json

import pytest

from pipeline.engine.planner import PlanOptions, decide
from pipeline.outputs.ledger import FIELDS, render, row, status_counts
from tests.support.factories import attempt, make_job, result


def test_a_row_has_every_column_in_order() -> None:
    job = make_job("hero")
    r = row(decide(job, [attempt(job, "succeeded")], PlanOptions()))
    assert tuple(r) == FIELDS
    assert (r["status"], r["attempts"], r["file"]) == ("succeeded", 1, "media/hero.mp4")
    assert (r["media_type"], r["credits"], len(r["outputs"])) == ("video/mp4", 20, 1)
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


def test_every_result_is_listed_and_the_first_fills_the_flat_columns() -> None:
    job = make_job("poster", model="bytedance/seedream-v4-text-to-image")
    results = tuple(result("poster", i, ext="png", media_type="image/png") for i in (1, 2, 3))
    r = row(decide(job, [attempt(job, "succeeded", results=results)], PlanOptions()))
    assert [o["file"] for o in r["outputs"]] == [
        "media/poster.png",
        "media/poster-2.png",
        "media/poster-3.png",
    ]
    assert set(r["outputs"][0]) == {"url", "file", "sha256", "bytes", "media_type"}
    assert (r["result_url"], r["file"]) == (results[0].url, "media/poster.png")
    jsonl, csv_text = render([r])
    line = csv_text.splitlines()[1].split(",")
    assert line[FIELDS.index("outputs")] == "3" and '"outputs": [{"url"' in jsonl


def test_a_job_is_downloaded_only_with_all_its_results() -> None:
    job = make_job("poster")
    results = (result("poster", 1), result("poster", 2, downloaded=False))
    decision = decide(job, [attempt(job, "succeeded", results=results)], PlanOptions())
    assert (decision.status, decision.action) == ("running", "download")
    assert row(decision)["outputs"][1]["file"] is None


def test_credits_are_empty_when_kie_did_not_say() -> None:
    job = make_job("hero")
    r = row(decide(job, [attempt(job, "succeeded", credits=None)], PlanOptions()))
    line = render([r])[1].splitlines()[1].split(",")
    assert r["credits"] is None and line[FIELDS.index("credits")] == ""


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x")', "+1+2", "-2+3", "@SUM(A1)"])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(text: str) -> None:
    job = make_job("hero")
    failed = attempt(job, "failed", permanent=True, error_code="500", error_message=text)
    r = row(decide(job, [failed], PlanOptions()))
    jsonl, csv_text = render([r])
    cells = next(csv.DictReader(io.StringIO(csv_text)))
    assert cells["error_message"] == "'" + text  # text in a spreadsheet
    assert json.loads(jsonl)["error_message"] == text  # JSONL keeps the message as sent


def test_fractional_credits_are_a_json_number_and_csv_text() -> None:
    """Kie's creditsConsumed may be fractional (24.8 credits per second): kept as it is."""
    job = make_job("hero")
    whole = row(decide(job, [attempt(job, "succeeded", credits=124.0)], PlanOptions()))
    part = row(decide(job, [attempt(job, "succeeded", credits=77.5)], PlanOptions()))
    jsonl, text = render([whole, part])
    assert [json.loads(line)["credits"] for line in jsonl.splitlines()] == [124, 77.5]
    assert '"credits": 124,' in jsonl and '"credits": 77.5,' in jsonl  # 124, not 124.0
    cells = [r["credits"] for r in csv.DictReader(io.StringIO(text))]
    assert cells == ["124", "77.5"]
