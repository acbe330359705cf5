"""Issue 17's "done when": exactly the README's sequence on the shipped demo, in separate
processes as a user runs it: the demo, Ctrl-C it and run it again, edit a prompt and run it
again. Every job is created once per version, as it would be on Kie."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from pipeline.simulator.persist import FILE_NAME as SIM_FILE

ROOT = Path(__file__).resolve().parents[2]
DEMO = ["manifests/campaign.yaml", "--simulate"]  # what `python3 dev.py demo` runs
# This tree's code, whatever the environment's editable install points at.
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _run(cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pipeline", *DEMO, *extra]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, env=ENV)


def _tasks(folder: Path) -> int:
    with sqlite3.connect(folder / SIM_FILE) as db:
        count: int = db.execute("SELECT count(*) FROM tasks").fetchone()[0]
    return count


def test_the_readme_sequence_creates_each_job_once(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    folder = tmp_path / "outputs" / "campaign-simulated"
    transcript: list[str] = []

    # 1. The demo, interrupted (Ctrl-C) once some tasks are in flight; slower, so it can be.
    command = [sys.executable, "-m", "pipeline", *DEMO, "--time-scale", "0.05"]
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    log = folder / "run.log"
    while not (log.exists() and log.read_text().count("-> submitted") >= 3):
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    transcript += ["$ run-pipeline manifests/campaign.yaml --simulate   # Ctrl-C", err, out]
    assert process.returncode == 130, err
    interrupted = _tasks(folder)
    assert interrupted >= 3

    # 2. The same command again: it resumes; nothing is created twice.
    second = _run(tmp_path)
    transcript += [
        "$ run-pipeline manifests/campaign.yaml --simulate",
        second.stderr,
        second.stdout,
    ]
    assert second.returncode == 1, second.stderr  # the paused Sora job and the moderated one
    assert "UNIQUE" not in second.stderr
    assert _tasks(folder) == 13  # 14 jobs; Kie creates no task for the paused Sora model

    # 3. Edit one prompt and run again: exactly one new create.
    manifest = tmp_path / "manifests" / "campaign.yaml"
    text = manifest.read_text()
    manifest.write_text(text.replace("Dawn over a quiet city apartment", "Dawn over a loft"))
    third = _run(tmp_path)
    transcript += ["$ run-pipeline manifests/campaign.yaml --simulate", third.stderr, third.stdout]
    assert third.returncode == 1, third.stderr
    assert _tasks(folder) == 14
    assert "1 task(s) created" in third.stdout
    # The edited job's earlier result is kept, and folded under the new one in the gallery.
    (take,) = (folder / "media" / "takes" / "teaser-dawn").iterdir()
    assert take.suffix == ".mp4" and (folder / "media" / "teaser-dawn.mp4").is_file()
    assert "<summary>1 earlier take</summary>" in (folder / "index.html").read_text()

    ledger = (folder / "ledger.jsonl").read_text()
    assert '"possible_duplicate": true' not in ledger
    status = subprocess.run(
        [sys.executable, "-m", "pipeline", "status", "manifests/campaign.yaml", "--simulate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    transcript += ["$ run-pipeline status manifests/campaign.yaml --simulate", status.stdout]
    assert "teaser-horror" in status.stdout and "kie-classroom" in status.stdout
    print("\n".join(transcript))  # the closing note shows it (pytest -s)
