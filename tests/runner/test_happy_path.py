from __future__ import annotations

import csv
import hashlib

import pytest

from pipeline.outputs.ledger import FIELDS
from tests.support.batch import Batch
from tests.support.manifests import jobs_yaml


def test_batch_runs_to_completion_with_verified_files(batch: Batch) -> None:
    batch.write(jobs_yaml(6))
    assert batch.run() == 0
    rows = batch.rows()
    assert [r["id"] for r in rows] == [f"job-{i:03d}" for i in range(6)]
    for row in rows:
        assert list(row) == list(FIELDS)
        assert row["status"] == "succeeded" and row["attempts"] == 1
        data = (batch.folder / row["file"]).read_bytes()
        assert len(data) == row["bytes"] and hashlib.sha256(data).hexdigest() == row["sha256"]
        assert row["possible_duplicate"] is False and row["submitted_at"].endswith("Z")
    with (batch.folder / "ledger.csv").open() as handle:
        assert [r["id"] for r in csv.DictReader(handle)] == [r["id"] for r in rows]
    assert sum(batch.stats()["creates_by_fingerprint"].values()) == 6
    assert "succeeded -> downloaded" in (batch.folder / "run.log").read_text()


def test_rerun_of_a_finished_batch_sends_nothing(batch: Batch) -> None:
    batch.write(jobs_yaml(3))
    assert batch.run() == 0
    before = batch.stats()
    assert batch.run() == 0
    after = batch.stats()
    assert after["creates"] == before["creates"] == 3
    assert after["queries"] == before["queries"]


def test_edit_between_runs_submits_only_the_changed_and_new_jobs(batch: Batch) -> None:
    batch.write(jobs_yaml(3))
    assert batch.run() == 0
    first = {r["id"]: r for r in batch.rows()}
    text = jobs_yaml(4).replace("number 1 on", "number one on")
    batch.write(text)
    assert batch.run() == 0
    second = {r["id"]: r for r in batch.rows()}
    assert batch.stats()["creates"] == 5  # 3, then job-001 changed and job-003 new
    assert second["job-000"]["task_id"] == first["job-000"]["task_id"]
    assert second["job-001"]["task_id"] != first["job-001"]["task_id"]
    assert second["job-001"]["fingerprint"] != first["job-001"]["fingerprint"]


def test_removed_jobs_leave_the_ledger_but_stay_in_state(batch: Batch) -> None:
    batch.write(jobs_yaml(3))
    assert batch.run() == 0
    batch.write(jobs_yaml(2))
    assert batch.run() == 0
    assert [r["id"] for r in batch.rows()] == ["job-000", "job-001"]
    from pipeline.state.store import StateStore

    with StateStore.open(batch.folder / "state.sqlite", readonly=True) as store:
        assert "job-002" in store.attempts_by_job()


def test_no_download_keeps_urls(batch: Batch) -> None:
    batch.write(jobs_yaml(2))
    assert batch.run("--no-download") == 0
    rows = batch.rows()
    assert all(r["result_url"] and r["file"] is None for r in rows)
    assert all([o["file"] for o in r["outputs"]] == [None] for r in rows)
    assert not (batch.folder / "media").exists() and not (batch.folder / "videos").exists()


def test_flags_override_manifest_settings(batch: Batch) -> None:
    settings = "settings:\n  download: false\n  max_attempts: 1\njobs:\n"
    text = jobs_yaml(2).replace("jobs:\n", settings, 1)
    batch.write(text)
    assert batch.run("--download") == 0
    assert all(r["file"] for r in batch.rows())


def test_status_and_ledger_commands_read_the_state_without_network(
    batch: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from pipeline.cli.main import main

    batch.write(jobs_yaml(3))
    assert batch.run() == 0
    capsys.readouterr()
    queries = batch.stats()["queries"]
    assert main(["status", str(batch.manifest), "--out", str(batch.folder), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"] == {"succeeded": 3}
    assert [j["id"] for j in status["jobs"]] == ["job-000", "job-001", "job-002"]
    assert all(j["attempts"] == 1 and j["task_id"] for j in status["jobs"])
    assert main(["status", str(batch.manifest), "--out", str(batch.folder)]) == 0
    assert "Totals: 3 succeeded" in capsys.readouterr().out
    (batch.folder / "ledger.csv").unlink()
    assert main(["ledger", str(batch.manifest), "--out", str(batch.folder)]) == 0
    assert (batch.folder / "ledger.csv").exists() and (batch.folder / "index.html").exists()
    assert batch.stats()["queries"] == queries
