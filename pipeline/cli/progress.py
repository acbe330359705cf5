"""Progress bars: a listener that turns the engine's events into tqdm bars on a terminal.
(run.log, the other listener, is written by `pipeline.outputs.runlog`.)"""

from __future__ import annotations

import os
import sys
import time
from typing import Never, TextIO

from tqdm import tqdm

from pipeline.events import Event, RunTotals
from pipeline.outputs.runlog import printable


def terminal_columns(stream: TextIO) -> int | None:
    """The width the terminal reports for `stream`, None when it cannot say. A pty may
    report 0 columns: bars cannot be drawn there, so plain lines are used instead."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return None


class ProgressBars:
    """Three bars on stderr: submitted, finished, downloaded. Silent unless stderr is a TTY.

    Each bar is redrawn when its count changes (not on a timer, which left a bar showing an
    old count while another moved on), and keeps its own elapsed time: the time of its last
    change. A terminal that reports no width gets plain lines instead of bars. Run-level
    warnings and stops (Kie unreachable, out of credits) are printed above the bars.

    Without bars (stderr is a file or a pipe, a nightly or CI log; or --quiet) the run-level
    warnings still go out, each once, as plain lines (`notes`): they are what such a log is
    read for. The stop itself is left to the run's last lines, which say it anyway."""

    def __init__(
        self,
        totals: RunTotals,
        *,
        download: bool,
        enabled: bool | None = None,
        stream: TextIO | None = None,
        columns: int | None = -1,
        notes: bool = True,
    ) -> None:
        stream = stream or sys.stderr
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.notes = notes
        self.noted: set[str] = set()  # run-level lines printed without bars, each once
        if columns == -1:
            columns = terminal_columns(stream)
        self.plain = columns == 0
        self.started = time.time()  # tqdm's own clock
        finished_total = totals.to_submit + totals.to_track
        self.bars: dict[str, tqdm[Never]] = {}
        self.counts: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self.changed: dict[str, float] = {}
        if not self.enabled:
            return
        specs = [("submitted", totals.to_submit), ("finished", finished_total)]
        if download:
            specs.append(("downloaded", finished_total + totals.to_download))
        for position, (name, total) in enumerate(specs):
            self.counts[name], self.totals[name] = 0, total
            self.changed[name] = self.started
            if self.plain:
                continue
            self.bars[name] = tqdm(
                total=total,
                desc=f"{name:<10}",
                unit="job",
                file=stream,
                position=position,
                leave=True,
                dynamic_ncols=True,
                mininterval=0,
            )

    def _line(self, text: str) -> None:
        text = printable(text)  # event details quote servers
        if self.bars:
            tqdm.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def _note(self, event: Event) -> None:
        """Without bars: a run-level warning, or Kie reachable again, once each."""
        run_level = event.kind == "warning" and event.job_id is None
        back = event.kind == "info" and event.detail.startswith("Kie reachable again")
        if (run_level or back) and event.detail not in self.noted:
            self.noted.add(event.detail)
            print(f"run-pipeline: {event.detail}", file=self.stream, flush=True)

    def __call__(self, event: Event) -> None:
        if not self.enabled:
            if self.notes:
                self._note(event)
            return
        if (event.kind in {"stop", "warning"} and event.job_id is None) or event.kind in {
            "outage",
            "recovered",
        }:
            self._line(f"run-pipeline: {event.detail}")
            return
        if event.kind != "transition":
            return
        bar = {"submitted": "submitted", "downloaded": "downloaded"}.get(event.new or "")
        if event.new in {"succeeded", "failed", "timed_out"} and event.old != "succeeded":
            bar = "finished"
        if bar and bar in self.counts:
            self._advance(bar)

    def _advance(self, name: str) -> None:
        now = time.time()
        self.counts[name] += 1
        self.changed[name] = now
        if name in self.bars:
            self.bars[name].update(1)
            self.bars[name].refresh()
            return
        count, total = self.counts[name], self.totals[name]
        step = max(1, total // 20)  # at most about 20 lines a bar, whatever the batch size
        if count == total or count % step == 0:
            print(
                f"{name:<10} {count}/{total} ({now - self.started:.1f} s)",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        for name, bar in self.bars.items():
            # Frozen at its own last change: a bar that finished early keeps its time.
            last = max(self.changed[name], bar.start_t)
            setattr(bar, "_time", lambda last=last: last)  # noqa: B010 (tqdm has no API)
            bar.close()
