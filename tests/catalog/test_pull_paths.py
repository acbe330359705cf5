"""`models pull` into a hostile kie-models/ (issue 26): a planted temporary-file link, a
folder that is a link, a namespace name taken by a file, a FIFO in place of a model file.
Nothing is written through a link, and each ends in a clear error (exit 3), never exit 70.
Against the simulator's catalog over loopback."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.simulator import SimConfig, Simulator, running_simulator

KEY = "sim-key"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with running_simulator(SimConfig(time_scale=0.01)) as simulator:
        yield simulator


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KIE_API_KEY", KEY)
    (tmp_path / "kie-models").mkdir()
    return tmp_path


def pull(sim: Simulator, name: str) -> int:
    return main(["models", "pull", name, "--base-url", sim.base_url])


def test_a_planted_temporary_file_link_is_not_written_through(
    sim: Simulator, here: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    victim = tmp_path_factory.mktemp("outside") / "precious.txt"
    victim.write_text("mine\n")
    (here / "kie-models" / ".nano-banana-pro.json.tmp").symlink_to(victim)
    assert pull(sim, "nano-banana-pro") == 0
    assert victim.read_text() == "mine\n"
    written = json.loads((here / "kie-models" / "nano-banana-pro.json").read_text())
    assert written["model"] == "nano-banana-pro"


def test_a_namespace_folder_that_is_a_link_is_refused(
    sim: Simulator,
    here: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (here / "kie-models" / "kling-2.6").symlink_to(outside, target_is_directory=True)
    assert pull(sim, "kling-2.6/text-to-video") == 3
    err = capsys.readouterr().err
    assert "kling-2.6 is a symbolic link, not a folder" in err
    assert list(outside.iterdir()) == []


def test_a_namespace_name_taken_by_a_file_is_a_clear_error(
    sim: Simulator, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "kie-models" / "kling-2.6").write_text("a note\n")
    assert pull(sim, "kling-2.6/text-to-video") == 3
    err = capsys.readouterr().err
    assert "kling-2.6 is a file, not a folder" in err
    assert "internal error" not in err


def test_kie_models_as_a_link_is_refused(
    sim: Simulator,
    here: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (here / "kie-models").rmdir()
    (here / "kie-models").symlink_to(outside, target_is_directory=True)
    assert pull(sim, "nano-banana-pro") == 3
    assert "kie-models is a symbolic link" in capsys.readouterr().err
    assert list(outside.iterdir()) == []


def test_a_fifo_in_place_of_a_model_file_is_refused(
    sim: Simulator, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.mkfifo(here / "kie-models" / "nano-banana-pro.json")
    assert pull(sim, "nano-banana-pro") == 3
    assert "is a FIFO" in capsys.readouterr().err
