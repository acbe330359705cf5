"""Fetching result files from file hosts: no key, no compression, checked hosts, few redirects.

A result URL comes from a server, so it is untrusted: it may point at the user's own machine
or network (`http://127.0.0.1/admin`, a cloud metadata address) or redirect there. Every hop
is checked before it is contacted: http or https only, at most `MAX_REDIRECTS` hops, and a
host (by name and by every address it resolves to) that is public, or loopback when the API
itself is on loopback (the simulator), or private when the API itself is on a private network.
Link-local, multicast and unspecified addresses are never contacted. Checking the resolved
addresses and then connecting leaves a DNS-rebinding window; it closes the plain cases.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import httpx

from pipeline.kie.answers import clean_text

MAX_REDIRECTS = 5

Reach = Literal["loopback", "private", "public", "never"]


class FileURLRefused(Exception):
    """A result URL (or a redirect hop) we will not contact. Not worth retrying."""


def address_reach(address: str) -> Reach:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "never"
    return "public" if ip.is_global else "private"


def host_reach(host: str) -> Reach | None:
    """The reach of a host we can judge without DNS (an address or localhost), else None."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    try:
        return address_reach(host)
    except ValueError:
        return None


def allowed_reach(api_base: str) -> frozenset[Reach]:
    """Which hosts results may live on, given where the API is."""
    base = host_reach(httpx.URL(api_base).host)
    if base == "loopback":
        return frozenset({"public", "loopback"})
    if base == "private":
        return frozenset({"public", "private"})
    return frozenset({"public"})


class FileHosts:
    """An httpx client for file hosts, whose `stream` checks and follows redirects itself."""

    def __init__(
        self, api_base: str, *, timeout: httpx.Timeout, limits: httpx.Limits, user_agent: str
    ) -> None:
        self.allowed = allowed_reach(api_base)
        # Accept-Encoding identity: a compressed body could expand without limit, and the
        # declared length must be the length of the bytes we store.
        self._client = httpx.AsyncClient(
            timeout=timeout,
            limits=limits,
            headers={"User-Agent": user_agent, "Accept-Encoding": "identity"},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def check(self, url: httpx.URL) -> None:
        if url.scheme not in ("http", "https"):
            raise FileURLRefused(f"result URL scheme {clean_text(url.scheme, 20)!r} refused")
        host = url.host
        if not host:
            raise FileURLRefused("result URL without a host")
        reach = host_reach(host)
        reaches = {reach} if reach is not None else await _resolved_reach(host, url.port)
        refused = sorted(r for r in reaches if r not in self.allowed)
        if refused:
            raise FileURLRefused(
                f"result host {clean_text(host, 100)} is {refused[0]}: refused "
                "(results are fetched only from public hosts)"
            )

    @asynccontextmanager
    async def stream(
        self, method: str, url: str, headers: dict[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """Like httpx's `stream`, hop by hop: each hop is checked before it is contacted."""
        target = httpx.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            await self.check(target)
            request = self._client.build_request(method, target, headers=headers)
            response = await self._client.send(request, stream=True)
            location = response.headers.get("location")
            if response.is_redirect and location:
                await response.aclose()
                try:
                    target = target.join(location)
                except httpx.InvalidURL:
                    raise FileURLRefused("redirect to an invalid URL") from None
                continue
            try:
                yield response
            finally:
                await response.aclose()
            return
        raise FileURLRefused(f"more than {MAX_REDIRECTS} redirects")


async def _resolved_reach(host: str, port: int | None) -> set[Reach]:
    """The reach of every address `host` resolves to; empty when it does not resolve (the
    connection then fails on its own)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port or 443, type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError):
        return set()
    return {address_reach(str(info[4][0])) for info in infos}
