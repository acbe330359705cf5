"""Nothing is paid twice without a flag, whatever the create's answer (issue 26).

A gateway's JSON error (HTTP 502/503/504 with `{"code": 504, ...}`) or Kie's own HTTP 200
`{"code": 500, "msg": "Internal server error"}` may follow a task that was made: the create is
ambiguous. The simulator plays both after the effect; every extra task on its side must be
flagged `possible_duplicate` in the ledger, and one run sends at most `AMBIGUOUS["create"]`
creates for a job whose answers stay ambiguous.
"""

from __future__ import annotations

import pytest

from pipeline.kie.policy import AMBIGUOUS
from tests.support.batch import Batch, MakeBatch
from tests.support.manifests import jobs_yaml

JOBS = 6


def _duplicates(batch: Batch) -> tuple[int, int]:
    """(extra tasks the simulator made, those on jobs the ledger flags possible_duplicate)."""
    creates = batch.stats()["creates_by_fingerprint"]
    flagged = {r["fingerprint"] for r in batch.rows() if r["possible_duplicate"]}
    extra = {fp: count - 1 for fp, count in creates.items() if count > 1}
    return sum(extra.values()), sum(n for fp, n in extra.items() if fp in flagged)


@pytest.mark.parametrize("fault", ["gateway_json", "error_500_body"])
def test_a_5xx_after_the_create_is_ambiguous_flagged_and_bounded(
    make_batch: MakeBatch, fault: str
) -> None:
    batch = make_batch(faults={fault: 1.0})
    batch.write(jobs_yaml(JOBS))
    assert batch.run() == 1  # every create answered 5xx: nothing finished
    rows = batch.rows()
    limit = AMBIGUOUS["create"]
    assert batch.stats()["creates"] == JOBS * limit  # not 8 per job: left after `limit`
    assert all(r["status"] == "pending" and r["creates"] == limit for r in rows), rows
    assert all(r["possible_duplicate"] for r in rows)  # the second create may be a second task
    log = (batch.folder / "run.log").read_text()
    assert log.count("left for the next run after") == JOBS

    batch.control(faults={fault: 0.0})
    assert batch.run() == 0
    rows = batch.rows()
    assert all(r["status"] == "succeeded" and r["creates"] == limit + 1 for r in rows)
    duplicates, flagged = _duplicates(batch)
    assert duplicates == JOBS * limit and flagged == duplicates  # every one flagged


def test_skip_leaves_a_job_with_an_ambiguous_create_alone(make_batch: MakeBatch) -> None:
    batch = make_batch(faults={"gateway_json": 1.0})
    batch.write(jobs_yaml(2))
    assert batch.run() == 1
    creates = batch.stats()["creates"]
    batch.control(faults={"gateway_json": 0.0})
    assert batch.run("--on-ambiguous", "skip") == 1
    assert batch.stats()["creates"] == creates  # nothing resent
    assert {r["status"] for r in batch.rows()} == {"pending"}
