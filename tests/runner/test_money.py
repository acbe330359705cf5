"""Issue 25, money counts each task once: a create refused (429) or never connected costs
nothing and is counted again only when it is tried again; one that may have reached Kie
counts once until proven otherwise. Checked against the simulator's own books."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.paths import schemas_dir
from tests.support.batch import KEY, Batch, MakeBatch


def _kling(count: int, settings: str = "download: false") -> str:
    """`count` Kling videos of a known price (no Sora: its model is paused on Kie)."""
    head = "version: 1\nsettings:\n" + "".join(f"  {line}\n" for line in settings.splitlines())
    return (
        head
        + "jobs:\n"
        + "".join(
            f"  - id: clip-{i:03d}\n    model: kling-2.6/text-to-video\n    sound: false\n"
            f"    prompt: A paper boat number {i} on a pond\n"
            for i in range(count)
        )
    )


ESTIMATE = re.compile(r"(\d+) task\(s\) created.*?, estimated ([\d,.]+) credits")


def _estimate(stdout: str) -> tuple[int, float]:
    """(tasks created, estimated credits) from the run's summary line."""
    match = ESTIMATE.search(stdout.strip().splitlines()[-1])
    assert match, stdout
    return int(match[1]), float(match[2].replace(",", ""))


def test_an_outage_under_a_budget_stops_as_an_outage_and_costs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIE_API_KEY", KEY)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(_kling(8, "max_credits: 100\ndownload: false"))
    with socket.socket() as probe:  # a port where nothing listens: Kie is unreachable
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [str(manifest), "--base-url", f"http://127.0.0.1:{port}", "--out", str(tmp_path / "o")]
    assert main([*args, "--time-scale", "0.005", "-q"]) == 3
    out, err = capsys.readouterr()
    print(out.strip().splitlines()[-1])
    assert "stopped: outage: Kie has been unreachable" in err
    assert "budget" not in err
    assert _estimate(out) == (0, 0.0)


def _charged(batch: Batch, task_ids: set[str]) -> float:
    tasks = batch.sim.service.tasks
    return float(sum(tasks[t].credits for t in task_ids))


def test_a_resume_against_429s_estimates_what_kie_charged(
    make_batch: MakeBatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Kie takes 2 creates per window where the runner plans for 20: most creates get a 429.
    batch = make_batch(scale=0.02, create_limit=(2, 10.0))
    batch.write(_kling(12))
    runner = subprocess.Popen(
        batch.command(), env={**os.environ, "KIE_API_KEY": KEY}, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while batch.stats()["creates"] < 3 and runner.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    assert runner.returncode == -signal.SIGKILL, "the first run ended before the kill"
    before = set(batch.sim.service.tasks)
    limited = batch.stats()["rate_limited"]["create"]

    assert batch.run() == 0
    out = capsys.readouterr().out
    print(out.strip().splitlines()[-1])
    made = set(batch.sim.service.tasks) - before
    assert batch.stats()["rate_limited"]["create"] > limited  # the resume met 429s
    assert _estimate(out) == (len(made), _charged(batch, made))


def _unpriced_copy(folder: Path, source: str, name: str) -> None:
    """A bundled model file copied into the manifest's kie-models/ without a price rule."""
    data = json.loads((schemas_dir() / "models" / f"{source}.json").read_text())
    data["model"] = name
    data["price"] = {"prose": "unknown", "rule": None}
    target = folder / "kie-models" / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data))


CHAIN = """\
version: 1
settings:
  max_credits: 500
jobs:
  - id: film
    model: kling-2.6/text-to-video
    sound: false
    prompt: A lamp on an oak table
  - id: hd
    model: test/upscale
    video_url: {output: film}
"""


@pytest.mark.parametrize("source", ["{output: film}", "https://example.com/film.mp4"])
def test_a_budget_refuses_an_unpriced_job_at_any_stage_before_anything_is_sent(
    batch: Batch, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    _unpriced_copy(batch.manifest.parent, "topaz/video-upscale", "test/upscale")
    batch.write(CHAIN.replace("{output: film}", source))
    assert batch.run() == 2
    err = capsys.readouterr().err
    assert "test/upscale" in err and "max_credits" in err
    stats = batch.stats()
    assert stats["creates"] == 0 and stats["uploads"] == 0 and stats["credit_calls"] == 0


def test_the_gallery_prices_each_job_as_the_dry_run_does(
    batch: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The project's own nano-banana-pro file prices an image at 100 credits (the bundled 18).
    data = json.loads((schemas_dir() / "models" / "nano-banana-pro.json").read_text())
    data["price"] = {"prose": "100 credits per image", "rule": {"table": [], "default": 100}}
    (batch.manifest.parent / "kie-models").mkdir()
    (batch.manifest.parent / "kie-models" / "nano-banana-pro.json").write_text(json.dumps(data))
    batch.write(
        "version: 1\nsettings:\n  download: false\njobs:\n"
        "  - id: still\n    model: nano-banana-pro\n    prompt: A mug on an oak table\n"
    )
    assert batch.run("--dry-run") == 0
    plan = capsys.readouterr().out
    assert " 100 cr " in plan and "an estimated 100 credits" in plan
    assert batch.run() == 0
    page = (batch.out / "index.html").read_text()
    assert "<dt>price</dt><dd>100 credits (est.)</dd>" in page
    assert "<li><b>100</b><span>credits (est.), 1 task</span></li>" in page


def test_the_dry_run_says_what_the_budget_covers_and_what_a_run_would_refuse(
    batch: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch.write(_kling(4, "max_credits: 120\ndownload: false"))  # 55 credits each
    assert batch.run("--dry-run") == 0
    out = capsys.readouterr().out
    assert "max_credits 120 covers 2 of the 4 task(s) to submit" in out
    assert "a run would stop before clip-002" in out
    batch.write(_kling(4, "max_credits: 500\ndownload: false"))
    assert batch.run("--dry-run") == 0
    assert "max_credits 500 covers the whole plan (220 credits)." in capsys.readouterr().out
    _unpriced_copy(batch.manifest.parent, "topaz/video-upscale", "test/upscale")
    batch.write(CHAIN)
    assert batch.run("--dry-run") == 0
    out = capsys.readouterr().out
    assert (
        "a run would refuse this plan (exit 2, nothing sent)" in out and "hd (test/upscale)" in out
    )
    assert batch.stats()["creates"] == 0 and not batch.out.exists()
