"""The simulator as a Python object: start/stop, its URL, and in-process /__sim/ views."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from pipeline.simulator.config import SimConfig
from pipeline.simulator.server import SimHTTPServer
from pipeline.simulator.service import KieService


class Simulator:
    """A Kie look-alike on a real socket. `port=0` binds an ephemeral port."""

    def __init__(
        self, config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or SimConfig()
        self.host, self.port = host, port
        self.service = KieService(self.config)
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        host, port = self._server.server_address[:2]
        host = str(host)
        # A wildcard bind is reachable on loopback; a wildcard address is not a URL to call.
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> Simulator:
        if self._server is not None:
            return self
        # The socket listens once the constructor returns: connections queue up from here on.
        server_class = _IPv6Server if ":" in self.host else SimHTTPServer
        store = self.service.store
        previous = store.get_meta("port") if store is not None else None
        self._server = None
        if self.port == 0 and previous is not None:
            # A restarted simulator takes its old port when it is free, so the result and
            # upload URLs a client kept from the last process still lead somewhere.
            with contextlib.suppress(OSError):
                self._server = server_class((self.host, int(previous)), self.service)
        if self._server is None:
            self._server = server_class((self.host, self.port), self.service)
        if store is not None:
            store.set_meta("port", str(self._server.server_address[1]))
        self.service.base_url = self.base_url
        self.service.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sim-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.service.stop()
        self._server = self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # In-process equivalents of the /__sim/ endpoints (same JSON shapes).
    def stats(self) -> dict[str, Any]:
        return self.service.stats_view()

    def tasks(self) -> list[dict[str, Any]]:
        return self.service.tasks_view()

    def requests(self, since: float | None = None) -> list[dict[str, Any]]:
        return self.service.requests_view(since)

    def control(self, **changes: Any) -> dict[str, Any]:
        """Change settings at run time, e.g. control(credits=0, maintenance=True)."""
        return self.service.control(changes)


class _IPv6Server(SimHTTPServer):
    address_family = socket.AF_INET6


@contextmanager
def running_simulator(
    config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> Iterator[Simulator]:
    """A started simulator for the duration of a `with` block, stopped cleanly after."""
    simulator = Simulator(config, host, port).start()
    try:
        yield simulator
    finally:
        simulator.stop()
