"""`run-pipeline validate` over the corpus: every issue on its own line, exit 0 or 2."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pipeline.cli.main import main

CORPUS = Path(__file__).parent / "corpus"
ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>\S.*)$")


def errors(out: str) -> list[str]:
    """The lines of `validate` output that are not warnings (the Sora models are paused)."""
    return [line for line in out.splitlines() if ": warning: " not in line]


def test_valid_manifests_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(p) for p in sorted((CORPUS / "valid").glob("*/manifest.yaml"))]
    paths.append(str(ROOT / "manifests" / "campaign.yaml"))
    assert main(["validate", *paths]) == 0
    out = errors(capsys.readouterr().out)
    assert len(out) == len(paths)
    assert all(line.startswith(f"{path}: ok") for line, path in zip(out, paths, strict=True))


def test_many_errors_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "many-errors"
    shutil.copytree(CORPUS / "invalid" / "many-errors", case)
    path = str(case / "manifest.yaml")
    assert main(["validate", path]) == 2
    lines = errors(capsys.readouterr().out)
    expected = (case / "expected.txt").read_text().splitlines()
    assert len(lines) == len(expected)
    for line, want in zip(lines, expected, strict=True):  # file order
        match = LINE.match(line)
        assert match and match["path"] == path, line
        want_line, want_col, fragment = want.split(":", 2)
        assert (match["line"], match["col"]) == (want_line, want_col)
        assert fragment.strip() in match["message"]


def test_mixed_files_report_each_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "version: 1\ndefaults: {model: sora-2-text-to-video}\njobs: [{id: a, prompt: hi}]\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ndefaults: {model: sora-2-text-to-video}\njobs:\n\t- id: a\n")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert main(["validate", str(good), str(bad), str(empty)]) == 2
    out = errors(capsys.readouterr().out)
    assert out[0].startswith(f"{good}: ok")
    assert out[1].startswith(f"{bad}:4:1: ") and "tabs" in out[1]
    assert out[2].startswith(f"{empty}:1:1: manifest is empty")
    assert len(out) == 3


def test_relative_path_is_printed_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "m.yaml").write_text(
        "version: 2\njobs: [{id: a, model: nano-banana-pro, prompt: hi}]\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "m.yaml"]) == 2
    assert errors(capsys.readouterr().out) == ["m.yaml:1:10: version must be 1, not 2"]
