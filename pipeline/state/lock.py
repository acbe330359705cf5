"""One run per output folder, enforced with an OS file lock (released by the OS on any exit)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType

from pipeline.errors import StateError

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


class FolderLock:
    """`with FolderLock(out):` holds `out/.lock` or raises StateError at once."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> FolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Never through a link: truncating it would truncate a file outside the folder.
        nofollow = getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | nofollow, 0o644)
        except OSError as exc:
            if self.path.is_symlink():
                raise StateError(
                    f"{self.path} is a symbolic link: run-pipeline writes only to files of "
                    "its own; remove the link, then rerun"
                ) from None
            raise exc
        if not _try_lock(fd):
            os.close(fd)
            raise StateError(
                f"output folder {self.path.parent} is in use by another run "
                "(wait for it to finish, or use --out for a separate folder)"
            )
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
