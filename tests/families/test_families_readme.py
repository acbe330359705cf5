"""The README's "Veo and other families" manifest: it validates, and it runs on the
simulator as the README says (a still, a Veo 3.1 film from it, the film in 4K)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.cli.main import main
from tests.support.batch import MakeBatch

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_manifest() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Veo and other families", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match, "the section has a yaml manifest"
    return match.group(1)


def test_the_readme_manifest_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "veo.yaml"
    path.write_text(readme_manifest())
    assert main(["validate", str(path)]) == 0
    assert "ok (3 jobs)" in capsys.readouterr().out


def test_the_readme_manifest_runs(make_batch: MakeBatch) -> None:
    batch = make_batch()
    batch.write(readme_manifest())
    assert batch.run() == 0
    rows = batch.ledger()
    assert [(r["id"], r["model"], r["status"]) for r in rows.values()] == [
        ("still", "google/nano-banana", "succeeded"),
        ("film", "veo3_fast", "succeeded"),
        ("film-4k", "veo/get-4k-video", "succeeded"),
    ]
    assert (batch.out / "media/film-4k.mp4").is_file()
