"""A run of a batch, end to end: the session around the runner.

`commands.run` builds the run request and calls `run_session`; the session enters, in this
order and on one exit stack: the guard that turns disk and state errors into one line, the
folder's lock (for real and simulated runs alike), the connection (`connect`: Kie, or the
in-process simulator whose books live in the folder, so it starts under the lock), the
folder's checks, the state (read once), run.log, then, on the event loop, the API and upload
clients, the callback receiver and the periodic outputs writer. Whatever happens, the ledger
and gallery are written last. The runner itself stays about orchestration only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from pipeline.cli.requests import RunRequest
from pipeline.engine.diskguard import DiskGuard
from pipeline.engine.runner import Runner, RunSummary
from pipeline.events import Fanout, Listener, RunTotals
from pipeline.kie.callbacks import CallbackReceiver
from pipeline.kie.client import KieClient
from pipeline.kie.target import Target
from pipeline.kie.uploads import UploadClient
from pipeline.manifest import Manifest
from pipeline.outputs.live import LiveOutputs
from pipeline.outputs.runlog import RunLog
from pipeline.outputs.writer import write_outputs
from pipeline.paths import RUN_LOG, STATE_FILE
from pipeline.state.folder import (
    environment_errors,
    refuse_links,
    refuse_lost_state,
    refuse_outside_files,
)
from pipeline.state.lock import FolderLock
from pipeline.state.store import StateStore

# Called under the folder's lock, with the session's exit stack: where the run's calls go.
Connect = Callable[[contextlib.ExitStack[bool | None]], Target]
# Given the run's totals once it is prepared: a listener for progress (bars, or nothing).
Progress = Callable[[RunTotals], Listener]


@contextlib.contextmanager
def _signals(runner: Runner, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """First Ctrl-C or SIGTERM: stop gracefully. A second one: stop now, by cancelling the
    run (its parts end through their own cancellation, outputs still written) rather than
    raising out of the loop, which left tasks to die with tracebacks on stderr."""
    installed: list[tuple[signal.Signals, Callable[[int, FrameType | None], Any] | int | None]] = []
    main = asyncio.current_task()

    def handle() -> None:
        if not runner.control.interrupted:
            runner.interrupt()
            return
        # What the forced stop cuts short is expected to fail: not reported on stderr.
        loop.set_exception_handler(_quiet)
        if main is not None:
            main.cancel(FORCED)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            previous = signal.getsignal(sig)
            loop.add_signal_handler(sig, handle)
            installed.append((sig, previous))
    try:
        yield
    finally:
        for sig, previous in installed:
            loop.remove_signal_handler(sig)
            # asyncio leaves SIGTERM at its default (death by signal) after the loop: the
            # handler from before (cli.main's: an interrupt) guards the final writes.
            if previous is not None:
                signal.signal(sig, previous)


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


FORCED = "a second interrupt"


def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's error report after a forced stop: cancellations and interrupts are the
    stop itself; anything else is still reported."""
    if not isinstance(context.get("exception"), asyncio.CancelledError | KeyboardInterrupt):
        loop.default_exception_handler(context)


async def _run(runner: Runner, folder: Path) -> RunSummary:
    stop = asyncio.Event()
    writer = asyncio.create_task(_keep_outputs(runner, folder, stop))
    try:
        with _signals(runner, asyncio.get_running_loop()):
            return await runner.run()
    except asyncio.CancelledError as exc:
        if exc.args != (FORCED,):
            raise
        raise KeyboardInterrupt from None  # cli.main: "interrupted", exit 130
    finally:
        # Not cancelled: a rewrite still on its thread must end before the final one, or
        # it could land after it with an older ledger.
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await writer


class Session:
    """The parts a run needs, entered in order; `run` drives the runner on an event loop."""

    def __init__(
        self,
        request: RunRequest,
        manifest: Manifest,
        target: Target,
        store: StateStore,
        log: RunLog,
        progress: Progress,
        *,
        stderr: TextIO,
        hmac_key: str | None,
    ) -> None:
        self.request = request
        self.manifest = manifest
        self.target = target
        self.store = store
        self.log = log
        self.progress = progress
        self.stderr = stderr
        self.hmac_key = hmac_key
        self.folder = request.folder
        self.runner: Runner | None = None

    def warn(self, line: str) -> None:
        print(line, file=self.stderr, flush=True)

    async def run(self) -> RunSummary:
        folder, target = self.folder, self.target
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(KieClient(target.base_url, target.api_key))
            uploads = await stack.enter_async_context(
                UploadClient(target.upload_url, target.api_key)
            )
            emit = Fanout([self.log])
            disk = DiskGuard(folder, self.warn)
            disk.make_reserve()
            runner = Runner(
                self.manifest, self.request, self.store, client, folder, emit, uploads, disk
            )
            self.runner = runner
            emit.listeners.append(stack.enter_context(_closing(self.progress(runner.prepare()))))
            listen = self.request.callback_listen
            if listen is not None:
                loop = asyncio.get_running_loop()
                receiver = stack.enter_context(
                    CallbackReceiver(
                        listen[0],
                        listen[1],
                        functools.partial(_poll_soon, loop, runner),
                        self.hmac_key,
                    )
                )
                host, port = receiver.address
                self.log.write(f"=== receiving callbacks on {host}:{port}")
            return await _run(runner, folder)


def _poll_soon(loop: asyncio.AbstractEventLoop, runner: Runner, task_id: str) -> None:
    """A callback arrived (on the receiver's thread): poll that task at once, on the loop."""
    loop.call_soon_threadsafe(runner.poll_now, task_id)


@contextlib.contextmanager
def _closing(listener: Listener) -> Iterator[Listener]:
    """A listener with a `close()` (the progress bars) is closed when the run ends."""
    try:
        yield listener
    finally:
        close = getattr(listener, "close", None)
        if callable(close):
            close()


def run_session(
    request: RunRequest,
    manifest: Manifest,
    connect: Connect,
    progress: Progress,
    *,
    stderr: TextIO,
    hmac_key: str | None = None,
) -> RunSummary:
    """Run the batch into `request.folder`; the outputs are written whatever happens."""
    folder = request.folder
    rebuild = f"run-pipeline rebuild-state {manifest.path} --out {folder}"
    with contextlib.ExitStack() as stack:
        stack.enter_context(environment_errors(folder))
        refuse_links(folder)
        stack.enter_context(FolderLock(folder))
        target = connect(stack)
        refuse_lost_state(folder, rebuild)
        store = stack.enter_context(
            StateStore.open(
                folder / STATE_FILE,
                target.endpoint,
                manifest=str(manifest.path.resolve()),
                rebind=request.rebind,
            )
        )
        refuse_outside_files(folder, store.result_files())
        log = RunLog(folder / RUN_LOG, mirror=stderr if request.verbose else None)
        stack.callback(log.close)
        log.write(
            f"=== run of {manifest.path} ({len(manifest.jobs)} jobs) against {target.endpoint}"
        )
        session = Session(
            request, manifest, target, store, log, progress, stderr=stderr, hmac_key=hmac_key
        )
        try:
            return asyncio.run(session.run())
        finally:
            if session.runner is not None:
                write_outputs(folder, manifest, session.runner.decisions())


__all__ = ["Connect", "Progress", "Session", "run_session"]
