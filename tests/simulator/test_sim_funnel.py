"""The simulator's command line goes through the product's one error funnel."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from pipeline.cli.main import main


def test_a_bad_setting_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--time-scale", "0"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "time-scale" in line


def test_python_m_pipeline_simulator_goes_through_the_funnel() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.simulator", "--time-scale", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("run-pipeline: error:") and "time-scale" in done.stderr


def test_a_port_in_use_exits_3_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["simulate", "--port", str(port)]) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("run-pipeline: error: simulate: cannot listen on 127.0.0.1:")
