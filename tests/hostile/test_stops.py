"""Runs that must stop: the first SIGTERM ends the run within seconds, whatever the server
does (issue 18); and polls redirected elsewhere end the run at once (the last test).

Each test runs `run-pipeline` as a process against the simulator at real time (no time
scale), makes the server hostile, sends one SIGTERM and checks the run ends on its own with
exit 130 and its outputs written. The stop times are printed (`pytest -s`) for the report; the
only bound asserted is the generous `STOP_TIMEOUT`, well under what the hostile server would
hold a call for (the client's 90 s deadline, a create backoff of minutes).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.cli.main import main
from tests.support.batch import KEY, Batch, MakeBatch, batch_factory
from tests.support.hostile import Conn, Request, hostile, response
from tests.support.manifests import jobs_yaml

ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT = 30.0  # seconds a stop may take before the test calls it hung
CREATE = "/api/v1/jobs/createTask"


@pytest.fixture
def make_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeBatch]:
    yield from batch_factory(tmp_path, monkeypatch)


class Run:
    """`run-pipeline` as a child process, its stderr drained on a thread."""

    def __init__(self, batch: Batch, *extra: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipeline",
                str(batch.manifest),
                "--base-url",
                batch.sim.base_url,
                "--out",
                str(batch.folder),
                "--quiet",
                "--verbose",
                *extra,
            ],
            cwd=ROOT,
            env={**os.environ, "KIE_API_KEY": KEY},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_until(self, check: object, what: str, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if callable(check) and check():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"the run ended before {what}:\n{''.join(self.lines)}")
            time.sleep(0.05)
        raise AssertionError(f"no {what} within {timeout} s:\n{''.join(self.lines)}")

    def stop(self) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds until the process ended)."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("the run did not end after SIGTERM") from None
        self.reader.join(5)
        return self.proc.returncode, time.monotonic() - start


def _creates(batch: Batch, code: int | None = None) -> int:
    return sum(
        1
        for r in batch.sim.requests()
        if r["path"] == CREATE and (code is None or r["code"] == code)
    )


def test_sigterm_ends_a_run_in_a_429_storm_on_creates(make_batch: MakeBatch) -> None:
    # Two creates an hour: every create after the second is answered 429, and the runner's
    # backoff grows to minutes.
    batch = make_batch(scale=1.0, create_limit=(2, 3600.0), http_429=True)
    batch.write(jobs_yaml(30))
    run = Run(batch, "--create-rate", "20/10")
    run.wait_until(lambda: _creates(batch, 429) >= 3, "429 storm")
    before = _creates(batch)
    code, seconds = run.stop()
    print(f"\nstop time under a 429 storm on creates: {seconds:.2f} s")
    assert code == 130, "".join(run.lines)
    assert (batch.folder / "ledger.jsonl").exists() and (batch.folder / "index.html").exists()
    # No new create after the signal: at most those already on their way (the create budget
    # lets at most 20 go at once).
    assert _creates(batch) - before <= 20
    rows = batch.rows()
    assert sum(r["status"] == "running" for r in rows) == 2


def test_sigterm_ends_a_run_whose_server_drips_its_answers(make_batch: MakeBatch) -> None:
    batch = make_batch(scale=1.0, drip_interval=5.0, latency_median=600.0, latency_min=300.0)
    batch.write(jobs_yaml(30))
    run = Run(batch, "--create-rate", "4/1")
    run.wait_until(lambda: any("-> submitted" in line for line in run.lines), "a task")
    batch.control(faults={"slow_drip": 1.0})  # every answer from now: one byte per 5 s
    submitted = sum("-> submitted" in line for line in run.lines)
    run.wait_until(lambda: _creates(batch) > submitted + 1, "a dripped create")
    code, seconds = run.stop()
    print(f"\nstop time with every answer dripped one byte per 5 s: {seconds:.2f} s")
    assert code == 130, "".join(run.lines)
    assert (batch.folder / "ledger.jsonl").exists()
    # A create cut off while its answer dripped may have made a task: the next run flags it.
    rows = batch.rows()
    assert all(r["status"] in {"running", "pending"} for r in rows)


def test_polls_redirected_elsewhere_stop_the_run(make_batch: MakeBatch) -> None:
    """Creates get through, then every poll is answered with a redirect (a login page in
    front of the API): the run stops with exit 3 and says so, instead of warning on every
    poll until the tasks time out."""
    batch = make_batch()
    batch.write(jobs_yaml(3))

    def proxy(request: Request, conn: Conn) -> None:
        if "recordInfo" in request.path:
            conn.send(response(302, b"", {"Location": "https://sso.example/login"}))
            return
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        answer = httpx.request(
            request.method,
            batch.sim.base_url + request.path,
            headers=headers,
            content=request.body or None,
        )
        conn.send(
            response(answer.status_code, answer.content, {"Content-Type": "application/json"})
        )

    with hostile(proxy) as server:
        args = batch.args()
        args[args.index("--base-url") + 1] = server.url
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(args)
    assert code == 3, err.getvalue()
    assert "redirect to https://sso.example/login" in err.getvalue()
    assert batch.stats()["creates"] == 3
