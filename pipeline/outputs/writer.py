"""The one writer of a run's outputs: ledger.jsonl, ledger.csv and index.html.

All three are rendered from one list of rows (built from the planner's decisions) and each
is written atomically, so a reader never sees half a file, even if the run is killed while
writing; and a reader of the ledger and of the gallery sees the same facts. (During a run,
between such whole writes, `outputs.live` appends the rows that changed.)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.engine.planner import Decision
from pipeline.manifest import Manifest
from pipeline.outputs import gallery, ledger

GALLERY_FILE = gallery.GALLERY_FILE
LEDGER_JSONL = "ledger.jsonl"
LEDGER_CSV = "ledger.csv"


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); outputs are read by other tools and people.
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def takes_on_disk(folder: Path, decision: Decision) -> Decision:
    """The decision with only the earlier takes whose files are still there: takes are the
    user's to delete, and a deleted one leaves the gallery instead of showing a hole."""
    kept = tuple(
        take
        for take in decision.takes
        if any((folder / str(r.file)).is_file() for r in take.results)
    )
    return decision if kept == decision.takes else replace(decision, takes=kept)


def write_outputs(folder: Path, manifest: Manifest, decisions: Sequence[Decision]) -> Path:
    """The ledger (JSONL and CSV) and the gallery, from the same rows; returns the page."""
    decisions = [takes_on_disk(folder, d) for d in decisions]
    rows = [ledger.row(d) for d in decisions]
    jsonl, csv_text = ledger.render(rows)
    atomic_write(folder / LEDGER_JSONL, jsonl)
    atomic_write(folder / LEDGER_CSV, csv_text)
    return write_gallery(folder, manifest, decisions, rows)


def write_gallery(
    folder: Path,
    manifest: Manifest,
    decisions: Sequence[Decision],
    rows: Sequence[dict[str, Any]],
) -> Path:
    """The gallery of `decisions` (their takes checked on disk) and their ledger `rows`."""
    now = ledger.iso(datetime.now(UTC).timestamp()) or ""
    page = folder / GALLERY_FILE
    atomic_write(page, gallery.render_gallery(manifest, decisions, rows, generated_at=now))
    return page
