"""Checking a result without keeping it: the host and the type, as a download would.

A downstream job's `{output: JOB}` input is a result URL that Kie will fetch, and whose task
we pay for: it must pass the checks a download makes (`filehosts` for the host and every
redirect hop, `media.resolve` for the type against the upstream model's kind) even when the
run does not download. Only the first bytes are read; the connection is then closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from pipeline.kie.filehosts import FileURLRefused
from pipeline.results.media import HEAD, MediaMismatch, MediaType, resolve

PROBE_DEADLINE = 60.0  # seconds for the whole probe


class ResultRefused(Exception):
    """The result fails a check a download makes. `permanent`: the same URL always will (a
    refused host, a wrong type); otherwise (no answer, HTTP 5xx) a later try may pass."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


async def probe(client: Any, url: str, expected: str | None) -> MediaType:
    """The type of the result at `url` (`client`: a KieClient, anything with `open_file`),
    checked against the `expected` kind of media; ResultRefused otherwise."""
    head = b""
    try:
        async with asyncio.timeout(PROBE_DEADLINE), client.open_file(url) as response:
            status = response.status_code
            if status not in (200, 206):  # an expired link: a later refresh may cure it
                raise ResultRefused(f"the result URL answered HTTP {status}", permanent=False)
            encoding = response.headers.get("content-encoding", "identity").lower()
            if encoding not in ("", "identity"):
                raise ResultRefused(f"the file host sent {encoding[:20]} content", permanent=True)
            content_type = response.headers.get("content-type")
            async for block in response.aiter_raw():
                head += block
                if len(head) >= HEAD:
                    break
    except FileURLRefused as exc:
        raise ResultRefused(str(exc), permanent=True) from None
    except (TimeoutError, httpx.HTTPError) as exc:
        raise ResultRefused(
            f"the result could not be read ({type(exc).__name__})", permanent=False
        ) from None
    try:
        return resolve(content_type, url, head, expected=expected)
    except MediaMismatch as exc:
        raise ResultRefused(f"not a valid result: {exc}", permanent=True) from None
