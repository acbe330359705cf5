"""Input files swapped after the manifest was read (issue 26): for a FIFO, the run must not
hang (the job fails, a SIGTERM still ends the run); for a link to /dev/zero, nothing is read
without end. And `validate` checks a file's size before it reads the file.

The swap happens in the runner's own process, right after it loaded the manifest (the same
window a user or an attacker has between validation and the upload), against the simulator
and its upload host over loopback.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.cli.main import main
from tests.hostile.test_stops import ROOT, STOP_TIMEOUT
from tests.support.batch import KEY, Batch, MakeBatch, batch_factory

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

# Runs the CLI in this process after wrapping load_manifest: once the manifest is read (and
# every input file checked and hashed), the file is replaced by what SWAP makes.
_SWAPPED_RUN = """
import os, sys
from pipeline.commands import run as command
from pipeline.cli.main import main
loaded = command.load_manifest
def load(path):
    manifest = loaded(path)
    target = {target!r}
    os.unlink(target)
    {swap}
    return manifest
command.load_manifest = load
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def make_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeBatch]:
    yield from batch_factory(tmp_path, monkeypatch)


def _manifest(batch: Batch, slow_jobs: int) -> Path:
    image = batch.manifest.parent / "assets" / "mug.png"
    image.parent.mkdir()
    image.write_bytes(PNG)
    jobs = [
        "  - id: still\n    model: kling-2.6/image-to-video\n"
        "    prompt: The camera circles the mug\n"
        "    image_urls: [{file: assets/mug.png}]\n    sound: false\n"
    ]
    jobs += [
        f"  - id: slow-{i}\n    model: sora-2-text-to-video\n    prompt: A paper boat number {i}\n"
        for i in range(slow_jobs)
    ]
    batch.write("version: 1\njobs:\n" + "".join(jobs))
    return image


def _start(
    batch: Batch, target: Path, swap: str, memory: int | None = None
) -> subprocess.Popen[str]:
    code = textwrap.dedent(_SWAPPED_RUN).format(target=str(target), swap=swap)

    def limit() -> None:  # a runaway read ends in MemoryError, not in a swapping machine
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.Popen(
        [sys.executable, "-c", code, *batch.args("--upload-url", batch.sim.base_url, "--verbose")],
        cwd=ROOT,
        env={**os.environ, "KIE_API_KEY": KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit,
    )


def _wait_for(proc: subprocess.Popen[str], log: Path, text: str) -> None:
    end = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < end:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    _, err = proc.communicate()
    raise AssertionError(f"no {text!r} in run.log:\n{err}")


def test_an_input_swapped_for_a_fifo_fails_its_job_and_sigterm_ends_the_run(
    make_batch: MakeBatch,
) -> None:
    batch = make_batch(scale=1.0, latency_median=600.0, latency_min=300.0)
    image = _manifest(batch, slow_jobs=2)
    proc = _start(batch, image, "os.mkfifo(target)")
    _wait_for(proc, batch.folder / "run.log", "not submitted")
    start = time.monotonic()
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("the run did not end after SIGTERM") from None
    seconds = time.monotonic() - start
    print(f"\ntime to exit after SIGTERM with a FIFO input: {seconds:.2f} s")
    _, err = proc.communicate()
    assert proc.returncode == 130, err
    row = batch.ledger()["still"]
    assert row["status"] == "failed" and "FIFO" in row["error_message"]
    assert batch.sim.service.uploads_view() == []


def test_an_input_swapped_for_a_link_to_dev_zero_is_not_read(make_batch: MakeBatch) -> None:
    batch = make_batch()
    image = _manifest(batch, slow_jobs=0)
    proc = _start(batch, image, "os.symlink('/dev/zero', target)", memory=2 << 30)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 1, err
    row = batch.ledger()["still"]
    assert row["status"] == "failed" and "symbolic link" in row["error_message"]
    assert row["task_id"] is None


def test_validate_refuses_an_oversized_file_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An 8 GB file (sparse here) is refused by its size; not a byte past its head is read."""
    big = tmp_path / "big.png"
    with big.open("wb") as handle:
        handle.write(PNG)
        handle.truncate(8 << 30)
    manifest = tmp_path / "batch.yaml"
    manifest.write_text(
        "version: 1\njobs:\n  - id: a\n    model: kling-2.6/image-to-video\n"
        "    prompt: p\n    image_urls: [{file: big.png}]\n"
    )
    import hashlib

    from pipeline.manifest import files

    hashed: list[int] = []

    class Spy:
        def __init__(self) -> None:
            self.inner = hashlib.sha256()

        def update(self, data: bytes) -> None:
            hashed.append(len(data))
            self.inner.update(data)

        def hexdigest(self) -> str:
            return self.inner.hexdigest()

    monkeypatch.setattr(files, "hashlib", SimpleNamespace(sha256=Spy))
    assert main(["validate", str(manifest)]) == 2
    assert "8192.0 MB, over" in capsys.readouterr().out
    assert sum(hashed) == 0


@pytest.mark.parametrize("make", ["fifo", "link"])
def test_validate_refuses_a_fifo_or_a_link_to_a_device(tmp_path: Path, make: str) -> None:
    special = tmp_path / "odd.png"
    if make == "fifo":
        os.mkfifo(special)
    else:
        (tmp_path / "real").mkdir()
        os.symlink("/dev/zero", special)
    manifest = tmp_path / "batch.yaml"
    manifest.write_text(
        "version: 1\njobs:\n  - id: a\n    model: kling-2.6/image-to-video\n"
        "    prompt: p\n    image_urls: [{file: odd.png}]\n"
    )
    assert main(["validate", str(manifest)]) == 2
