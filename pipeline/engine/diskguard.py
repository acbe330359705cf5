"""A full disk must never cost a task id that Kie has already been paid for (issue 18).

The task id is the one thing a run cannot learn again: Kie has no way to list a key's tasks.
So before each create the run makes sure the little room the state needs is there: a
preallocated reserve file (`.reserve`, RESERVE_BYTES) that is deleted the moment a write of
an answered id fails, so the write can be tried again in the room it frees, and a check of
free space that stops submitting when the disk is nearly full. If the id still cannot be
written, it is kept in memory for the rest of the run and printed on stderr (the only place
left that survives), and the run ends with exit 3.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from pipeline.engine.journal import Journal
from pipeline.errors import EnvironmentFault
from pipeline.manifest import Job
from pipeline.safefiles import open_regular
from pipeline.state.store import Attempt

RESERVE_FILE = ".reserve"
RESERVE_BYTES = 1 << 20  # what recording some thousands of task ids needs, with room to spare
MIN_FREE = 4 << 20  # below this free space (besides the reserve), no new create is sent
# Downloads stop earlier, so that a disk they fill still has room to record task ids.
DOWNLOAD_FLOOR = 2 * MIN_FREE


class DiskGuard:
    def __init__(self, folder: Path, say: Callable[[str], None]) -> None:
        self.folder = folder
        self.say = say  # a line on stderr: not run.log, which the full disk may refuse too
        self.reserve = folder / RESERVE_FILE
        self.unrecorded: dict[str, str] = {}  # job id -> task id Kie gave, not in the state

    def make_reserve(self) -> None:
        """Preallocate the reserve (kept between runs; made again if it was used)."""
        try:
            # A regular file of our own only: a FIFO would block, a link write elsewhere.
            fd = open_regular(self.reserve, os.O_WRONLY | os.O_CREAT)
            try:
                if os.fstat(fd).st_size < RESERVE_BYTES:
                    os.ftruncate(fd, 0)
                    os.write(fd, bytes(RESERVE_BYTES))  # written, not sparse: real blocks
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            # Cannot even make the reserve: the free-space check stops submitting.
            self.release()

    def release(self) -> bool:
        """Free the reserve's room; whether there was one to free."""
        try:
            self.reserve.unlink()
            return True
        except OSError:
            return False

    def has_room(self) -> bool:
        """Whether a create may be sent: the disk has room to record its answer."""
        try:
            free = shutil.disk_usage(self.folder).free
        except OSError:
            return True  # cannot tell: the reserve still covers the next write
        return free >= MIN_FREE

    def download_room(self) -> bool:
        """Whether a download may write on: free space above DOWNLOAD_FLOOR. Every download
        asks as it goes, so results (up to their caps, several at once) never eat the room
        the state needs."""
        try:
            free = shutil.disk_usage(self.folder).free
        except OSError:
            return True
        return free >= DOWNLOAD_FLOOR

    def full_message(self) -> str:
        return (
            f"the disk holding {self.folder} is nearly full (under {MIN_FREE >> 20} MiB free): "
            "no more creates are sent, so that every task id can be recorded; free some space "
            "and rerun to go on"
        )

    def record(self, journal: Journal, job: Job, attempt: Attempt, task_id: str) -> Attempt:
        """Record the task id Kie answered; on a full disk, free the reserve and try once
        more; failing that, keep the id (memory and stderr) and end the run."""
        try:
            return journal.submitted(job, attempt, task_id)
        except (sqlite3.OperationalError, OSError) as first:
            if self.release():
                try:
                    return journal.submitted(job, attempt, task_id)
                except (sqlite3.OperationalError, OSError):
                    pass
            self.unrecorded[job.id] = task_id
            self.say(
                f"run-pipeline: job {job.id} was created as Kie task {task_id}, but the state "
                f"could not record it ({first}); keep this line: a rerun may create it again"
            )
            raise EnvironmentFault(
                f"the state file {self.folder / 'state.sqlite'} could not be written: {first} "
                f"(task {task_id} of job {job.id} is printed above; fix this and rerun)"
            ) from None
