"""Downloading one result safely: stream to .part, hash as it comes, resume with Range, check
the length and the type, and only then rename into place. A final file is always complete.

Every download is bounded whatever the host does: an overall deadline, a no-progress deadline
(no body byte for `stall` seconds, headers dripped included), a size cap, a bounded number of
tries, a resumed answer that does not start where we asked is refused (the .part restarts from
0), and bytes past the declared length are a failure, not an append. The host is never asked
for compression (see `filehosts`), so the declared length is the length of what we store.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pipeline.kie.filehosts import FileURLRefused
from pipeline.results.media import HEAD, MediaMismatch, MediaType, resolve
from pipeline.results.partfiles import PartFiles, part_path

__all__ = [
    "DownloadError",
    "Downloaded",
    "Limits",
    "NoRoom",
    "PartFiles",
    "Result",
    "cap_bytes",
    "part_path",
]

DOWNLOAD_TRIES = 6  # tries in a row without progress before a download is given up
ALL_TRIES = 5  # ... and at most this many times as many tries in all, progress or not
CHUNK = 256 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


MB = 1024 * 1024
# The largest result of each kind when neither the manifest nor the model file says: well
# above what Kie's models make (a 25 s 1080p video is tens of MB), well below what would
# fill a disk. A result over its cap fails its job's download (issue 26: a 2 GiB "video").
DEFAULT_CAPS_MB = {"video": 500, "image": 50, "audio": 200}
ROOM_EVERY = 4 * MB  # free space is checked at the start and after each such stretch


def cap_bytes(media: str | None, model_mb: int | None, setting_mb: int | None) -> int:
    """The size cap of one result: the manifest's (or the flag's) setting, else the model
    file's, else the default of its media kind (of video when the kind is unknown)."""
    mb = setting_mb or model_mb or DEFAULT_CAPS_MB.get(media or "video", DEFAULT_CAPS_MB["video"])
    return mb * MB


@dataclass(frozen=True)
class Limits:
    """Bounds of one download (all tries): bytes, seconds in all, seconds without a byte."""

    max_bytes: int = DEFAULT_CAPS_MB["video"] * MB
    deadline: float = 3600.0
    stall: float = 120.0


class NoRoom(OSError):
    """Free space fell under what the run keeps for its state: the download stops (the
    .part is kept, a rerun resumes it once there is room)."""


class DownloadError(Exception):
    """A download that did not complete. `expired`: the URL needs refreshing; `permanent`:
    another try cannot help (a refused host, a wrong type, over the size cap)."""

    def __init__(self, message: str, *, expired: bool = False, permanent: bool = False) -> None:
        super().__init__(message)
        self.expired = expired
        self.permanent = permanent


@dataclass(frozen=True)
class Downloaded:
    """One completed try: the hash and size, and (new API) where it went and what it is."""

    sha256: str
    size: int
    path: Path | None = None
    media: MediaType | None = None


@dataclass(frozen=True)
class Result:
    """A result on disk. `url` is the URL that worked (it may be a refreshed one);
    `warning` says when the type was unknown (saved as .bin)."""

    path: Path
    sha256: str
    size: int
    media_type: str
    url: str
    warning: str | None = None


@dataclass(frozen=True)
class _Options:
    expected: str | None = None  # the kind of media the model makes ("image", ...), if known
    limits: Limits = field(default_factory=Limits)
    room: Callable[[], bool] = lambda: True  # whether the disk has room to go on


def _hash_existing(part: Path) -> tuple[hashlib._Hash, int, bytes]:
    digest = hashlib.sha256()
    size = 0
    head = b""
    fd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW)
    with open(fd, "rb") as handle:
        while block := handle.read(CHUNK):
            if len(head) < HEAD:
                head += block[: HEAD - len(head)]
            digest.update(block)
            size += len(block)
    return digest, size, head


def sha256_file(path: Path) -> str:
    return _hash_existing(path)[0].hexdigest()


def _start_over(part: Path, message: str) -> DownloadError:
    part.unlink(missing_ok=True)
    return DownloadError(message)


def _expected_total(response: Any, offset: int, part: Path) -> int | None:
    """The file's full length as the answer declares it. A 206 must start exactly at
    `offset`: appending any other range would splice the file."""
    if response.status_code == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
        if not match or int(match.group(1)) != offset:
            raise _start_over(part, f"resumed answer does not start at byte {offset}; restarting")
        return None if match.group(3) == "*" else int(match.group(3))
    length = response.headers.get("content-length", "")
    return int(length) + offset if length.isdigit() else None


async def fetch_once(
    client: Any, url: str, dest: Path, part: Path | None = None, options: _Options = _Options()
) -> Downloaded:
    """One try: continue `part` (default `dest.part`) where it stopped; raise DownloadError
    when incomplete. `dest` is a stem: the extension comes from the type. `client` is a
    KieClient (anything with its `open_file`)."""
    part = part or part_path(dest)
    if part.is_symlink():  # never append through a link someone put in our folder
        part.unlink()
    digest, offset, head = _hash_existing(part) if part.exists() else (hashlib.sha256(), 0, b"")
    limits, media = options.limits, None
    try:
        async with asyncio.timeout(limits.stall) as stall:
            async with client.open_file(url, offset) as response:
                status = response.status_code
                if status in (401, 403, 404, 410):
                    raise DownloadError(f"file URL answered HTTP {status}", expired=True)
                if status == 416:  # our .part is longer than the file: start over
                    raise _start_over(part, "range not satisfiable; restarting")
                encoding = response.headers.get("content-encoding", "identity").lower()
                if encoding not in ("", "identity"):
                    raise DownloadError(f"file host sent {encoding[:20]} content", permanent=True)
                if status == 200 and offset:  # the server ignored Range: start over
                    digest, offset, head = hashlib.sha256(), 0, b""
                    part.unlink(missing_ok=True)
                elif status not in (200, 206):
                    raise DownloadError(f"file URL answered HTTP {status}")
                total = _expected_total(response, offset, part)
                if total is not None and total > limits.max_bytes:
                    raise DownloadError(
                        f"file is {total} bytes, over the {limits.max_bytes} byte cap",
                        permanent=True,
                    )
                content_type = response.headers.get("content-type")
                checked = offset
                _check_room(options, part)
                with part.open("ab") as handle:
                    # Blocks as they arrive: a chunk size would hold back up to that much,
                    # and an interrupted transfer would lose it instead of keeping it.
                    async for block in response.aiter_bytes():
                        if total is not None and offset + len(block) > total:
                            raise _start_over(part, f"host sent more than its {total} bytes")
                        if offset + len(block) > limits.max_bytes:
                            part.unlink(missing_ok=True)
                            raise DownloadError(
                                f"file exceeds the {limits.max_bytes} byte cap", permanent=True
                            )
                        if offset - checked >= ROOM_EVERY:
                            checked = offset
                            _check_room(options, part)
                        handle.write(block)
                        digest.update(block)
                        offset += len(block)
                        stall.reschedule(asyncio.get_running_loop().time() + limits.stall)
                        if media is None and len(head) < HEAD:
                            head += block[: HEAD - len(head)]
                        if media is None and len(head) >= HEAD:
                            media = _media(content_type, url, head, options, part)
                        if offset == total:
                            break  # stop at the declared length
                    handle.flush()
                    os.fsync(handle.fileno())
    except TimeoutError:
        raise DownloadError(
            f"no data for {limits.stall:g} s at {offset} bytes; download stalled"
        ) from None
    except FileURLRefused as exc:
        raise DownloadError(str(exc), permanent=True) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise DownloadError(
            f"download interrupted ({type(exc).__name__}) at {offset} bytes"
        ) from None
    if total is not None and offset != total:
        raise DownloadError(f"download incomplete: {offset} of {total} bytes")
    if offset == 0:
        raise DownloadError("download is empty")
    media = media or _media(content_type, url, head, options, part)
    final = dest.with_name(dest.name + media.extension)
    os.replace(part, final)
    return Downloaded(digest.hexdigest(), offset, final, media)


def _check_room(options: _Options, part: Path) -> None:
    if not options.room():
        raise NoRoom(
            errno.ENOSPC,
            "free space fell under what the run keeps for its state; the download stopped",
            str(part),
        )


def _media(
    content_type: str | None, url: str, head: bytes, options: _Options, part: Path
) -> MediaType:
    try:
        return resolve(content_type, url, head, expected=options.expected)
    except MediaMismatch as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"not a valid result: {exc}", permanent=True) from None


async def _download(
    client: Any,
    url: str,
    dest: Path,
    options: _Options,
    *,
    refresh: Callable[[str], Awaitable[str]],
    pause: Callable[[int], Awaitable[None]],
    tries: int | None,
    source: str | None,
    parts: PartFiles | None,
) -> tuple[Downloaded, str]:
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest, source)
    parts = parts or PartFiles(dest.parent)
    parts.remove_stale(dest.name, keep=part)
    tries = tries or DOWNLOAD_TRIES
    last = "no attempt"
    failures = 0  # tries in a row that added nothing: a try that made progress is not one
    attempts = 0
    try:
        async with asyncio.timeout(options.limits.deadline):
            while failures < tries and attempts < tries * ALL_TRIES:
                attempts += 1
                before = part.stat().st_size if part.exists() else 0
                try:
                    done = await fetch_once(client, url, dest, part, options)
                    parts.discard(part)
                    return done, url
                except DownloadError as exc:
                    if exc.permanent:
                        raise
                    last = str(exc)
                    grew = part.exists() and part.stat().st_size > before
                    failures = 0 if grew else failures + 1
                    if exc.expired:
                        url = await refresh(url)
                    elif failures < tries:
                        await pause(max(failures, 1))
    except TimeoutError:
        raise DownloadError(
            f"gave up: not finished within {options.limits.deadline:g} s ({last})"
        ) from None
    raise DownloadError(f"gave up after {attempts} tries ({failures} without progress): {last}")


async def download_result(
    client: Any,
    url: str,
    stem: Path,
    *,
    refresh: Callable[[str], Awaitable[str]],
    pause: Callable[[int], Awaitable[None]],
    source: str | None = None,
    expected_media: str | None = None,
    limits: Limits | None = None,
    parts: PartFiles | None = None,
    tries: int | None = None,
    room: Callable[[], bool] | None = None,
) -> Result:
    """Download one result URL to `<stem>.<ext>`, the extension from the served type (else
    the bytes, else the URL; `.bin` with a warning). `source` (the task id) names the
    partial download: only a partial download of the same task is resumed. `expected_media`
    ("image", "video", "audio"): a result of another kind, or a text page, is an error.
    `parts`: one PartFiles per folder and run, so no download lists the folder again.
    `room()`: asked before and during the transfer; NoRoom (an OSError) when it says no."""
    options = _Options(expected_media, limits or Limits(), room or (lambda: True))
    done, url = await _download(
        client,
        url,
        stem,
        options,
        refresh=refresh,
        pause=pause,
        tries=tries,
        source=source,
        parts=parts,
    )
    assert done.path is not None and done.media is not None
    return Result(done.path, done.sha256, done.size, done.media.mime, url, done.media.warning)
