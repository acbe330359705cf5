"""The simulator's command line goes through the product's one error funnel."""

from __future__ import annotations

import socket

import pytest

from pipeline.cli.main import main
from pipeline.commands.simulate import main as simulator_main


def test_a_bad_setting_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulator_main(["--time-scale", "0"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "time-scale" in line


def test_a_port_in_use_exits_3_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["simulate", "--port", str(port)]) == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("run-pipeline: error: simulate: cannot listen on 127.0.0.1:")
