"""Issue 12 at run time, over HTTP: paused models, 433, redirects, prices from the model files,
and the credits Kie reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.paths import schemas_dir
from tests.support.batch import Batch, MakeBatch
from tests.support.hostile import hostile, json_answer, response

MIXED = """\
version: 1
settings:
  concurrency: 1
  download: false
jobs:
  - id: old-sora
    model: sora-2-text-to-video
    prompt: A paper boat on a pond
  - id: old-sora-2
    model: sora-2-text-to-video
    prompt: A second paper boat on a pond
  - id: kling
    model: kling-2.6/text-to-video
    sound: false
    prompt: A desk lamp switches on
  - id: seedance
    model: bytedance/seedance-2-fast
    duration: 5
    prompt: A desk lamp dims
  - id: banana
    model: nano-banana-pro
    prompt: A desk lamp, product photo
"""


CURRENT = """\
version: 1
settings:
  download: false
jobs:
  - id: kling
    model: kling-2.6/text-to-video
    sound: false
    prompt: A desk lamp switches on
  - id: banana
    model: nano-banana-pro
    prompt: A desk lamp, product photo
"""


def _sora_tasks(batch: Batch) -> list[dict[str, object]]:
    return [t for t in batch.sim.tasks() if str(t.get("model", "")).startswith("sora")]


def test_a_paused_model_fails_its_job_after_one_create_and_the_batch_goes_on(
    make_batch: MakeBatch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = make_batch(model_pauses=True)
    batch.write(MIXED)
    assert batch.run() == 1
    rows = batch.ledger()
    assert rows["old-sora"]["status"] == "failed"
    assert "temporarily paused" in rows["old-sora"]["error_message"]
    # No further create for that model in this run: its other job stays pending.
    assert rows["old-sora-2"]["status"] == "pending"
    assert {rows[j]["status"] for j in ("kling", "seedance", "banana")} == {"succeeded"}
    creates = [r for r in batch.sim.requests() if r["path"].endswith("/createTask")]
    refused = [r for r in creates if r["code"] == 500]
    assert len(creates) == 4 and len(refused) == 1 and not _sora_tasks(batch)
    err = capsys.readouterr().err
    assert "sora-2-text-to-video is not available on Kie" in err and "model disabled" not in err


def test_433_stops_submitting_with_exit_3_and_names_the_keys_own_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIE_API_KEY", "k")
    manifest = tmp_path / "m.yaml"
    manifest.write_text(CURRENT)
    body = json.dumps({"code": 433, "msg": "Sub-key usage limit exceeded", "data": None})
    with hostile(json_answer(body)) as server:
        code = main([str(manifest), "--base-url", server.url, "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err
    assert code == 3
    assert "own limit" in err and "not the account's balance" in err


def test_a_redirect_prints_its_own_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIE_API_KEY", "k")
    manifest = tmp_path / "m.yaml"
    manifest.write_text(CURRENT)

    def redirect(request: object, conn: object) -> None:
        conn.send(response(302, b"", headers={"Location": "https://elsewhere.example/"}))  # type: ignore[attr-defined]

    with hostile(redirect) as server:
        code = main([str(manifest), "--base-url", server.url, "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err
    assert code == 3
    assert "redirect to https://elsewhere.example/" in err and "disabled" not in err


def _unpriced_model(folder: Path) -> None:
    """A copy of a bundled model in the manifest's kie-models/, without a price rule."""
    data = json.loads(
        (schemas_dir() / "models" / "seedream" / "5-lite-text-to-image.json").read_text()
    )
    data["model"] = "test/unpriced"
    data["price"] = {"prose": "unknown", "rule": None}
    (folder / "kie-models" / "test").mkdir(parents=True)
    (folder / "kie-models" / "test" / "unpriced.json").write_text(json.dumps(data))


UNPRICED = """\
version: 1
settings:
  max_credits: 500
jobs:
  - id: priced
    model: seedream/5-lite-text-to-image
    prompt: A lamp
  - id: mystery
    model: test/unpriced
    prompt: A lamp
"""


def test_max_credits_refuses_jobs_of_unpriced_models_and_dry_run_says_price_unknown(
    batch: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    _unpriced_model(batch.manifest.parent)
    batch.write(UNPRICED)
    assert batch.run() == 2
    err = capsys.readouterr().err
    assert "test/unpriced" in err and "max_credits" in err
    assert batch.stats()["creates"] == 0
    assert main([str(batch.manifest), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "price unknown" in out and "(+1 of unknown price)" in out
    # Without a budget the job is sent (this simulator does not know the model: code 500).
    batch.write(UNPRICED.replace("  max_credits: 500\n", "  download: false\n"))
    assert batch.run() == 1
    rows = batch.ledger()
    assert rows["priced"]["status"] == "succeeded" and rows["mystery"]["status"] == "failed"


def test_the_summary_shows_elapsed_time_dollars_kies_figure_and_the_gallery(
    batch: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch.write(CURRENT)
    assert batch.run() == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert " in " in out and "estimated" in out and "$" in out
    assert "Kie reported" in out and str(batch.out / "index.html") in out
    assert "queries" not in out
    assert batch.run("--verbose") == 0
    assert "queries" in capsys.readouterr().out.strip().splitlines()[-1]
