"""Credits are decimals end to end: the dry run, a fractional budget, the simulator's
fractional creditsConsumed, the ledger (a JSON number, CSV text), the summary, the gallery."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli.main import main
from pipeline.cli.parser import build_parser, normalise, run_request
from pipeline.errors import UsageError
from pipeline.manifest import load_manifest
from pipeline.paths import schemas_dir
from tests.support.batch import KEY, SCALE, Batch, MakeBatch
from tests.support.price_rules import SEEDANCE_FAST

RULES = {
    # 33 credits/s at 720p without a video input, 15.5 at 480p ($0.165 and $0.0775 per second)
    "test/fast": SEEDANCE_FAST,
    "test/per-second": {"per_second": 24.8, "field": "duration"},  # $0.124 per second
    "test/odd": {"per_second": 1.125, "field": "duration"},  # 5.625 for 5 s: shown 5.63
}

MANIFEST = """\
version: 1
settings:
  download: false
  concurrency: 1
jobs:
  - id: fast-720
    model: test/fast
    prompt: A paper boat at dawn
    duration: 5
    resolution: 720p
  - id: fast-480
    model: test/fast
    prompt: A paper boat at dusk
    duration: 5
    resolution: 480p
  - id: pro-5s
    model: test/per-second
    prompt: A kite over the dunes
    duration: 5
  - id: pro-7s
    model: test/per-second
    prompt: A kite over the sea
    duration: 7
  - id: odd
    model: test/odd
    prompt: A lantern
    duration: 5
"""


def write_models(folder: Path) -> Path:
    """Copies of the bundled Seedance 2 Fast file in `folder`/kie-models with RULES."""
    data = json.loads((schemas_dir() / "models/bytedance/seedance-2-fast.json").read_text())
    for name, rule in RULES.items():
        path = folder / "kie-models" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**data, "model": name, "price": {"prose": "", "rule": rule}}))
    return folder / "kie-models"


@pytest.fixture
def batch(make_batch: MakeBatch, tmp_path: Path) -> Batch:
    # The manifest lives in tmp_path/batch1/: its lookup finds tmp_path/kie-models, and so
    # does the simulator, told where they are.
    models = write_models(tmp_path)
    return make_batch(key=KEY, scale=SCALE, model_dirs=(str(models),))


def test_the_dry_run_shows_fractional_estimates_with_two_decimals_at_most(
    batch: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch.write(MANIFEST)
    jobs = {j.id: j.credits for j in load_manifest(batch.manifest).jobs}
    assert jobs == {
        "fast-720": Decimal(165),
        "fast-480": Decimal("77.5"),
        "pro-5s": Decimal(124),  # 24.8 x 5, exactly
        "pro-7s": Decimal("173.6"),
        "odd": Decimal("5.625"),
    }
    assert main([str(batch.manifest), "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("  new")}
    assert "5s 16:9 720p" in lines["fast-720"] and " 165 cr " in lines["fast-720"]
    assert " 77.5 cr " in lines["fast-480"]
    assert " 124 cr " in lines["pro-5s"] and " 173.6 cr " in lines["pro-7s"]
    assert " 5.63 cr " in lines["odd"]  # 5.625: two decimals at most
    # 545.725 credits = $2.728625
    assert "Would submit 5 task(s): an estimated 545.73 credits ($2.73)." in out


def test_a_fractional_budget_and_fractional_credits_in_the_ledger(
    batch: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch.write(MANIFEST.replace("  concurrency: 1\n", "  concurrency: 1\n  max_credits: 242.5\n"))
    assert load_manifest(batch.manifest).settings.max_credits == Decimal("242.5")
    # 165 + 77.5 fit exactly; pro-5s (124) would pass the budget: the run stops there.
    assert batch.run() == 3
    rows = batch.ledger()
    assert rows["fast-720"]["status"] == "succeeded" and rows["fast-720"]["credits"] == 165
    assert rows["fast-480"]["status"] == "succeeded" and rows["fast-480"]["credits"] == 77.5
    assert [rows[j]["status"] for j in ("pro-5s", "pro-7s", "odd")] == ["pending"] * 3
    jsonl = (batch.folder / "ledger.jsonl").read_text()
    assert '"credits": 77.5,' in jsonl and '"credits": 165,' in jsonl  # JSON numbers
    with (batch.folder / "ledger.csv").open(newline="") as f:
        by_id = {r["id"]: r for r in csv.DictReader(f)}
    assert (by_id["fast-480"]["credits"], by_id["fast-720"]["credits"]) == ("77.5", "165")
    assert by_id["odd"]["credits"] == ""
    tasks = {t["input"]["resolution"]: t for t in batch.sim.tasks()}
    assert tasks["480p"]["credits"] == 77.5  # the simulator charged the rule's decimal
    assert batch.stats()["accounts"][0]["credits"] == 100_000 - 242.5
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert "estimated 242.5 credits ($1.21)" in summary  # $1.2125, half up
    assert "Kie reported 242.5 credits ($1.21) for the 2 task(s) that ended in this run" in summary
    page = (batch.folder / "index.html").read_text()
    assert "<dd>77.5 credits (est.)</dd>" in page and "<dd>77.5 credits (Kie)</dd>" in page
    assert "<dd>5.63 credits (est.)</dd>" in page
    assert "<li><b>242.5</b><span>credits (est.), 2 tasks</span></li>" in page


def test_the_balance_check_compares_decimals(
    batch: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch.write(MANIFEST)
    batch.control(credits=545.72)  # a cent of a credit short of 545.725
    assert batch.run() == 3
    err = capsys.readouterr().err
    assert "the balance (545.72 credits) is short of the 545.73 this run needs" in err
    assert batch.stats()["creates"] == 0


@pytest.mark.parametrize(
    ("given", "expected"), [("100.5", Decimal("100.5")), ("2000", Decimal(2000))]
)
def test_max_credits_on_the_command_line_is_a_decimal(given: str, expected: Any) -> None:
    args = build_parser().parse_args(normalise(["m.yaml", "--max-credits", given]))
    assert run_request(args).overrides.max_credits == expected


@pytest.mark.parametrize("given", ["0", "-1", "nan", "inf", "lots"])
def test_max_credits_on_the_command_line_refuses_non_numbers(given: str) -> None:
    with pytest.raises(UsageError, match="--max-credits"):
        build_parser().parse_args(normalise(["m.yaml", "--max-credits", given]))
