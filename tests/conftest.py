"""Shared fixtures. Slow tests (crash loops, full fault matrix) run only with RUN_SLOW=1."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow; set RUN_SLOW=1 (as .ci/run does) to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_real_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach Kie with a developer's real key or base URL."""
    monkeypatch.delenv("KIE_API_KEY", raising=False)
    monkeypatch.delenv("KIE_BASE_URL", raising=False)
    monkeypatch.delenv("KIE_UPLOAD_URL", raising=False)


_LOOPBACK = ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")


def _loopback(address: object) -> bool:
    """A socket address on this machine (or a Unix socket)."""
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths, abstract sockets
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in _LOOPBACK)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test talks to the simulator on loopback, never to the network: any connection to
    another address fails the test at once (Kie must never be called for real)."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded(method: Callable[..., object]) -> Callable[..., object]:
        def call(self: socket.socket, address: object) -> object:
            if not _loopback(address):
                raise AssertionError(f"a test tried to connect to {address!r}: loopback only")
            return method(self, address)

        return call

    monkeypatch.setattr(socket.socket, "connect", guarded(connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(connect_ex))
