"""Command line: parse arguments into a typed request, call one command, and map every
error to its exit code, in one place (`main`, the error funnel; see errors.py)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from pipeline import __version__
from pipeline.cli.parser import build_parser, normalise, request_of
from pipeline.cli.requests import (
    LedgerRequest,
    ModelsRequest,
    RebuildRequest,
    Request,
    SchemaRequest,
    SimulateRequest,
    StatusRequest,
    ValidateRequest,
)
from pipeline.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PipelineError,
)
from pipeline.manifest import ManifestError
from pipeline.paths import schemas_dir


def _dispatch(request: Request, stdout: TextIO, stderr: TextIO) -> int:
    """One branch per command; each command module gets its typed request. The commands are
    imported here, so that a command loads only what it needs."""
    environ = os.environ
    if isinstance(request, ValidateRequest):
        from pipeline.commands import validate

        return validate.run(request, stdout=stdout)
    if isinstance(request, SchemaRequest):
        stdout.write((schemas_dir() / "manifest.schema.json").read_text(encoding="utf-8"))
        return EXIT_OK
    if isinstance(request, SimulateRequest):
        from pipeline.commands import simulate

        return simulate.run(request)
    if isinstance(request, ModelsRequest):
        from pipeline.commands import models

        return models.run(request, stdout=stdout, stderr=stderr, environ=environ)
    if isinstance(request, RebuildRequest):
        from pipeline.commands import rebuild
        from pipeline.state.folder import environment_errors

        with environment_errors(request.folder):  # a read-only folder: exit 3, one line
            return rebuild.run(request, environ, stdout=stdout)
    if isinstance(request, StatusRequest):
        from pipeline.commands import status

        return status.run(request, stdout=stdout)
    if isinstance(request, LedgerRequest):
        from pipeline.commands import ledger
        from pipeline.state.folder import environment_errors

        with environment_errors(request.folder):  # a read-only folder: exit 3, one line
            return ledger.run(request, stdout=stdout)
    from pipeline.commands import run

    return run.run(request, stdout=stdout, stderr=stderr, environ=environ)


def _crash_log(args: argparse.Namespace | None) -> Path:
    """Where a bug's traceback goes: the run's run.log when the command has an output
    folder that exists, else a new file in the temporary folder."""
    manifest = getattr(args, "manifest", None)
    if isinstance(manifest, str):
        out = getattr(args, "out", None)
        simulate = bool(getattr(args, "simulate", False))
        from pipeline.paths import output_folder

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


@contextlib.contextmanager
def _terminate_as_interrupt(program: bool) -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, like Ctrl-C, from the first line of the command:
    a SIGTERM before the run installs its own handler (loading the manifest, opening the
    state) ends in exit 130 with what was recorded kept, not in a silent death by signal.
    Main thread only (signals are delivered there). After the command, the program
    (`program`) ignores SIGTERM while it exits, its exit code already decided (a second
    SIGTERM would otherwise turn an exit 130 into a death by signal); a caller in-process
    gets its old handler back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN if program else previous)


def main(argv: Sequence[str] | None = None) -> int:
    """The error funnel: every known error maps to its exit code here and only here."""
    with _terminate_as_interrupt(program=argv is None):
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stdout, stderr = sys.stdout, sys.stderr
    args: argparse.Namespace | None = None
    try:
        args = build_parser().parse_args(normalise(argv))
        if args.command is None:
            build_parser().print_help(stdout)
            return EXIT_USAGE
        return _dispatch(request_of(args), stdout, stderr)
    except ManifestError as exc:
        for issue in [*exc.issues, *exc.warnings]:
            print(issue, file=stderr)
        print(
            f"run-pipeline: {len(exc.issues)} problem(s) in the manifest; nothing was submitted",
            file=stderr,
        )
        return exc.exit_code
    except PipelineError as exc:
        from pipeline.outputs.runlog import printable  # the message may quote a server

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
