"""A 429 storm without a signal ends like an outage (issue 26): once no create has been
accepted for the outage's give-up time, the run stops submitting, and its summary claims no
credits for tasks never made."""

from __future__ import annotations

import pytest

from tests.support.batch import MakeBatch
from tests.support.manifests import jobs_yaml


def test_a_429_storm_stops_the_run_and_claims_nothing_for_it(
    make_batch: MakeBatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # One create per (scaled) 1,000,000 s: the first is accepted, every other refused 429.
    batch = make_batch(create_limit=(1, 1_000_000.0))
    batch.write(jobs_yaml(3))
    assert batch.run() == 3  # stopped by the service, as after a long outage
    captured = capsys.readouterr()
    assert "answered every create with 429" in captured.out + captured.err
    assert batch.stats()["creates"] == 1
    rows = batch.ledger()
    assert rows["job-000"]["status"] == "succeeded"
    assert [rows[j]["status"] for j in ("job-001", "job-002")] == ["pending", "pending"]
    # The summary's estimate is the one task made (a Sora 10 s video: 30 credits).
    assert "estimated 30 credits" in captured.out, captured.out
    assert batch.stats()["rate_limited"]["create"] < 200  # bounded, not a create loop
