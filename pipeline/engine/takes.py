"""Earlier takes: an edited job's new result never overwrites the old one.

Before a download writes `media/<job>.<ext>` (or `-2`, ...), every older attempt that holds
a file there is set aside whole, all its results together, under `media/takes/` (names in
`medianames`), and the state follows each move. When the edit is reverted, the earlier take
is current again and is moved back to its name, without downloading it again.

Crash safety: the file is moved first and the state written after, and a take's name comes
from its attempt alone. A run killed between the two finds the file already at its new name
(whole, of the recorded size) and only records it; a file that is neither here nor there is
let go (the attempt no longer claims a name), as before takes were kept.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from pipeline.engine.journal import Journal
from pipeline.results.names import is_take, take_stem
from pipeline.state.store import Attempt, StoredResult


def intact(path: Path, size: int | None) -> bool:
    """A regular file (not a link) of the recorded size: what a download left there."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and (size is None or info.st_size == size)


class Takes:
    def __init__(self, journal: Journal, folder: Path) -> None:
        self.journal = journal
        self.folder = folder

    def make_way(self, stem: str, attempt: Attempt) -> None:
        """`<stem>.<ext>` is about to be written for `attempt`: each other attempt holding a
        file there becomes an earlier take."""
        for holder in self.journal.holders(stem, attempt):
            self.set_aside(holder)

    def set_aside(self, holder: Attempt) -> None:
        """Every result of `holder` not yet under `media/takes/` moves there."""
        for result in holder.results:
            if not result.file or is_take(result.file):
                continue
            stem = take_stem(holder.job_id, holder.fingerprint, holder.finished_at, result.index)
            target = stem + PurePosixPath(result.file).suffix
            moved = self._move(result, result.file, target)
            self.journal.file_moved(holder, result.index, target if moved else None)

    def bring_back(self, attempt: Attempt, result: StoredResult, stem: str) -> Attempt | None:
        """Result of `attempt` (current again: its edit was reverted) is an earlier take:
        move it back to `<stem>.<ext>`, setting aside what holds that name now. None when
        the take is not on disk whole (then it is downloaded again)."""
        file = result.file
        if not file or not is_take(file) or not intact(self.folder / file, result.bytes):
            return None
        self.make_way(stem, attempt)
        target = stem + PurePosixPath(file).suffix
        if not self._move(result, file, target):
            return None
        return self.journal.file_moved(attempt, result.index, target)

    def _move(self, result: StoredResult, source: str, target: str) -> bool:
        """Move one result file; True if it is now whole at `target` (moved now, or by a
        run that was killed before it could record the move)."""
        src, dst = self.folder / source, self.folder / target
        if intact(src, result.bytes):
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            return True
        return intact(dst, result.bytes)
