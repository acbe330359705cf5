"""Errors a user can meet end in one clear line and their exit code, never in exit 70, a
stray traceback or a death by signal (issue 26): a read-only folder for `ledger` and
`rebuild-state`, a key with a non-ASCII character, `models pull` into a file, an upload host
that refuses the key, a second SIGTERM during downloads, a SIGTERM before the run's own
handler is installed. Against the simulator over loopback; signals to a child process."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.cli.main import main
from pipeline.simulator import SimConfig, running_simulator
from pipeline.state.lock import FolderLock
from tests.hostile.test_stops import ROOT, STOP_TIMEOUT
from tests.support.batch import KEY, Batch, MakeBatch, batch_factory
from tests.support.manifests import jobs_yaml

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def make_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeBatch]:
    yield from batch_factory(tmp_path, monkeypatch)


def _main(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(args))
    return code, out.getvalue()


def _read_only(self: FolderLock) -> FolderLock:
    raise OSError(errno.EROFS, "Read-only file system", str(self.path))


@pytest.mark.parametrize("command", ["ledger", "rebuild-state"])
def test_a_read_only_folder_is_a_clear_error(
    make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """Tests run as root, whom permissions do not stop: the folder's first write (its lock)
    fails as a read-only file system makes it fail."""
    batch = make_batch()
    batch.write(jobs_yaml(1))
    assert batch.run() == 0
    if command == "rebuild-state":
        (batch.folder / "state.sqlite").unlink()
    monkeypatch.setattr(FolderLock, "__enter__", _read_only)
    code, out = _main(command, str(batch.manifest), "--out", str(batch.folder))
    assert code == 3, out
    assert "Read-only file system" in out and "internal error" not in out


@pytest.mark.parametrize("command", [["RUN"], ["models", "list"]])
def test_a_non_ascii_key_is_a_usage_error_that_never_echoes_it(
    make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    batch = make_batch()
    batch.write(jobs_yaml(1))
    secret = "sk-clé-secrète-1234"
    monkeypatch.setenv("KIE_API_KEY", secret)
    args = batch.args() if command == ["RUN"] else [*command, "--base-url", batch.sim.base_url]
    code, out = _main(*args)
    assert code == 2, out
    assert "not printable ASCII (character 6 of 19)" in out
    assert secret not in out and "secr" not in out
    assert batch.stats()["creates"] == 0


def test_models_pull_into_a_file_is_a_clear_error(
    make_batch: MakeBatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = make_batch()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models.txt").write_text("a file\n")
    code, out = _main(
        "models", "pull", "nano-banana-pro", "--dir", "models.txt", "--base-url", batch.sim.base_url
    )
    assert code == 3, out
    assert "models.txt is a file, not a folder" in out and "internal error" not in out


def test_an_upload_host_refusing_the_key_leaves_no_traceback(make_batch: MakeBatch) -> None:
    """Several uploads fail at once with 401; the run stops. The uploads nobody waits for
    any more used to die as 'Task exception was never retrieved' tracebacks."""
    batch = make_batch()
    folder = batch.manifest.parent
    jobs = []
    for i in range(12):
        (folder / f"m{i}.png").write_bytes(PNG + str(i).encode())
        jobs.append(
            f"  - id: j{i}\n    model: kling-2.6/image-to-video\n"
            f"    prompt: The camera circles mug {i}\n"
            f"    image_urls: [{{file: m{i}.png}}]\n    sound: false\n"
        )
    batch.write("version: 1\njobs:\n" + "".join(jobs))
    with running_simulator(SimConfig(time_scale=batch.scale, api_keys=("another",))) as host:
        for attempt in range(3):  # the stray report depended on timing: three tries
            proc = subprocess.run(
                batch.command("--upload-url", host.base_url, "--out", str(folder / f"o{attempt}")),
                cwd=ROOT,
                env={**os.environ, "KIE_API_KEY": KEY},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert proc.returncode == 3, proc.stderr
            assert "API key was refused" in proc.stderr
            assert "Traceback" not in proc.stderr and "never retrieved" not in proc.stderr


def _downloading_run(batch: Batch) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        batch.command(),
        cwd=ROOT,
        env={**os.environ, "KIE_API_KEY": KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    end = time.monotonic() + STOP_TIMEOUT
    while batch.stats()["creates"] < 1 and time.monotonic() < end:
        time.sleep(0.05)
    # From now on every file (and every answer) drips: downloads are under way.
    httpx.post(batch.sim.base_url + "/__sim/control", json={"faults": {"slow_drip": 1.0}})
    time.sleep(1.0)
    return proc


@pytest.mark.parametrize("gap", [0.01, 0.05, 0.2])
def test_a_second_sigterm_during_downloads_leaves_no_traceback(
    make_batch: MakeBatch, gap: float
) -> None:
    batch = make_batch(drip_interval=0.5)
    batch.write(jobs_yaml(12))
    proc = _downloading_run(batch)
    proc.send_signal(signal.SIGTERM)
    time.sleep(gap)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "never retrieved" not in err, err
    assert (batch.folder / "ledger.jsonl").exists()


def test_a_sigterm_before_the_run_handles_signals_is_an_interrupt(tmp_path: Path) -> None:
    """The manifest is a FIFO nobody writes yet (`run-pipeline <(make-manifest)`): the
    command blocks reading it, before any run machinery exists. SIGTERM then is exit 130
    and one line, not a death by signal with nothing said."""
    manifest = tmp_path / "batch.yaml"
    os.mkfifo(manifest)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", str(manifest), "--base-url", "http://127.0.0.1:9"],
        cwd=ROOT,
        env={**os.environ, "KIE_API_KEY": KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    end = time.monotonic() + STOP_TIMEOUT
    while True:  # a writer can open the FIFO only once the command opened it to read
        try:
            writer = os.open(manifest, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert time.monotonic() < end and proc.poll() is None, "the command never read"
            time.sleep(0.02)
    try:  # held open, never written: the command waits in its read
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=STOP_TIMEOUT)
    finally:
        os.close(writer)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
