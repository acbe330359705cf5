"""The errors that end a command, and the exit code each maps to (mapped once, in cli.main).

    PipelineError              exit 3 unless a subclass says otherwise; one line on stderr
    ├── UsageError             exit 2: bad arguments or settings; nothing was sent
    │   └── ManifestError      exit 2: a manifest with problems (each FILE:LINE:COL)
    ├── StateError             exit 3: state file locked, foreign, newer, corrupt, unwritable
    ├── EnvironmentFault       exit 3: the disk or OS failed (full, read-only, EIO)
    └── ServiceStop            exit 3: the account or service refuses to go on

Outside the tree, cli.main maps KeyboardInterrupt to 130 and any other exception to 70 (a
bug): one line on stderr naming the file that holds the traceback.

Exit codes (documented in the README and relied upon by users' scripts):
0 all jobs succeeded; 1 some failed, timed out or blocked; 2 bad manifest or usage;
3 stopped by the account or service, a locked output folder, or an incompatible state file;
70 internal error (a bug); 130 interrupted.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_JOBS_FAILED = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3
EXIT_INTERNAL = 70  # EX_SOFTWARE in sysexits.h
EXIT_INTERRUPTED = 130

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "every job succeeded"),
    (
        EXIT_JOBS_FAILED,
        "some jobs failed, timed out or are blocked (the ledger says which; a rerun "
        "retries what it may)",
    ),
    (EXIT_USAGE, "bad manifest or bad usage (nothing was submitted)"),
    (
        EXIT_STOPPED,
        "stopped by the account or service (401, 402, 433, 505), output folder locked by "
        "another run, a state file from another endpoint, manifest or a newer version, or a "
        "disk that failed",
    ),
    (EXIT_INTERNAL, "internal error (a bug): the traceback is in the file named on stderr"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C or SIGTERM); rerun the same command to resume"),
)


class PipelineError(Exception):
    """An error that ends the command with a one-line message and `exit_code`."""

    exit_code = EXIT_STOPPED


class UsageError(PipelineError):
    exit_code = EXIT_USAGE


class StateError(PipelineError):
    """The state file cannot be used: locked, another endpoint, newer schema, corrupt."""

    exit_code = EXIT_STOPPED


class EnvironmentFault(PipelineError):
    """The machine failed under the run: a full, read-only or failing disk. Whatever was
    committed before stays in the state file, so a rerun resumes."""

    exit_code = EXIT_STOPPED


class ServiceStop(PipelineError):
    """The account or service refuses to go on (bad key, no credits, model disabled)."""

    exit_code = EXIT_STOPPED


def exit_code_table() -> str:
    """The exit codes as `--help` and the README show them."""
    return "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES)
