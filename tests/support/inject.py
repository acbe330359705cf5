"""Run the CLI with a fault injected into the process: `python -m tests.support.inject
FAULT ARGS...`. Used where the fault must happen inside a real runner process (a traceback
printed by the interpreter itself, for instance).

FAULT is one of:
  bug-on-video-write   writing a video raises RuntimeError (an unhandled error: a traceback)
  eio-on-video-write   writing a video raises OSError(EIO) (a failing disk)
  bug-on-state-write   every state transaction after the first 4 raises RuntimeError
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

from pipeline.cli.main import main
from pipeline.state.store import StateStore


def _on_video_write(error: BaseException) -> None:
    real = Path.open

    class Writer:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def write(self, data: bytes) -> int:
            raise error

        def __getattr__(self, name: str) -> Any:
            return getattr(self.handle, name)

        def __enter__(self) -> Writer:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

    def open_(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real(self, mode, *args, **kwargs)
        return Writer(handle) if self.name.endswith(".part") and "a" in mode else handle

    Path.open = open_  # type: ignore[method-assign]


def _on_state_write() -> None:
    real = StateStore.transaction
    count = {"n": 0}

    def transaction(self: StateStore) -> Any:
        count["n"] += 1
        if count["n"] > 4:
            raise RuntimeError("injected: the state file's disk failed")
        return real(self)

    StateStore.transaction = transaction  # type: ignore[method-assign]


def run(fault: str, argv: list[str]) -> int:
    if fault == "bug-on-video-write":
        _on_video_write(RuntimeError("injected: the disk controller failed"))
    elif fault == "eio-on-video-write":
        _on_video_write(OSError(errno.EIO, os.strerror(errno.EIO)))
    elif fault == "bug-on-state-write":
        _on_state_write()
    else:
        raise SystemExit(f"unknown fault {fault!r}")
    return main(argv)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.argv[2:]))
