"""Escape codes from servers and manifests never reach a terminal raw (issue 26): `models
list` and `models show`, the manifest's `name` in plans and summaries, text in ledger.csv,
task ids restored by rebuild-state and shown by status. Each is shown as `\\x1b...`."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.outputs.ledger import render
from pipeline.simulator import SimConfig, Simulator, running_simulator
from tests.support.batch import Batch, MakeBatch, batch_factory
from tests.support.manifests import jobs_yaml

ESC = "\x1b]0;owned\x07\x1b[2J"  # retitle the terminal, clear the screen
SHOWN = "\\x1b]0;owned\\x07\\x1b[2J"


@pytest.fixture
def make_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeBatch]:
    yield from batch_factory(tmp_path, monkeypatch)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with running_simulator(SimConfig(time_scale=0.01)) as simulator:
        yield simulator


def _main(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(args))
    return code, out.getvalue()


def test_models_list_escapes_the_catalogs_text(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIE_API_KEY", "sim-key")
    with sim.service.lock:
        entry = sim.service.catalog.listing[0]
        entry["pricingDesc"] = f"cheap{ESC}"
        entry["taskType"] = [f"Text to Video{ESC}"]
    code, out = _main("models", "list", "--base-url", sim.base_url)
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert f"cheap{SHOWN}" in out


def test_models_show_escapes_a_pulled_files_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    root = Path(__file__).resolve().parents[2]
    data = json.loads((root / "schemas/models/nano-banana-pro.json").read_text())
    data["title"] = f"Nano{ESC}"
    data["price"]["prose"] = f"4 credits{ESC}"
    data["input"]["properties"]["prompt"]["description"] = f"the prompt{ESC}"
    (tmp_path / "kie-models").mkdir()
    (tmp_path / "kie-models/nano-banana-pro.json").write_text(json.dumps(data))
    code, out = _main("models", "show", "nano-banana-pro")
    assert code == 0
    assert "\x1b" not in out and f"Nano{SHOWN}" in out


def test_the_manifest_name_is_escaped_in_the_plan_and_the_summary(make_batch: MakeBatch) -> None:
    batch = make_batch()
    batch.write('name: "Launch\\e]0;owned\\a\\e[2J"\n' + jobs_yaml(1))
    code, out = _main(*batch.args("--dry-run"))
    assert code == 0 and "\x1b" not in out and SHOWN in out
    code, out = _main(*batch.args())
    assert code == 0 and "\x1b" not in out and SHOWN in out


def test_ledger_csv_escapes_server_text() -> None:
    row = {
        "id": "a",
        "status": "failed",
        "result_url": f"https://files.example/a.mp4?{ESC}",
        "error_message": f"{ESC}=cmd",
        "task_id": f"t{ESC}",
    }
    jsonl, csv_text = render([row])
    assert "\x1b" not in csv_text and "\x07" not in csv_text
    assert SHOWN in csv_text
    assert "\x1b" not in jsonl  # JSON escapes control characters itself


def test_task_ids_restored_by_rebuild_state_reach_no_terminal_raw(make_batch: MakeBatch) -> None:
    batch: Batch = make_batch()
    batch.write(jobs_yaml(2))
    assert batch.run() == 0
    ledger = batch.folder / "ledger.jsonl"
    rows = [json.loads(line) for line in ledger.read_text().splitlines()]
    rows[0]["task_id"] = f"task{ESC}"
    ledger.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for suffix in ("", "-wal", "-shm"):
        (batch.folder / f"state.sqlite{suffix}").unlink(missing_ok=True)
    _, out = _main("rebuild-state", str(batch.manifest), "--out", str(batch.folder))
    assert "\x1b" not in out
    _, out = _main("status", str(batch.manifest), "--out", str(batch.folder))
    assert "\x1b" not in out
    _, out = _main("ledger", str(batch.manifest), "--out", str(batch.folder))
    assert "\x1b" not in out
    csv_text = (batch.folder / "ledger.csv").read_text()
    assert "\x1b" not in csv_text
