from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli.main import main

MANIFEST = """\
version: 1
defaults:
  model: sora-2-text-to-video
  n_frames: "15"
jobs:
  - id: one
    prompt: A red kite over green hills
  - id: two
    prompt: A blue kite
    matrix:
      aspect_ratio: [landscape, portrait]
"""


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "batch.yaml"
    path.write_text(MANIFEST)
    return path


def test_validate_ok(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(manifest)]) == 0
    assert "ok (3 jobs)" in capsys.readouterr().out


def test_validate_reports_every_error_with_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\ndefaults: {model: sora-2-text-to-video}\n"
        "jobs:\n  - id: a\n    prompt: x\n    n_frames: 10\n  - id: a\n    prompt: y\n"
    )
    assert main(["validate", str(bad)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{bad}:6:15: ") and "quoted" in lines[0]
    assert lines[1].startswith(f"{bad}:7:9: ") and "duplicate job id 'a'" in lines[1]


def test_dry_run_prints_plan_and_cost_and_writes_nothing(
    manifest: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([str(manifest), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 new" in out and "105 credits ($0.53)" in out
    assert not (tmp_path / "outputs").exists()


def test_schema_command_prints_the_manifest_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$id"].endswith("manifest.schema.json")


def test_usage_error_exits_2(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(manifest), "--create-rate", "fast"]) == 2
    assert "COUNT/SECONDS" in capsys.readouterr().err
