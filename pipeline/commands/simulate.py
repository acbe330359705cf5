"""`run-pipeline simulate`: run the simulator in the foreground until SIGINT/SIGTERM.

The first line on stdout is the base URL alone, flushed as soon as the socket listens, so a
script can start the simulator and read where to point the runner:

    url=$(run-pipeline simulate --port 0 --time-scale 0.01 | head -n 1)
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from pipeline.cli.requests import SimulateRequest
from pipeline.errors import EnvironmentFault


def run(request: SimulateRequest) -> int:
    """Serve until SIGINT or SIGTERM, then return 0. Errors are raised, not printed: the
    product's one error funnel (`pipeline.cli.main.main`) maps them to their exit codes."""
    config = request.config
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Signal handlers can only be set from the main thread; elsewhere (an embedding test
    # harness) the caller stops us by other means.
    in_main = threading.current_thread() is threading.main_thread()
    signals = (signal.SIGINT, signal.SIGTERM) if in_main else ()
    previous = {sig: signal.signal(sig, on_signal) for sig in signals}
    # Imported here: building the `run-pipeline` parser must not load the whole server.
    from pipeline.simulator.simulator import Simulator

    simulator = Simulator(config, request.host, request.port)
    try:
        try:
            simulator.start()
        except OSError as exc:
            raise EnvironmentFault(
                f"simulate: cannot listen on {request.host}:{request.port}: {exc.strerror or exc}"
            ) from None
        print(simulator.base_url, flush=True)
        print(
            f"Kie simulator on {simulator.base_url}: {len(config.api_keys)} API key(s), "
            f"time scale {config.time_scale:g}, seed {config.seed}; stats at "
            f"{simulator.base_url}/__sim/stats. Ctrl-C to stop.",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
        return 0
    finally:
        simulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
