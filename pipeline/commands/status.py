"""`run-pipeline status MANIFEST`: jobs by status from the state file; no network."""

from __future__ import annotations

import json
from typing import TextIO

from pipeline.cli import report
from pipeline.cli.requests import FolderRequest
from pipeline.commands.folder import read_decisions
from pipeline.engine.planner import PlanOptions
from pipeline.errors import EXIT_OK
from pipeline.manifest import load_manifest
from pipeline.outputs.ledger import status_counts


def run(request: FolderRequest, *, stdout: TextIO) -> int:
    manifest = load_manifest(request.manifest)
    options = PlanOptions.of(manifest.settings)
    decisions, _ = read_decisions(manifest, request.folder, options, missing_ok=False)
    if request.json:
        jobs = [
            {
                "id": d.job.id,
                "status": d.status,
                "task_id": d.latest.task_id if d.latest else None,
                "attempts": d.attempts,
                "outputs": len(d.results),
                "next": d.action,
                "reason": d.reason,
            }
            for d in decisions
        ]
        payload = {
            "manifest": str(request.manifest),
            "counts": status_counts(decisions),
            "jobs": jobs,
        }
        json.dump(payload, stdout)
        stdout.write("\n")
    else:
        print(report.status_table(decisions), file=stdout)
    return EXIT_OK
