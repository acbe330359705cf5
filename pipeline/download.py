"""Downloading one result video safely: stream to .part, hash as it comes, resume with Range,
check the length, and only then rename into place. A file in videos/ is always complete."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from pipeline.client import KieClient

DOWNLOAD_TRIES = 6  # tries in a row without progress before a download is given up
CHUNK = 256 * 1024
_RANGE_TOTAL = re.compile(r"bytes \d+-\d+/(\d+)")


class DownloadError(Exception):
    """A download that did not complete; `expired` means the URL needs refreshing."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class Downloaded:
    sha256: str
    size: int


def _hash_existing(part: Path) -> tuple[hashlib._Hash, int]:
    digest = hashlib.sha256()
    size = 0
    with part.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            size += len(block)
    return digest, size


def sha256_file(path: Path) -> str:
    return _hash_existing(path)[0].hexdigest()


def part_path(dest: Path, source: str | None = None) -> Path:
    """Where `dest` is downloaded to first. `source` (the task id) names the content: a
    partial download of another task for the same file (an edited job) is never resumed,
    which would splice two videos into one file of the right length."""
    if source is None:
        return dest.with_name(dest.name + ".part")
    tag = hashlib.sha256(source.encode()).hexdigest()[:16]
    return dest.with_name(f"{dest.name}.{tag}.part")


def _remove_stale_parts(dest: Path, keep: Path) -> None:
    stale = re.compile(re.escape(dest.name) + r"(\.[0-9a-f]{16})?\.part")
    for path in dest.parent.iterdir():
        if path != keep and stale.fullmatch(path.name):
            path.unlink(missing_ok=True)


async def fetch_once(
    client: KieClient, url: str, dest: Path, part: Path | None = None
) -> Downloaded:
    """One try: continue `part` (default `dest.part`) where it stopped; raise DownloadError
    when incomplete."""
    part = part or part_path(dest)
    digest, offset = _hash_existing(part) if part.exists() else (hashlib.sha256(), 0)
    try:
        async with client.open_file(url, offset) as response:
            status = response.status_code
            if status in (401, 403, 404, 410):
                raise DownloadError(f"file URL answered HTTP {status}", expired=True)
            if status == 416:  # our .part is longer than the file: start over
                part.unlink(missing_ok=True)
                raise DownloadError("range not satisfiable; restarting")
            if status == 200 and offset:  # the server ignored Range: start over
                digest, offset = hashlib.sha256(), 0
                part.unlink(missing_ok=True)
            elif status not in (200, 206):
                raise DownloadError(f"file URL answered HTTP {status}")
            total = _expected_total(response, offset)
            with part.open("ab") as handle:
                # Blocks as they arrive: a chunk size would hold back up to that much, and
                # an interrupted transfer would lose it instead of keeping it to resume.
                async for block in response.aiter_bytes():
                    handle.write(block)
                    digest.update(block)
                    offset += len(block)
                handle.flush()
                os.fsync(handle.fileno())
    except httpx.HTTPError as exc:
        raise DownloadError(
            f"download interrupted ({type(exc).__name__}) at {offset} bytes"
        ) from None
    if total is not None and offset != total:
        raise DownloadError(f"download incomplete: {offset} of {total} bytes")
    if offset == 0:
        raise DownloadError("download is empty")
    os.replace(part, dest)
    return Downloaded(digest.hexdigest(), offset)


def _expected_total(response: httpx.Response, offset: int) -> int | None:
    if response.status_code == 206:
        match = _RANGE_TOTAL.match(response.headers.get("content-range", ""))
        return int(match.group(1)) if match else None
    length = response.headers.get("content-length")
    return int(length) + offset if length and length.isdigit() else None


async def download(
    client: KieClient,
    url: str,
    dest: Path,
    *,
    refresh: Callable[[str], Awaitable[str]],
    tries: int | None = None,
    pause: Callable[[int], Awaitable[None]],
    source: str | None = None,
) -> tuple[Downloaded, str]:
    """Download `url` to `dest`, resuming and refreshing an expired URL. Returns the result
    and the URL that worked (it may be a refreshed one). `source` identifies the content
    (the task id): only a partial download of the same source is resumed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest, source)
    _remove_stale_parts(dest, part)
    tries = tries or DOWNLOAD_TRIES
    last = "no attempt"
    failures = 0  # tries in a row that added nothing: a try that made progress is not one
    while failures < tries:
        before = part.stat().st_size if part.exists() else 0
        try:
            return await fetch_once(client, url, dest, part), url
        except DownloadError as exc:
            last = str(exc)
            grew = part.exists() and part.stat().st_size > before
            failures = 0 if grew else failures + 1
            if exc.expired:
                url = await refresh(url)
            elif failures < tries:
                await pause(max(failures, 1))
    raise DownloadError(f"gave up after {tries} tries without progress: {last}")
