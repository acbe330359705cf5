"""The errors that end a command, each with the exit code the CLI maps it to.

Exit codes (documented in the README and relied upon by users' scripts):
0 all jobs succeeded; 1 some failed or timed out; 2 bad manifest or usage;
3 stopped by the account or service, a locked output folder, or an incompatible state file;
130 interrupted.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_JOBS_FAILED = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130


class PipelineError(Exception):
    """An error that ends the command with a one-line message and `exit_code`."""

    exit_code = EXIT_STOPPED


class UsageError(PipelineError):
    exit_code = EXIT_USAGE


class StateError(PipelineError):
    """The state file cannot be used: locked, another endpoint, newer schema, corrupt."""

    exit_code = EXIT_STOPPED


class ServiceStop(PipelineError):
    """The account or service refuses to go on (bad key, no credits, model disabled)."""

    exit_code = EXIT_STOPPED
