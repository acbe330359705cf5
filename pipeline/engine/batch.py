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
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pipeline.cli.progress import ProgressBars, RunLog
from pipeline.engine.diskguard import DiskGuard
from pipeline.engine.runner import Runner, RunOptions, RunSummary
from pipeline.errors import EnvironmentFault, StateError, UsageError
from pipeline.events import Fanout
from pipeline.kie.callbacks import CallbackReceiver
from pipeline.kie.client import KieClient
from pipeline.kie.uploads import DEFAULT_UPLOAD_URL, UploadClient
from pipeline.manifest import Manifest
from pipeline.outputs.live import LiveOutputs
from pipeline.outputs.writer import write_outputs
from pipeline.state.folder import refuse_links, refuse_lost_state, refuse_outside_files
from pipeline.state.lock import FolderLock
from pipeline.state.store import StateStore

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


@contextlib.contextmanager
def _checked(folder: Path, rebuild_hint: str) -> Iterator[None]:
    """Under the folder's lock, before the state is opened (and so created): refuse a
    folder whose state was lost although its ledger or log shows earlier work."""
    refuse_lost_state(folder, rebuild_hint)
    yield


OUTPUTS_COST_SHARE = 0.1  # the periodic ledger and gallery rewrite takes at most this share


async def _keep_outputs(runner: Runner, folder: Path, stop: asyncio.Event) -> None:
    """Write the ledger and gallery during the run when something moved, in proportion to
    what moved (outputs.live). The writing runs on a thread (a whole write at 5,000 jobs
    takes about half a second, which would stall every poll and create), and the writes
    are spaced so that they take at most OUTPUTS_COST_SHARE of the time."""
    written = runner.revision
    pause = runner.timing.outputs_every
    outputs = LiveOutputs(folder, runner.manifest)  # appends what changed (outputs.live)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(pause):
                await stop.wait()
        if stop.is_set() or runner.revision == written:
            continue
        written = runner.revision
        started = time.monotonic()
        changed = runner.live.refresh()  # on the loop: the journal is the loop's
        await asyncio.to_thread(outputs.write, changed)
        cost = time.monotonic() - started
        pause = max(runner.timing.outputs_every, cost / OUTPUTS_COST_SHARE)


async def _run(runner: Runner, folder: Path) -> RunSummary:
    stop = asyncio.Event()
    writer = asyncio.create_task(_keep_outputs(runner, folder, stop))
    try:
        with _signals(runner, asyncio.get_running_loop()):
            return await runner.run()
    finally:
        # Not cancelled: a rewrite still on its thread must end before the final one, or
        # it could land after it with an older ledger.
        stop.set()
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
    refuse_links(folder)
    rebuild = f"run-pipeline rebuild-state {manifest.path} --out {folder}"
    with (
        _environment_errors(folder),
        contextlib.nullcontext() if locked else FolderLock(folder),
        _checked(folder, rebuild),
        StateStore.open(
            folder / "state.sqlite",
            target.endpoint,
            manifest=str(manifest.path.resolve()),
            rebind=rebind,
        ) as store,
    ):
        refuse_outside_files(folder, store.result_files())
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
                    disk = DiskGuard(folder, lambda line: print(line, file=stderr, flush=True))
                    disk.make_reserve()
                    runner = Runner(manifest, store, client, folder, options, emit, uploads, disk)
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
