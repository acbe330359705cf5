"""Issue 25, the rehearsal and the logs tell the truth: --simulate knows the manifest's own
models, run-level warnings reach any stderr once, a moderated job says "edit the prompt",
and status says where it looked."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.cli.progress import ProgressBars
from pipeline.events import Event, RunTotals
from pipeline.paths import schemas_dir
from tests.support.batch import Batch


def test_simulate_serves_the_models_of_the_manifests_kie_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads((schemas_dir() / "models" / "kling-2.6" / "text-to-video.json").read_text())
    data["model"] = "studio/lamp-video"  # a model only this project knows
    (tmp_path / "kie-models" / "studio").mkdir(parents=True)
    (tmp_path / "kie-models" / "studio" / "lamp-video.json").write_text(json.dumps(data))
    manifest = tmp_path / "campaign" / "m.yaml"
    manifest.parent.mkdir()
    manifest.write_text(
        "version: 1\nsettings:\n  download: false\njobs:\n"
        "  - id: lamp\n    model: studio/lamp-video\n    sound: false\n    prompt: A lamp\n"
    )
    monkeypatch.delenv("KIE_API_KEY", raising=False)
    args = [str(manifest), "--simulate", "--out", str(tmp_path / "out"), "-q"]
    assert main([*args, "--time-scale", "0.005"]) == 0, capsys.readouterr().err
    (row,) = [json.loads(line) for line in (tmp_path / "out" / "ledger.jsonl").open()]
    assert row["status"] == "succeeded" and row["model"] == "studio/lamp-video"


def test_run_level_warnings_reach_a_log_file_once_each() -> None:
    log = io.StringIO()  # not a terminal: no bars
    notes = ProgressBars(RunTotals(2, 2, 0, 0), download=False, stream=log)
    down = "Kie is unreachable since 02:00:00 (refused); waiting for it"
    for event in (
        Event("warning", detail="could not read the balance: timeout"),
        Event("warning", detail=down),
        Event("warning", detail=down),
        Event("warning", "job-1", detail="create: busy; retrying"),  # a job's: run.log only
        Event("transition", "job-1", "submitting", "submitted"),
        Event("info", detail="Kie reachable again after 3.0 s (unreachable since 02:00:00)"),
    ):
        notes(event)
    assert log.getvalue().splitlines() == [
        "run-pipeline: could not read the balance: timeout",
        f"run-pipeline: {down}",
        "run-pipeline: Kie reachable again after 3.0 s (unreachable since 02:00:00)",
    ]


MODERATED = """\
version: 1
jobs:
  - id: bad
    model: kling-2.6/text-to-video
    sound: false
    prompt: {prompt}
  - id: good
    model: kling-2.6/text-to-video
    sound: false
    prompt: a calm lake
"""


def test_a_moderated_job_says_edit_the_prompt_and_is_not_resent_unchanged(
    batch: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch.write(MODERATED.format(prompt="a scene full of gore"))
    assert batch.run() == 1
    assert batch.run("--retry-failed") == 1  # the same prompt: nothing sent
    assert batch.stats()["creates"] == 2
    capsys.readouterr()
    assert main(["status", str(batch.manifest), "--out", str(batch.out)]) == 0
    bad = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("bad"))
    assert "refused by moderation: edit the prompt" in bad
    card = (batch.out / "index.html").read_text().split('id="job-bad"')[1].split("</li>")[0]
    assert "Refused by moderation: edit the prompt." in card
    batch.write(MODERATED.format(prompt="a scene full of flowers"))  # edited: sent again
    assert batch.run() == 0
    assert batch.stats()["creates"] == 3


def test_status_says_where_it_looked_and_points_to_rebuild_state_after_a_lost_state(
    batch: Batch, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    batch.write(
        MODERATED.format(prompt="a field").replace(
            "version: 1\n", "version: 1\nsettings:\n  download: false\n"
        )
    )
    assert batch.run() == 0
    elsewhere = batch.manifest.parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["status", str(batch.manifest)]) == 3
    err = capsys.readouterr().err
    assert f"no state file in outputs/batch (from {elsewhere})" in err
    os.remove(batch.out / "state.sqlite")
    shutil.rmtree(elsewhere)
    monkeypatch.chdir(batch.manifest.parent)
    assert main(["status", str(batch.manifest), "--out", "out"]) == 3
    err = capsys.readouterr().err
    assert "the state was lost" in err and f"rebuild-state {batch.manifest} --out out" in err
