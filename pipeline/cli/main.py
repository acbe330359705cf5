"""Command line: parse arguments into a typed request, call one command, and map every
error to its exit code, in one place (`main`, the error funnel; see errors.py)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from pipeline import __version__
from pipeline.cli.parser import build_parser, normalise, run_request
from pipeline.cli.requests import FolderRequest, ValidateRequest
from pipeline.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PipelineError,
)
from pipeline.manifest import ManifestError
from pipeline.paths import schemas_dir


def _dispatch(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """One branch per command; each command module gets a typed request."""
    if args.command == "validate":
        from pipeline.commands import validate

        return validate.run(ValidateRequest(tuple(args.manifests)), stdout=stdout)
    if args.command == "schema":
        stdout.write((schemas_dir() / "manifest.schema.json").read_text(encoding="utf-8"))
        return EXIT_OK
    if args.command == "simulate":
        from pipeline.commands import simulate as simulator_cli

        code: int = simulator_cli.run(args)
        return code
    if args.command == "models":
        from pipeline.commands import models as models_command

        return models_command.run(args, stdout=stdout, stderr=stderr, environ=os.environ)
    if args.command == "rebuild-state":
        from pipeline.cli.parser import DEFAULT_BASE_URL
        from pipeline.cli.requests import output_folder
        from pipeline.commands import rebuild
        from pipeline.engine.batch import SIMULATED_ENDPOINT

        manifest = Path(args.manifest)
        folder = output_folder(manifest, args.out, args.simulate)
        url = args.base_url or os.environ.get("KIE_BASE_URL") or DEFAULT_BASE_URL
        endpoint = SIMULATED_ENDPOINT if args.simulate else url.rstrip("/")
        return rebuild.run(manifest, folder, endpoint, stdout=stdout)
    if args.command in ("status", "ledger"):
        from pipeline.commands import ledger, status

        json_out = bool(getattr(args, "json", False))
        request = FolderRequest(Path(args.manifest), args.out, args.simulate, json_out)
        if args.command == "status":
            return status.run(request, stdout=stdout)
        return ledger.run(request, stdout=stdout)
    from pipeline.commands import run

    return run.run(run_request(args), stdout=stdout, stderr=stderr, environ=os.environ)


def _crash_log(args: argparse.Namespace | None) -> Path:
    """Where a bug's traceback goes: the run's run.log when the command has an output
    folder that exists, else a new file in the temporary folder."""
    manifest = getattr(args, "manifest", None)
    if isinstance(manifest, str):
        out = getattr(args, "out", None)
        simulate = bool(getattr(args, "simulate", False))
        from pipeline.cli.requests import output_folder

        folder = output_folder(Path(manifest), out, simulate)
        if folder.is_dir():
            return folder / "run.log"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fd, name = tempfile.mkstemp(prefix=f"run-pipeline-crash-{stamp}-", suffix=".log")
    os.close(fd)
    return Path(name)


def _report_bug(exc: BaseException, args: argparse.Namespace | None, stderr: TextIO) -> int:
    text = "".join(traceback.format_exception(exc))
    try:
        log = _crash_log(args)
        with log.open("a", encoding="utf-8") as handle:
            handle.write(f"=== internal error in run-pipeline {__version__}\n{text}")
        where = f"the traceback is in {log}"
    except OSError:
        where = "the traceback could not be written to a file"
    print(
        f"run-pipeline: internal error ({type(exc).__name__}): this is a bug in "
        f"run-pipeline, not in your manifest; {where}. Everything recorded before it is "
        "kept; please report it.",
        file=stderr,
    )
    return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    """The error funnel: every known error maps to its exit code here and only here."""
    argv = sys.argv[1:] if argv is None else argv
    stdout, stderr = sys.stdout, sys.stderr
    args: argparse.Namespace | None = None
    try:
        args = build_parser().parse_args(normalise(argv))
        if args.command is None:
            build_parser().print_help(stdout)
            return EXIT_USAGE
        return _dispatch(args, stdout, stderr)
    except ManifestError as exc:
        for issue in [*exc.issues, *exc.warnings]:
            print(issue, file=stderr)
        print(
            f"run-pipeline: {len(exc.issues)} problem(s) in the manifest; nothing was submitted",
            file=stderr,
        )
        return exc.exit_code
    except PipelineError as exc:
        from pipeline.cli.progress import printable  # the message may quote a server

        print(f"run-pipeline: error: {printable(str(exc))}", file=stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("run-pipeline: interrupted", file=stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except SystemExit:
        raise
    except Exception as exc:
        return _report_bug(exc, args, stderr)


__all__ = ["main"]
