"""The command line's grammar: the argparse parser, and the typed requests built from it.

`cli.main` parses with `build_parser()`, turns the namespace into a request with
`request_of()` and never passes the namespace further down. Building the parser loads neither
the engine nor the HTTP stack (`run-pipeline validate` starts fast; a test checks it).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from pipeline import __version__
from pipeline.cli import simargs
from pipeline.cli.argtypes import credits, host_port, positive, rate
from pipeline.cli.requests import (
    LedgerRequest,
    ModelsRequest,
    Overrides,
    RebuildRequest,
    Request,
    RunRequest,
    SchemaRequest,
    StatusRequest,
    ValidateRequest,
)
from pipeline.errors import UsageError, exit_code_table
from pipeline.paths import DEFAULT_BASE_URL, KIE_MODELS

COMMANDS = (
    "run",
    "validate",
    "status",
    "ledger",
    "rebuild-state",
    "schema",
    "simulate",
    "models",
)

DESCRIPTION = """\
Run a batch of Kie AI generations (video, image and audio models) described by a YAML
manifest: validate it, submit each job exactly once (resumable after a crash or an edit),
track every task, download every result and write a results ledger and a gallery.

  run-pipeline MANIFEST [options]        run the batch (same as `run-pipeline run MANIFEST`)
  run-pipeline MANIFEST --dry-run        show the plan and its cost; nothing is sent or written
  run-pipeline MANIFEST --simulate       run against the built-in Kie simulator
  run-pipeline validate MANIFEST...      check manifests, report every error as FILE:LINE:COL
  run-pipeline status MANIFEST           jobs by status, from the state file (no network)
  run-pipeline ledger MANIFEST           rewrite the ledger and index.html from the state file
  run-pipeline rebuild-state MANIFEST    rebuild a lost state file from ledger.jsonl
  run-pipeline models list|pull|show     Kie's model catalog, and the models run-pipeline knows
  run-pipeline schema                    print the manifest JSON Schema
  run-pipeline simulate                  run the Kie simulator in the foreground

Environment: KIE_API_KEY (required for real runs), KIE_BASE_URL (default https://api.kie.ai),
KIE_UPLOAD_URL (default https://kieai.redpandaai.co).
"""

EPILOG = "exit codes:\n" + exit_code_table() + "\n"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(
            f"{message} (see `run-pipeline {self.prog.split()[-1]} --help`)"
            if " " in self.prog
            else message
        )


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest", metavar="MANIFEST", help="the manifest YAML file")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--base-url",
        metavar="URL",
        help=f"Kie API endpoint (default: $KIE_BASE_URL or {DEFAULT_BASE_URL})",
    )
    where.add_argument(
        "--simulate",
        action="store_true",
        help="start the built-in Kie simulator in-process and run against it "
        "(outputs go to outputs/<manifest stem>-simulated/)",
    )
    p.add_argument(
        "--upload-url",
        metavar="URL",
        help="Kie's upload host, for {file: PATH} inputs (default: $KIE_UPLOAD_URL or "
        "https://kieai.redpandaai.co)",
    )
    p.add_argument(
        "--out", metavar="DIR", type=Path, help="output folder (default: outputs/<manifest stem>/)"
    )
    p.add_argument(
        "--rebind",
        action="store_true",
        help="the output folder was made by another manifest path (this manifest was moved "
        "or renamed): take the folder over for this one",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and print the plan with its estimated cost; no network, no files written",
    )
    knobs = p.add_argument_group("settings (override the manifest's `settings`)")
    knobs.add_argument(
        "--concurrency",
        type=positive(int),
        metavar="N",
        help="most tasks in flight at once (default 1800: create rate x max wait)",
    )
    knobs.add_argument(
        "--create-rate",
        type=rate,
        metavar="N/SECONDS",
        help="createTask budget of the account (default 20/10)",
    )
    knobs.add_argument(
        "--query-rate",
        type=rate,
        metavar="N/SECONDS",
        help="query budget of the key: polls and URL refreshes (default 10/1)",
    )
    knobs.add_argument(
        "--poll-interval",
        type=positive(float),
        metavar="SECONDS",
        help="shortest interval between polls of one task (default 2)",
    )
    knobs.add_argument(
        "--poll-max-interval",
        type=positive(float),
        metavar="SECONDS",
        help="longest interval between polls of one task (default 30)",
    )
    knobs.add_argument(
        "--max-wait",
        type=positive(float),
        metavar="SECONDS",
        help="a task unfinished after this long is timed_out (default 900)",
    )
    knobs.add_argument(
        "--max-attempts",
        type=positive(int),
        metavar="N",
        help="submissions per job at most, retries included (default 3)",
    )
    knobs.add_argument(
        "--max-credits",
        type=credits,
        metavar="N",
        help="credit budget of the batch, a decimal such as 1500.5 (earlier runs into "
        "the same folder count): no new submission beyond it",
    )
    knobs.add_argument(
        "--partial",
        action="store_true",
        help="start even when the account balance does not cover the plan, "
        "and submit as many jobs as it pays for",
    )
    knobs.add_argument(
        "--download",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="download every result to media/<job id>.<ext>, <job id>-2.<ext>, ... "
        "(default: on); with --no-download the ledger keeps their URLs",
    )
    knobs.add_argument(
        "--on-ambiguous",
        choices=("resubmit", "skip"),
        help="a job whose create may or may not have happened (found on "
        "resume): resubmit and flag possible_duplicate (default), or skip",
    )
    knobs.add_argument(
        "--upload-max-age",
        type=positive(float),
        metavar="SECONDS",
        help="reuse an uploaded input file this long, then upload it again (default "
        "72000: 20 h of Kie's 24 h retention)",
    )
    knobs.add_argument(
        "--max-download-mb",
        type=positive(int),
        metavar="N",
        help="largest result file downloaded, in MB (default: by media kind, 500 for "
        "video, 50 for images, 200 for audio, or what the model file says)",
    )
    knobs.add_argument(
        "--retry-failed",
        action="store_true",
        help="also resubmit jobs that failed for good or timed out (new attempts; history is kept)",
    )
    hooks = p.add_argument_group("callbacks")
    hooks.add_argument(
        "--callback-url",
        metavar="PUBLIC_URL",
        help="send this callBackUrl with every task (overrides the manifest's "
        "callback_url); Kie POSTs there when a task ends",
    )
    hooks.add_argument(
        "--callback-listen",
        metavar="HOST:PORT",
        type=host_port,
        help="receive those callbacks during the run on HOST:PORT (put it "
        "behind PUBLIC_URL); signatures are checked when "
        "$KIE_WEBHOOK_HMAC_KEY is set; polling continues as a fallback",
    )
    sim = p.add_argument_group("simulation")
    sim.add_argument(
        "--time-scale",
        type=positive(float),
        default=None,
        metavar="F",
        help="compress every duration of the run (pacing windows, poll "
        "intervals, max wait) by F, to match a simulator started with the "
        "same --time-scale; with --simulate the default is 0.01 (a "
        "2-minute generation takes 1.2 s)",
    )
    sim.add_argument("--seed", type=int, default=0, help="with --simulate: simulator seed")
    sim.add_argument(
        "--credits",
        type=positive(int),
        default=None,
        metavar="N",
        help="with --simulate: set the simulated account's balance to N credits (it starts "
        "at 100,000 and, like the simulator's tasks, is kept in the output folder between "
        "runs); e.g. --credits 1000000 for a 5,000-job rehearsal",
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress bars: run-level warnings and the final summary only",
    )
    out.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="mirror run.log (one line per job transition) on stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="run-pipeline",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"run-pipeline {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    fmt = argparse.RawDescriptionHelpFormatter

    run = sub.add_parser(
        "run",
        help="run a batch (the default command)",
        epilog=EPILOG,
        formatter_class=fmt,
        description=DESCRIPTION,
    )
    _add_run_arguments(run)

    validate = sub.add_parser(
        "validate",
        help="check manifests; every error as FILE:LINE:COL",
        description="Validate manifests against the schema and the model "
        "input schemas. Exit 0 when all are valid, else 2.",
    )
    validate.add_argument("manifests", nargs="+", metavar="MANIFEST")

    for name, text in (
        ("status", "jobs by status from the state file; no network"),
        (
            "ledger",
            "rewrite ledger.jsonl, ledger.csv and the gallery index.html from the state file "
            "(no network; a folder in use by a running batch is refused)",
        ),
    ):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("manifest", metavar="MANIFEST")
        cmd.add_argument(
            "--out",
            metavar="DIR",
            type=Path,
            help="output folder (default: outputs/<manifest stem>/)",
        )
        cmd.add_argument(
            "--simulate",
            action="store_true",
            help="use the folder of --simulate runs (outputs/<stem>-simulated/)",
        )
        if name == "status":
            cmd.add_argument("--json", action="store_true", help="one JSON object on stdout")

    text = (
        "rebuild a lost state file from ledger.jsonl and run.log, so that the tasks they "
        "list are tracked, not created again"
    )
    rebuild = sub.add_parser("rebuild-state", help=text, description=text)
    rebuild.add_argument("manifest", metavar="MANIFEST")
    rebuild.add_argument("--out", metavar="DIR", type=Path, help="output folder")
    rebuild.add_argument("--simulate", action="store_true", help="the folder of --simulate runs")
    rebuild.add_argument(
        "--base-url",
        metavar="URL",
        help="the endpoint the tasks belong to, when run.log does not say (default: "
        f"$KIE_BASE_URL, else {DEFAULT_BASE_URL})",
    )

    sub.add_parser(
        "schema",
        help="print the manifest JSON Schema",
        description="Print the manifest JSON Schema (for editors and CI).",
    )

    simulate = sub.add_parser(
        "simulate",
        help="run the Kie simulator in the foreground",
        description="Run the built-in Kie simulator on loopback until "
        "Ctrl-C. The first line on stdout is its base URL.",
    )
    simargs.add_arguments(simulate)
    _add_models_arguments(sub.add_parser("models", help="Kie's model catalog: list, pull, show"))
    return parser


def _add_models_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="list the models of Kie's catalog")
    listing.add_argument("--type", metavar="TEXT", help='only this task type, e.g. "Text to Video"')
    listing.add_argument(
        "--search", metavar="TEXT", help="only models whose name or title has TEXT"
    )
    listing.add_argument("--json", action="store_true", help="Kie's answer as JSON on stdout")
    listing.add_argument("--base-url", metavar="URL", help="Kie API endpoint")
    pulling = sub.add_parser(
        "pull",
        help="write model files from Kie's catalog",
        description="Write one model file "
        f"per MODEL under DIR (default ./{KIE_MODELS}/) and print each path written.",
    )
    pulling.add_argument("models", nargs="+", metavar="MODEL")
    pulling.add_argument("--dir", type=Path, metavar="DIR", help=f"default: ./{KIE_MODELS}/")
    pulling.add_argument("--base-url", metavar="URL", help="Kie API endpoint")
    show = sub.add_parser("show", help="a model's file: fields, price, status (no network)")
    show.add_argument("model", metavar="MODEL")
    show.add_argument("--json", action="store_true", help="the model file as JSON, plus its path")


def normalise(argv: Sequence[str]) -> list[str]:
    """`run-pipeline MANIFEST ...` means `run-pipeline run MANIFEST ...`."""
    args = list(argv)
    first = next((a for a in args if not a.startswith("-")), None)
    if first is None or first in COMMANDS or args[0] in {"-h", "--help", "--version"}:
        return args
    return ["run", *args]


def request_of(args: argparse.Namespace) -> Request:
    """The typed request of the command `args` names (usage checks included)."""
    command = args.command
    if command == "validate":
        return ValidateRequest(tuple(args.manifests))
    if command == "schema":
        return SchemaRequest()
    if command == "simulate":
        return simargs.simulate_request(args)
    if command == "models":
        return _models_request(args)
    if command == "rebuild-state":
        return RebuildRequest(Path(args.manifest), args.out, args.simulate, args.base_url)
    if command in ("status", "ledger"):
        kind = StatusRequest if command == "status" else LedgerRequest
        return kind(Path(args.manifest), args.out, args.simulate, bool(getattr(args, "json", 0)))
    return run_request(args)


def _models_request(args: argparse.Namespace) -> ModelsRequest:
    action = args.models_command
    if action == "show":
        return ModelsRequest("show", (args.model,), json=args.json)
    if action == "pull":
        return ModelsRequest("pull", tuple(args.models), base_url=args.base_url, dir=args.dir)
    return ModelsRequest(
        "list", type=args.type, search=args.search, json=args.json, base_url=args.base_url
    )


def run_request(args: argparse.Namespace) -> RunRequest:
    """The run's request; the usage checks that need more than one option are here."""
    if args.callback_listen and not args.callback_url:
        raise UsageError(
            "--callback-listen needs --callback-url: the public URL that reaches "
            "the listener, which Kie is told to call"
        )
    if args.credits is not None and not args.simulate:
        raise UsageError("--credits sets the simulated account's balance: it needs --simulate")
    return RunRequest(
        manifest=Path(args.manifest),
        out=args.out,
        simulate=args.simulate,
        base_url=args.base_url,
        upload_url=args.upload_url,
        dry_run=args.dry_run,
        overrides=Overrides(
            concurrency=args.concurrency,
            create_rate=args.create_rate,
            query_rate=args.query_rate,
            poll_interval=args.poll_interval,
            poll_max_interval=args.poll_max_interval,
            max_wait=args.max_wait,
            max_attempts=args.max_attempts,
            download=args.download,
            max_credits=args.max_credits,
            on_ambiguous=args.on_ambiguous,
            upload_max_age=args.upload_max_age,
            max_download_mb=args.max_download_mb,
        ),
        retry_failed=args.retry_failed,
        partial=args.partial,
        callback_url=args.callback_url,
        callback_listen=args.callback_listen,
        time_scale=args.time_scale,
        seed=args.seed,
        sim_credits=args.credits,
        rebind=args.rebind,
        quiet=args.quiet,
        verbose=args.verbose,
    )
