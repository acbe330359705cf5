"""The first Ctrl-C or SIGTERM ends the run within seconds, whatever the server does.

An interrupt stops submitting at once (run control). What is already in flight gets
`STOP_GRACE` seconds to end on its own: a create answered in that time has its task id
recorded, a download finishes its file. Past that, the run's loops are cancelled: a create
still waiting for its answer (a 429 storm backing off, a server dripping one byte every few
seconds) keeps its intent row, so the next run treats it as ambiguous and flags it, never
pays for it silently; a poll or download in flight is simply asked again next time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from pipeline.engine.control import RunControl

STOP_GRACE = 2.0  # wall-clock seconds the work in flight has after an interrupt


async def gather_until_stopped(
    tasks: Sequence[asyncio.Future[None]], control: RunControl, grace: float = STOP_GRACE
) -> None:
    """Await every loop of the run; after an interrupt, at most `grace` seconds more.
    An error of a loop is raised as `asyncio.gather` would."""
    everything: asyncio.Future[Any] = asyncio.gather(*tasks)
    interrupted: asyncio.Future[Any] = asyncio.ensure_future(control.interrupt_seen.wait())
    try:
        await asyncio.wait({everything, interrupted}, return_when=asyncio.FIRST_COMPLETED)
        if not everything.done():
            await asyncio.wait({everything}, timeout=grace)
        if everything.done():
            await everything  # raises what a loop raised
            return
        control.aborted = True  # any loop that outlives its cancellation ends at its next check
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await everything  # retrieved: no "exception never retrieved" warning
    finally:
        interrupted.cancel()
