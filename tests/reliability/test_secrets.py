"""The API key never leaks: not into any file of the output folder, not onto stdout or
stderr, on success paths and on every error path (401, transport errors, a failing disk,
tracebacks included)."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.simulator import FaultRates
from tests.reliability.test_environment_faults import _limit_file_size
from tests.support.batch import Batch, MakeBatch
from tests.support.harness import (
    run_to_end,
)
from tests.support.manifests import jobs_yaml

SECRET = "kie-sk-7fQ2-CANARYxLEAKx9d41b6e2a0c35f8e"
FRAGMENTS = (SECRET, "CANARYxLEAKx", SECRET[-12:], SECRET[:12])
OTHER_KEY = "the-key-the-simulator-wants"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _inject(fault: str) -> Callable[[list[str]], list[str]]:
    def command(argv: list[str]) -> list[str]:
        return [sys.executable, "-m", "tests.support.inject", fault, *argv[3:]]

    return command


# name: (SimConfig fields, how to change the command, expected exit codes, traceback?)
SCENARIOS: dict[str, tuple[dict[str, Any], Any, set[int], bool]] = {
    "success": ({}, None, {0}, False),
    "unauthorized_401": ({"api_keys": (OTHER_KEY,)}, None, {3}, False),
    # Kie unreachable: one outage, then the run stops (exit 3) saying a rerun resumes.
    "connection_refused": ({}, "refused", {3}, False),
    "connection_resets": ({"faults": FaultRates(reset=1.0)}, None, {1}, False),
    "garbled_answers": (
        {"faults": FaultRates(malformed_json=0.5, http_500=0.5)},
        None,
        {0, 1},
        False,
    ),
    "disk_eio": ({}, _inject("eio-on-video-write"), {3}, False),
    # A bug (an unexpected exception) exits 70 with one line; its traceback goes to run.log.
    "disk_traceback_video": ({}, _inject("bug-on-video-write"), {70}, False),
    "disk_traceback_state": ({}, _inject("bug-on-state-write"), {70}, False),
    "disk_full_rlimit": ({}, "rlimit", {1, 3}, False),
}


def _scan(folder: Path) -> list[str]:
    """Files under `folder` that hold the key (or a telling piece of it)."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(f.encode() in data for f in FRAGMENTS):
                found.append(str(path))
    return found


def _assert_clean(label: str, *texts: str) -> None:
    for text in texts:
        for fragment in FRAGMENTS:
            assert fragment not in text, f"{label}: the key leaked:\n{text}"


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_key_never_leaks(scenario: str, make_batch: MakeBatch) -> None:
    config, change, codes, traceback = SCENARIOS[scenario]
    batch: Batch = make_batch(key=SECRET, **config)
    batch.write(jobs_yaml(3))
    command = batch.command("--verbose")
    kwargs: dict[str, Any] = {}
    if change == "refused":
        command[command.index("--base-url") + 1] = f"http://127.0.0.1:{_closed_port()}"
    elif change == "rlimit":
        kwargs["preexec_fn"] = _limit_file_size(60_000)
    elif callable(change):
        command = change(command)
    code, out, err = run_to_end(command, SECRET, **kwargs)
    assert code in codes, err
    assert ("Traceback (most recent call last)" in err) == traceback, err
    if code == 70:
        assert "internal error" in err and "run.log" in err, err
        assert "Traceback (most recent call last)" in (batch.out / "run.log").read_text()
    _assert_clean(scenario, out, err)
    # Every other command over the same folder, with the key in the environment.
    for extra in (["status", "--json"], ["ledger"]):
        code, out, err = run_to_end(
            [
                sys.executable,
                "-m",
                "pipeline",
                extra[0],
                str(batch.manifest),
                "--out",
                str(batch.out),
                *extra[1:],
            ],
            SECRET,
        )
        _assert_clean(f"{scenario}/{extra[0]}", out, err)
    code, out, err = run_to_end(batch.command("--dry-run"), SECRET)
    _assert_clean(f"{scenario}/dry-run", out, err)
    assert batch.out.exists()
    assert not _scan(batch.out), _scan(batch.out)
    # The simulator's test views are served without auth: no key there either.
    views = json.dumps(
        [
            batch.sim.stats(),
            batch.sim.requests(),
            batch.sim.tasks(),
            batch.sim.service.settings_view(),
        ]
    )
    _assert_clean(f"{scenario}/simulator", views)
