"""The ledger and gallery during a run, written in proportion to what changed.

At the end of a run (and by `run-pipeline ledger`) `writer.write_outputs` writes the three
files whole. During a run, rewriting them whole every few seconds wrote the whole batch for
the few jobs that moved (44 MB a rewrite at 20,000 jobs). So, between the whole writes:

- ledger.jsonl and ledger.csv are journals: the row of each job that changed is appended,
  and a job's last line is its current row. The files are written whole (atomically) when
  the run's first write comes, when the appended lines have grown as large as the whole
  files were (so the files stay within about twice their size, and each byte of a whole
  write is paid for by as many appended ones), and whenever a file is not as this writer
  left it (deleted, replaced, edited). The run's final write is whole, one row per job,
  exactly as before.
- An append is one write() of whole lines; one that fails is cut back to the file's size
  before it, so no half line stays behind (a reader between the two sees only what ends
  with a newline, and run-pipeline's readers skip a line that does not parse).
- index.html is rewritten whole, but only once the rows changed since its last write add up
  to GALLERY_SHARE of the batch (a page of at most GALLERY_ALWAYS jobs: at every write), so
  a run writes the page a bounded number of times, whatever its size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.engine.planner import Decision
from pipeline.manifest import Manifest
from pipeline.outputs import ledger
from pipeline.outputs.writer import (
    LEDGER_CSV,
    LEDGER_JSONL,
    atomic_write,
    takes_on_disk,
    write_gallery,
)

GALLERY_SHARE = 0.5  # the page is rewritten once this share of the batch's rows changed ...
GALLERY_ALWAYS = 200  # ... or at every write, for a batch of at most this many jobs


class LiveOutputs:
    """The outputs of one run, between its start and its final whole write. Used from one
    thread at a time (the batch's writer awaits each write)."""

    def __init__(self, folder: Path, manifest: Manifest) -> None:
        self.folder = folder
        self.manifest = manifest
        self.decisions: dict[str, Decision] = {}  # every job's, as last handed in
        self.lines: dict[str, str] = {}  # every job's JSONL line, as the ledger shows it
        self.left: dict[str, tuple[int, int, int]] = {}  # (device, inode, size) as written
        self.whole = 0  # bytes of the two ledger files at their last whole write
        self.appended = 0  # bytes appended to them since
        self.unseen = 0  # rows changed since the gallery was last written
        self.writes = {"whole": 0, "append": 0, "gallery": 0}  # for tests and benchmarks

    def write(self, changed: Sequence[Decision]) -> None:
        """The decisions that changed since the last write (every job's, the first time)."""
        for decision in changed:
            self.decisions[decision.job.id] = decision
        if len(self.decisions) < len(self.manifest.jobs):
            return  # not every job decided yet: nothing whole can be written
        if self._whole_due():
            self._write_whole()
        else:
            self._append(changed)
        jobs = len(self.manifest.jobs)
        if self.unseen and (jobs <= GALLERY_ALWAYS or self.unseen >= GALLERY_SHARE * jobs):
            decisions = self._every()
            write_gallery(self.folder, self.manifest, decisions, [ledger.row(d) for d in decisions])
            self.unseen = 0
            self.writes["gallery"] += 1

    def _every(self) -> list[Decision]:
        return [takes_on_disk(self.folder, self.decisions[job.id]) for job in self.manifest.jobs]

    def _whole_due(self) -> bool:
        if not self.lines or self.appended >= self.whole:
            return True
        for name in (LEDGER_JSONL, LEDGER_CSV):
            try:
                info = os.lstat(self.folder / name)
            except OSError:
                return True
            if (info.st_dev, info.st_ino, info.st_size) != self.left.get(name):
                return True
        return False

    def _write_whole(self) -> None:
        rows = [ledger.row(d) for d in self._every()]
        lines = {row["id"]: ledger.jsonl_line(row) for row in rows}
        self.unseen += sum(1 for job_id, line in lines.items() if self.lines.get(job_id) != line)
        files = {LEDGER_JSONL: "".join(lines.values()), LEDGER_CSV: ledger.csv_text(rows)}
        for name, text in files.items():
            atomic_write(self.folder / name, text)
            self._left(name)
        self.whole = sum(self.left[name][2] for name in files)
        self.lines, self.appended = lines, 0
        self.writes["whole"] += 1

    def _append(self, changed: Sequence[Decision]) -> None:
        rows: list[dict[str, Any]] = []
        for decision in changed:
            row = ledger.row(takes_on_disk(self.folder, decision))
            line = ledger.jsonl_line(row)
            if self.lines.get(decision.job.id) != line:
                self.lines[decision.job.id] = line
                rows.append(row)
        if not rows:
            return
        self.unseen += len(rows)
        files = {
            LEDGER_JSONL: "".join(self.lines[row["id"]] for row in rows),
            LEDGER_CSV: ledger.csv_text(rows, header=False),
        }
        try:
            for name, text in files.items():
                self.appended += append_lines(self.folder / name, text, self.left[name][2])
                self._left(name)
        except BaseException:
            self.lines.clear()  # the files no longer say what `lines` holds: whole next time
            raise
        self.writes["append"] += 1

    def _left(self, name: str) -> None:
        info = os.lstat(self.folder / name)
        self.left[name] = (info.st_dev, info.st_ino, info.st_size)


def append_lines(path: Path, text: str, size: int) -> int:
    """Append `text` (whole lines) to the file at `path`, whose size is `size`, in one
    write; the bytes written. A write that fails part-way is cut back to `size`, so that the
    file never keeps half a line."""
    data = text.encode("utf-8")
    # Never through a symbolic link, never creating the file (it was written whole before).
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0))
    try:
        try:
            rest = memoryview(data)
            while rest:  # one write, unless the disk fills up part-way: then it raises
                rest = rest[os.write(fd, rest) :]
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)
    return len(data)
