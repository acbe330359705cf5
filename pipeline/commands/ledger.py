"""`run-pipeline ledger MANIFEST`: rewrite ledger.jsonl, ledger.csv and index.html from the
state file (no network), for example after editing the manifest or deleting the page."""

from __future__ import annotations

from typing import TextIO

from pipeline.cli import report
from pipeline.cli.requests import FolderRequest
from pipeline.commands.folder import read_decisions, require_state
from pipeline.engine.planner import PlanOptions
from pipeline.errors import EXIT_OK
from pipeline.manifest import load_manifest
from pipeline.outputs.writer import write_outputs
from pipeline.state.lock import FolderLock


def run(request: FolderRequest, *, stdout: TextIO) -> int:
    manifest = load_manifest(request.manifest)
    folder = request.folder
    options = PlanOptions.of(manifest.settings)
    require_state(folder)
    # The folder's lock: a running batch rewrites these files itself, and two writers
    # would race (ours could put back an older ledger).
    with FolderLock(folder):
        decisions, _ = read_decisions(manifest, folder, options, missing_ok=False, readonly=False)
        page = write_outputs(folder, manifest, decisions)
    print(
        f"wrote {folder / 'ledger.jsonl'}, {folder / 'ledger.csv'} and {page} "
        f"({report.plural(len(decisions), 'job')})",
        file=stdout,
    )
    return EXIT_OK
