"""Opening files that someone else may have swapped: never through a link, never a FIFO or a
device, never more bytes than expected (issue 26).

A file checked when the manifest was read can be replaced before the run reads it: by a FIFO
(a plain open would block for ever, in a thread no signal reaches), or by a link to
`/dev/zero` (a plain read would never end). So every file the run reads or writes in a place
it does not own alone is opened here: without following a final link, without blocking on a
FIFO, and checked with `fstat` to be a regular file before a byte is read; reads stop at a
stated bound. Folders the run writes are walked with `lstat`, so a link or a special file in
them is refused rather than followed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
NONBLOCK = getattr(os, "O_NONBLOCK", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
CHUNK = 1024 * 1024


class NotRegular(OSError):
    """The path is a link, a folder, a FIFO, a socket or a device: not a file we read."""


class TooLarge(OSError):
    """The file holds more bytes than the bound it was read under."""


def kind(mode: int) -> str:
    """What is at a path, in words ("a symbolic link", "a FIFO (named pipe)")."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def open_regular(path: Path, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
    """A descriptor on the regular file at `path`, opened without following a final link
    and without blocking (a FIFO opens at once and is then refused). NotRegular otherwise."""
    try:
        fd = os.open(path, flags | NOFOLLOW | NONBLOCK | CLOEXEC, mode)
    except OSError as exc:
        # ELOOP (a final link under O_NOFOLLOW), ENXIO (a FIFO opened for writing without a
        # reader): say what is there rather than the errno's words.
        info = _lstat(path)
        if info is not None and not stat.S_ISREG(info.st_mode):
            raise NotRegular(exc.errno, f"it is {kind(info.st_mode)}", str(path)) from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotRegular(0, f"it is {kind(info.st_mode)}", str(path))
    # O_NONBLOCK means nothing for a regular file's reads, but a later write must block
    # normally (a full pipe is not possible here; a full disk must raise, not EAGAIN).
    if NONBLOCK:
        os.set_blocking(fd, True)
    return fd


def read_bounded(path: Path, limit: int, *, stopped: Callable[[], bool] = lambda: False) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them (TooLarge beyond);
    `stopped()` is asked between chunks, so a stop ends a long read (InterruptedError)."""
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as handle:
        chunks: list[bytes] = []
        size = 0
        while chunk := handle.read(min(CHUNK, limit + 1 - size)):
            if stopped():
                raise InterruptedError("the run is stopping")
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise TooLarge(0, f"it holds more than {limit:,} bytes", str(path))
    return b"".join(chunks)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def odd_entry(path: Path, *, folder: bool = False) -> str | None:
    """Why `path` cannot be used as one of our files (or, `folder`, our folders): None
    when it is absent or of the right kind, else what it is ("a symbolic link", ...)."""
    info = _lstat(path)
    if info is None:
        return None
    right = stat.S_ISDIR(info.st_mode) if folder else stat.S_ISREG(info.st_mode)
    return None if right else kind(info.st_mode)


def walk_odd(folder: Path) -> Iterator[tuple[Path, str]]:
    """Every entry under `folder` (an existing real folder) that is neither a regular file
    nor a real folder, with what it is; links are reported, never followed."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError:
            continue
        path = Path(entry.path)
        if stat.S_ISDIR(mode):
            yield from walk_odd(path)
        elif not stat.S_ISREG(mode):
            yield path, kind(mode)
