"""The output folder is the product's own: checks made before a run trusts it (issue 18).

A nightly workflow may restore the folder from a cache, a user may tidy it by hand. Before a
run opens anything in it:
- no part of it may be a symbolic link or a special file (the state, its lock and log, the
  reserve, the media folders and everything under them): writing through a link writes
  outside the folder, and opening a FIFO blocks the run;
- a folder whose ledger (JSONL or CSV), log or media show earlier work must still have its
  state file, that file must be ours, and it must remember some task: a lost state would
  make the run re-create every job without a word. The way out is `run-pipeline
  rebuild-state`, which rebuilds it from the ledger and log;
- every file a state row names must lie inside the folder.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from pipeline.errors import EnvironmentFault, StateError
from pipeline.paths import GALLERY_FILE, LEDGER_CSV, LEDGER_JSONL, RUN_LOG, STATE_FILE
from pipeline.safefiles import odd_entry, walk_odd
from pipeline.state.opening import state_problem

# run.log is rotated once it passes this size: the older part becomes run.log.1 (replacing
# the one before), so the log of a folder kept for months stays bounded, and so does what
# the readers below (the lost-state guard, rebuild-state) read.
LOG_LIMIT = 32 * 2**20
OWN_FILES = (
    STATE_FILE,
    f"{STATE_FILE}-wal",
    f"{STATE_FILE}-shm",
    ".lock",
    RUN_LOG,
    f"{RUN_LOG}.1",
    LEDGER_JSONL,
    LEDGER_CSV,
    GALLERY_FILE,
    ".reserve",
)
MEDIA_DIRS = ("videos", "media")
_SUBMITTED = re.compile(r" -> submitted task=(?!-)(\S+)")


def rotated_log(log: Path) -> Path:
    """Where `log` goes when it is rotated."""
    return log.with_name(log.name + ".1")


def log_files(folder: Path) -> list[Path]:
    """The parts of the folder's log that exist, oldest first: run.log.1, then run.log."""
    log = folder / RUN_LOG
    return [path for path in (rotated_log(log), log) if path.is_file()]


@contextlib.contextmanager
def environment_errors(folder: Path) -> Iterator[None]:
    """A disk that is full, read-only or failing ends the command (a run, `ledger`,
    `rebuild-state`) with one clear line (exit 3), not a traceback. What was committed
    before stays in the state file."""
    resume = "everything recorded so far is kept; fix this and rerun to resume"
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise EnvironmentFault(f"{exc.strerror or exc}{where} ({resume})") from None
    except sqlite3.Error as exc:
        raise StateError(
            f"the state file {folder / STATE_FILE} could not be written: {exc} ({resume})"
        ) from None


def refuse_links(folder: Path) -> None:
    """StateError if the folder, a file or folder of its own, or anything under its media
    folders (takes and per-job folders included) is a symbolic link or a special file (a
    FIFO, a socket, a device). Everything is looked at with lstat: nothing is followed, and
    nothing is opened (a FIFO would block the start)."""
    if folder.is_symlink():
        raise StateError(_link_message(folder, folder, "a symbolic link"))
    for name in OWN_FILES:
        what = odd_entry(folder / name)
        if what is not None:
            raise StateError(_link_message(folder, folder / name, what))
    for media in MEDIA_DIRS:
        path = folder / media
        what = odd_entry(path, folder=True)
        if what is not None:
            raise StateError(_link_message(folder, path, what))
        for odd, what in walk_odd(path):
            raise StateError(_link_message(folder, odd, what))


def _link_message(folder: Path, path: Path, what: str) -> str:
    return (
        f"{path} is {what}: run-pipeline writes only to files and folders of its own in "
        f"{folder}. Replace it with the real file or folder (or remove it), then rerun"
    )


def earlier_work(folder: Path) -> str | None:
    """What in the folder shows an earlier run submitted tasks: a ledger row (JSONL or CSV)
    with a task id, a log line recording one, or a result file (earlier takes included);
    None when nothing does."""
    ledger = folder / LEDGER_JSONL
    if ledger.is_file():
        for line in _lines(ledger):
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(row, dict) and row.get("task_id"):
                return f"{ledger.name} lists task {row['task_id']} for job {row.get('id')}"
    table = folder / LEDGER_CSV
    if table.is_file():
        with table.open(encoding="utf-8", errors="replace", newline="") as handle:
            for cells in csv.DictReader(handle):
                if cells.get("task_id"):
                    return f"{table.name} lists task {cells['task_id']} for job {cells.get('id')}"
    for log in reversed(log_files(folder)):  # the newest part is the likelier to say
        for line in _lines(log):
            if _SUBMITTED.search(line):
                return f"{log.name} records a submitted task"
    for media in MEDIA_DIRS:
        found = _a_file_under(folder / media)
        if found is not None:
            return f"{found.relative_to(folder)} is a result an earlier run downloaded"
    return None


def _a_file_under(top: Path) -> Path | None:
    """A file anywhere under `top` (links not followed), if there is one."""
    if top.is_symlink() or not top.is_dir():
        return None
    for root, dirs, files in os.walk(top):
        if files:
            return Path(root) / sorted(files)[0]
        dirs.sort()
    return None


def _lines(path: Path) -> Iterable[str]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        yield from handle


def _remembers_nothing(path: Path) -> bool:
    """A state file of ours that holds no attempt at all (what an interrupted rebuild of an
    older version left)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT 1 FROM attempts LIMIT 1").fetchone() is None
        finally:
            conn.close()
    except sqlite3.Error:
        return False  # opening it proper says what is wrong


def refuse_lost_state(folder: Path, rebuild_hint: str) -> None:
    """StateError when earlier work shows in the folder but its state file is missing,
    foreign, or remembers no task: running on would submit every job again."""
    state = folder / STATE_FILE
    problem = state_problem(state)
    if problem is None and _remembers_nothing(state):
        problem = "remembers no task"
    if problem is None:
        return
    evidence = earlier_work(folder)
    if evidence is None:
        return
    raise StateError(
        f"the state file {state} {problem}, but {evidence}: running now "
        f"would pay for those jobs again. Rebuild the state from the ledger and log with "
        f"`{rebuild_hint}` (known tasks are then tracked, not re-created), or use another --out"
    )


def inside(folder: Path, file: str) -> bool:
    """Whether a file a state row names (relative to the folder) stays inside it."""
    rel = PurePosixPath(file)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        return False
    resolved = os.path.realpath(folder / rel)
    return resolved.startswith(os.path.realpath(folder) + os.sep)


def refuse_outside_files(folder: Path, files: Iterable[tuple[str, str]]) -> None:
    """StateError when a (job id, file) of the state names a file outside the folder."""
    for job_id, file in files:
        if not inside(folder, file):
            raise StateError(
                f"the state file {folder / STATE_FILE} says job {job_id}'s file is "
                f"{file!r}, outside the output folder: the state was edited or "
                "belongs elsewhere; refusing to use it (restore it, or use another "
                "--out)"
            )
