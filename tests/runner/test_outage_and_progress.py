"""Issue 17, honest output: an unreachable Kie is one outage (not per-job timeouts), and the
progress bars redraw on change, fall back to plain lines, and keep their own times."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.cli.progress import ProgressBars
from pipeline.events import Event, RunTotals
from pipeline.simulator import SimConfig, running_simulator
from tests.support.batch import KEY

SLOW = """\
version: 1
defaults: {model: sora-2-text-to-video}
settings:
  download: false
  max_wait: 900
jobs:
"""


def _jobs(count: int) -> str:
    return SLOW + "".join(
        f"  - id: job-{i}\n    model: kling-2.6/text-to-video\n    sound: false\n"
        f"    prompt: A lamp number {i}\n"
        for i in range(count)
    )


def test_an_unreachable_kie_is_one_outage_that_a_rerun_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIE_API_KEY", KEY)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(_jobs(4))
    out = tmp_path / "out"
    with socket.socket() as probe:  # a port where nothing listens: Kie is unreachable
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    args = [str(manifest), "--base-url", url, "--out", str(out), "--time-scale", "0.005", "-q"]
    assert main(args) == 3
    err = capsys.readouterr().err
    assert "Kie has been unreachable since" in err and "run the same command again" in err
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert {r["status"] for r in rows} == {"pending"}  # not failed, not timed out
    log = (out / "run.log").read_text().splitlines()
    assert sum("Kie is unreachable since" in line for line in log) == 1  # its start
    assert sum("has been unreachable since" in line for line in log) == 1  # the stop
    assert not any("cannot reach Kie; retrying" in line for line in log)
    # Kie is back: the rerun submits each job once.
    config = SimConfig(api_keys=(KEY,), time_scale=0.005)
    with running_simulator(config, port=port) as back:
        assert main(args) == 0
        assert back.stats()["creates"] == 4


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_redraw_on_every_change() -> None:
    stream = _Tty()
    bars = ProgressBars(RunTotals(3, 3, 0, 0), download=False, stream=stream, columns=80)
    for n in range(2):
        bars(Event("transition", f"j{n}", "submitting", "submitted"))
        assert f"{n + 1}/3" in stream.getvalue()  # drawn at once, not on a timer
    bars(Event("stop", detail="out of credits"))
    bars.close()
    assert "run-pipeline: out of credits" in stream.getvalue()


def test_a_terminal_without_width_gets_plain_lines() -> None:
    stream = _Tty()
    bars = ProgressBars(RunTotals(2, 2, 0, 0), download=True, stream=stream, columns=0)
    for n in range(2):
        bars(Event("transition", f"j{n}", "submitting", "submitted"))
        bars(Event("transition", f"j{n}", "generating", "succeeded"))
    bars.close()
    lines = stream.getvalue().splitlines()
    assert lines and all(line.strip() for line in lines)  # no empty bar lines
    assert any(line.startswith("submitted  2/2 (") for line in lines)
    assert any(line.startswith("finished   2/2 (") for line in lines)


def test_each_bar_keeps_its_own_elapsed_time() -> None:
    stream = _Tty()
    bars = ProgressBars(RunTotals(1, 1, 0, 0), download=False, stream=stream, columns=80)
    bars(Event("transition", "j", "submitting", "submitted"))
    start = {name: bar.start_t for name, bar in bars.bars.items()}
    bars.changed["submitted"] = start["submitted"]  # as if it finished at once
    bars.changed["finished"] = start["finished"] + 65  # and this one 65 s later
    bars.close()
    text = stream.getvalue()
    assert "[00:00<" in text and "[01:05<" in text
