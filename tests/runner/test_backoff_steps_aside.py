"""One job's trouble does not stall the queue: a job backing off steps aside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.kie.policy import AMBIGUOUS
from tests.support.hostile import Conn, Request, hostile, response
from tests.support.manifests import jobs_yaml

# A 500 to a create may follow a made task: each job is tried this often, then left.
CREATE_TRIES = AMBIGUOUS["create"]
JOBS = 9


def always_500(request: Request, conn: Conn) -> None:
    """Kie's envelope with body code 500 to every create; a balance to the credit check."""
    if request.path.startswith("/api/v1/chat/credit"):
        body = {"code": 200, "msg": "success", "data": 1_000_000}
    else:
        body = {"code": 500, "msg": "Server error, please try again later", "data": None}
    conn.send(response(200, json.dumps(body).encode(), {"Content-Type": "application/json"}))


def test_creates_of_other_jobs_go_on_while_one_backs_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIE_API_KEY", "test-key")
    manifest = tmp_path / "batch.yaml"
    manifest.write_text(jobs_yaml(JOBS))
    with hostile(always_500) as server:
        argv = [str(manifest), "--base-url", server.url, "--out", str(tmp_path / "out")]
        # At this scale a job's backoffs before its last try add up to at least 3 s (full
        # jitter: each at least half of 0.05 s doubling), ample for nine first creates
        # even on a loaded machine.
        code = main([*argv, "--time-scale", "0.05", "--quiet"])
        creates = [r for r in server.requests if r.path == "/api/v1/jobs/createTask"]
    assert code == 1
    prompts = [json.loads(r.body)["input"]["prompt"] for r in creates]
    # Served one job at a time (as before), the first job would make all its tries, backing
    # off between them, before any other job got one. Stepping aside, every job has been
    # tried before any job makes its last try.
    last_try = min(i for i, p in enumerate(prompts) if prompts[: i + 1].count(p) == CREATE_TRIES)
    assert len(set(prompts[:last_try])) == JOBS
    # And each job was tried CREATE_TRIES times in all, then left for the next run, flagged.
    assert len(prompts) == JOBS * CREATE_TRIES
    rows = [json.loads(line) for line in (tmp_path / "out" / "ledger.jsonl").open()]
    assert {r["status"] for r in rows} == {"pending"}
    assert all(r["possible_duplicate"] and r["creates"] == CREATE_TRIES for r in rows)
