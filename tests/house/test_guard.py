"""The autouse guard of tests/conftest.py: tests stay on loopback."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import _loopback


def test_the_guard_refuses_the_network() -> None:
    with socket.socket() as sock, pytest.raises(AssertionError, match="loopback only"):
        sock.connect(("93.184.216.34", 443))


def test_loopback_addresses_pass() -> None:
    assert _loopback(("127.0.0.1", 80)) and _loopback(("::1", 80, 0, 0))
    assert _loopback(("::ffff:127.0.0.1", 80, 0, 0)) and _loopback("/tmp/a.sock")
    assert not _loopback(("10.0.0.1", 80)) and not _loopback(("169.254.169.254", 80))
