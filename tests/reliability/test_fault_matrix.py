"""Fault matrix: each fault kind alone, at a high rate, over a small batch. The run finishes
with the right classification for every job (checked against what the simulator really did)
and never a traceback."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from pipeline.simulator import FaultRates
from tests.support.batch import Batch, MakeBatch
from tests.support.harness import (
    Audit,
    assert_no_traceback,
    audit,
    left_pending,
    run_to_end,
)
from tests.support.manifests import jobs_yaml

RATE = 0.3
JOBS = 8
FAST = {"latency_median": 60.0, "latency_min": 20.0, "latency_max": 200.0}
Check = Callable[[Batch, Audit, dict[str, Any]], None]


def _all_succeeded(batch: Batch, result: Audit, stats: dict[str, Any]) -> None:
    assert result.statuses == Counter(succeeded=JOBS)


def _no_extra_create(batch: Batch, result: Audit, stats: dict[str, Any]) -> None:
    """Faults that strike before any effect: one create per job, whatever was retried."""
    _all_succeeded(batch, result, stats)
    assert result.creates == result.attempts == JOBS and result.duplicates == 0


def _unflagged(batch: Batch, result: Audit, stats: dict[str, Any]) -> None:
    _no_extra_create(batch, result, stats)
    assert result.flagged_jobs == 0  # a 429 or a slow answer is never ambiguous


def _lost(batch: Batch, result: Audit, stats: dict[str, Any]) -> None:
    """Answers lost after the effect: each one a duplicate, each one flagged."""
    _all_succeeded(batch, result, stats)
    assert stats["lost_answers"] > 0
    assert result.duplicates == result.flagged_duplicates == stats["lost_answers"]
    assert result.duplicates_from_lost_answers == stats["lost_answers"]


def _downloads(batch: Batch, result: Audit, stats: dict[str, Any]) -> None:
    """Truncated transfers are resumed; a download still cut short after every try is a
    failed download (rare at this rate), which a rerun finishes."""
    rows = batch.ledger()
    unfinished = [r for r in rows.values() if r["status"] != "succeeded"]
    for row in unfinished:
        assert row["error_code"] == "download" and "gave up" in row["error_message"], row
    if unfinished:
        assert batch.run() in (0, 1)
    assert stats["faults"]["truncated_download"] > 0
    assert result.creates == JOBS and result.duplicates == 0


def _generation(batch: Batch, result: Audit, stats: dict[str, Any]) -> None:
    """Each job is retried after each failed task, up to max_attempts (3)."""
    by_fp: dict[str, list[dict[str, Any]]] = {}
    for task in sorted(batch.sim.tasks(), key=lambda t: t["created_at"]):
        by_fp.setdefault(task["fingerprint"], []).append(task)
    for job_id, row in batch.ledger().items():
        tasks = by_fp[row["fingerprint"]]
        assert all(t["failCode"] == "501" for t in tasks[:-1]), job_id
        assert row["attempts"] == len(tasks) and row["task_id"] == tasks[-1]["taskId"]
        if tasks[-1]["failCode"] is None:
            assert row["status"] == "succeeded", row
        else:
            assert len(tasks) == 3, row
            assert (row["status"], row["error_code"]) == ("failed", "501"), row
    assert result.duplicates == 0


def _stuck(batch: Batch, result: Audit, stats: dict[str, Any]) -> None:
    """A task that never ends is timed_out (and not resubmitted); the others succeed."""
    tasks = {t["taskId"]: t for t in batch.sim.tasks()}
    assert len(tasks) == JOBS
    for row in batch.ledger().values():
        expected = "timed_out" if tasks[row["task_id"]]["duration"] is None else "succeeded"
        assert row["status"] == expected, row
    assert result.duplicates == 0


MATRIX: dict[str, tuple[dict[str, Any], tuple[str, ...], Check]] = {
    # An HTML 500 is not Kie's envelope: the client cannot tell it came before any effect,
    # so a create answered so is ambiguous (flagged if resubmitted), never "not created".
    "http_500": ({"faults": FaultRates(http_500=RATE)}, (), _no_extra_create),
    "reset": ({"faults": FaultRates(reset=RATE)}, (), _no_extra_create),
    "lost_answer": ({"faults": FaultRates(lost_answer=RATE)}, (), _lost),
    "malformed_json": ({"faults": FaultRates(malformed_json=RATE)}, (), _lost),
    # (not "slow": a test id is a pytest keyword, and "slow" marks the slow suite)
    "slow_answer": ({"faults": FaultRates(slow=RATE)}, (), _unflagged),
    "truncated_download": ({"faults": FaultRates(truncated_download=RATE)}, (), _downloads),
    "generation_failure": ({"faults": FaultRates(generation_failure=0.6)}, (), _generation),
    "stuck": ({"faults": FaultRates(stuck=RATE)}, ("--max-wait", "300"), _stuck),
    "http_429": (
        {"create_limit": (2, 10.0), "query_limit": (2, 1.0), "http_429": True},
        (),
        _unflagged,
    ),
    "code_429": ({"create_limit": (2, 10.0), "query_limit": (2, 1.0)}, (), _unflagged),
}


@pytest.mark.parametrize("kind", list(MATRIX))
def test_fault_alone_at_a_high_rate(kind: str, make_batch: MakeBatch) -> None:
    config, extra, check = MATRIX[kind]
    batch = make_batch(seed=list(MATRIX).index(kind) + 100, **FAST, **config)
    batch.write(jobs_yaml(JOBS))
    code, out, err = run_to_end(batch.command(*extra), batch.key)
    runs = 1
    # A job whose creates met policy.AMBIGUOUS ambiguous answers waits for the next run.
    while left_pending(batch.out) and runs < 5:
        code, more, err = run_to_end(batch.command(*extra), batch.key)
        out, runs = out + more, runs + 1
    assert_no_traceback(out + err)
    final = {"succeeded", "failed", "timed_out"}
    result = audit(batch.sim, batch.out, batch.manifest, final=final)
    statuses = {r["status"] for r in batch.ledger().values()}
    assert code == (0 if statuses == {"succeeded"} else 1), (code, statuses, err)
    stats = batch.sim.stats()
    fault = "slow" if kind == "slow_answer" else kind
    injected = stats["faults"].get(fault, 0) + sum(stats["rate_limited"].values())
    if kind == "generation_failure":
        injected = sum(t["failCode"] == "501" for t in batch.sim.tasks())
    elif kind == "stuck":
        injected = sum(t["duration"] is None for t in batch.sim.tasks())
    assert injected > 0, stats
    print(f"\nfault matrix {kind}: injected={injected} exit={code} {result.figures()}")
    check(batch, result, stats)
