"""Running a batch end to end: output folder, lock, state, log, client, runner, outputs.

`commands.run` calls `run_batch`; everything here is plumbing around `Runner`, kept out of
it so the runner stays about orchestration only.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pipeline.callbacks import CallbackReceiver
from pipeline.client import KieClient
from pipeline.engine.runner import Runner, RunOptions, RunSummary
from pipeline.errors import EnvironmentFault, StateError, UsageError
from pipeline.events import Fanout
from pipeline.lock import FolderLock
from pipeline.manifest import Manifest
from pipeline.outputs.writer import write_outputs
from pipeline.progress import ProgressBars, RunLog
from pipeline.state import StateStore
from pipeline.uploads_client import DEFAULT_UPLOAD_URL, UploadClient

DEFAULT_BASE_URL = "https://api.kie.ai"
SIMULATED_ENDPOINT = "simulator"  # the state of --simulate runs: any simulator port will do


@dataclass(frozen=True)
class Target:
    """Where the run goes: the URL to call, the key, and the endpoint the state records;
    `upload_url`: the file host that `{file: PATH}` inputs are uploaded to (the key goes
    there too, and nowhere else but `base_url`)."""

    base_url: str
    api_key: str
    endpoint: str
    upload_url: str = DEFAULT_UPLOAD_URL


def resolve_target(
    base_url: str | None, environ: Mapping[str, str], upload_url: str | None = None
) -> Target:
    url = (base_url or environ.get("KIE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    uploads = (upload_url or environ.get("KIE_UPLOAD_URL") or DEFAULT_UPLOAD_URL).rstrip("/")
    key = environ.get("KIE_API_KEY", "").strip()
    if not key:
        raise UsageError(
            "KIE_API_KEY is not set: export your Kie API key, or try the batch "
            "on the built-in simulator with --simulate"
        )
    return Target(url, key, url, uploads)


@contextlib.contextmanager
def _signals(runner: Runner, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """First Ctrl-C or SIGTERM: stop gracefully. A second one: stop now."""
    installed: list[signal.Signals] = []

    def handle() -> None:
        if runner.control.interrupted:
            raise KeyboardInterrupt
        runner.interrupt()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, handle)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


@contextlib.contextmanager
def _environment_errors(folder: Path) -> Iterator[None]:
    """A disk that is full, read-only or failing ends the run with one clear line (exit 3),
    not a traceback. What was committed before stays in the state file."""
    resume = "everything recorded so far is kept; fix this and rerun to resume"
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise EnvironmentFault(f"{exc.strerror or exc}{where} ({resume})") from None
    except sqlite3.Error as exc:
        raise StateError(
            f"the state file {folder / 'state.sqlite'} could not be written: {exc} ({resume})"
        ) from None


async def _run(runner: Runner, folder: Path) -> RunSummary:
    async def keep_outputs() -> None:
        written = runner.revision
        while True:
            await asyncio.sleep(runner.timing.outputs_every)
            if runner.revision != written:  # a rewrite is O(jobs): only when something moved
                written = runner.revision
                write_outputs(folder, runner.manifest, runner.decisions())

    writer = asyncio.create_task(keep_outputs())
    try:
        with _signals(runner, asyncio.get_running_loop()):
            return await runner.run()
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer


def run_batch(
    manifest: Manifest,
    folder: Path,
    target: Target,
    options: RunOptions,
    *,
    quiet: bool,
    verbose: bool,
    listen: tuple[str, int] | None = None,
    hmac_key: str | None = None,
    stderr: TextIO | None = None,
    rebind: bool = False,
    locked: bool = False,
) -> RunSummary:
    """Run the batch into `folder`; the outputs are written whatever happens. `locked`: the
    caller holds the folder's lock already (--simulate takes it before its simulator)."""
    stderr = stderr or sys.stderr
    download = options.settings.download
    with (
        _environment_errors(folder),
        contextlib.nullcontext() if locked else FolderLock(folder),
        StateStore.open(
            folder / "state.sqlite",
            target.endpoint,
            manifest=str(manifest.path.resolve()),
            rebind=rebind,
        ) as store,
    ):
        log = RunLog(folder / "run.log", mirror=stderr if verbose else None)
        log.write(
            f"=== run of {manifest.path} ({len(manifest.jobs)} jobs) against {target.endpoint}"
        )
        runner: Runner | None = None
        bars: ProgressBars | None = None
        try:

            async def main() -> RunSummary:
                nonlocal runner, bars
                async with (
                    KieClient(target.base_url, target.api_key) as client,
                    UploadClient(target.upload_url, target.api_key) as uploads,
                ):
                    emit = Fanout([log])
                    runner = Runner(manifest, store, client, folder, options, emit, uploads)
                    totals = runner.prepare()
                    bars = ProgressBars(
                        totals, download=download, enabled=False if quiet else None, stream=stderr
                    )
                    emit.listeners.append(bars)
                    if listen is None:
                        return await _run(runner, folder)
                    loop = asyncio.get_running_loop()
                    active_runner = runner

                    def notify(task_id: str) -> None:
                        loop.call_soon_threadsafe(active_runner.poll_now, task_id)

                    with CallbackReceiver(listen[0], listen[1], notify, hmac_key) as receiver:
                        host, port = receiver.address
                        log.write(f"=== receiving callbacks on {host}:{port}")
                        return await _run(runner, folder)

            summary = asyncio.run(main())
        finally:
            if bars is not None:
                bars.close()
            if runner is not None:
                write_outputs(folder, manifest, runner.decisions())
            log.close()
        return summary


__all__ = ["Target", "resolve_target", "run_batch"]
