"""`run-pipeline validate MANIFEST...`: every problem of every manifest, as FILE:LINE:COL."""

from __future__ import annotations

from typing import TextIO

from pipeline.cli.requests import ValidateRequest
from pipeline.errors import EXIT_OK, EXIT_USAGE
from pipeline.manifest import ManifestError, load_manifest


def run(request: ValidateRequest, *, stdout: TextIO) -> int:
    failed = False
    for path in request.manifests:
        try:
            manifest = load_manifest(path)
        except ManifestError as exc:
            failed = True
            # Errors first (they block), then warnings; each group in file order.
            for issue in [*exc.issues, *exc.warnings]:
                print(issue, file=stdout)
        else:
            for warning in manifest.warnings:
                print(warning, file=stdout)
            count = len(manifest.jobs)
            print(f"{path}: ok ({count} job{'' if count == 1 else 's'})", file=stdout)
    return EXIT_USAGE if failed else EXIT_OK
