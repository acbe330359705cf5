"""The commands behind the CLI that touch state: run (and --dry-run), status, ledger."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from pipeline import report
from pipeline.errors import EXIT_INTERRUPTED, EXIT_JOBS_FAILED, EXIT_OK, EXIT_STOPPED, UsageError
from pipeline.ledger import row_status, status_counts
from pipeline.manifest import Manifest, Settings, load_manifest
from pipeline.plan import JobPlan, estimate, plan_manifest
from pipeline.state import StateStore

STATE_FILE = "state.sqlite"
SIMULATOR_KEY = "sim-key"
# The demo's default: a 2-minute generation takes 1.2 s, the 20-per-10 s window 0.1 s.
SIMULATE_TIME_SCALE = 0.01


def output_folder(manifest: Path, out: Path | None, simulate: bool) -> Path:
    """`--out`, else outputs/<manifest stem>/ (with -simulated for simulator runs)."""
    if out is not None:
        return out
    return Path("outputs") / (manifest.stem + ("-simulated" if simulate else ""))


def settings_from_args(manifest: Manifest, args: argparse.Namespace) -> Settings:
    return manifest.settings.override(
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
    )


def read_plans(manifest: Manifest, folder: Path, settings: Settings) -> tuple[list[JobPlan], bool]:
    """The plan from the state file, read-only; without a state file every job is new."""
    state_path = folder / STATE_FILE
    if not state_path.exists():
        return plan_manifest(manifest, {}, settings), False
    with StateStore.open(state_path, readonly=True) as store:
        return plan_manifest(manifest, store.attempts_by_job(), settings), True


def dispatch(
    args: argparse.Namespace, *, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str]
) -> int:
    manifest = load_manifest(args.manifest)
    folder = output_folder(Path(args.manifest), args.out, args.simulate)
    if args.command == "status":
        plans, _ = read_plans(manifest, folder, manifest.settings)
        download = manifest.settings.download
        if args.json:
            json.dump(
                {
                    "manifest": str(args.manifest),
                    "counts": status_counts(plans, download),
                    "jobs": [
                        {
                            "id": p.job.id,
                            "status": row_status(p, download),
                            "task_id": p.latest.task_id if p.latest else None,
                            "attempts": p.attempts,
                        }
                        for p in plans
                    ],
                },
                stdout,
            )
            stdout.write("\n")
        else:
            print(report.status_table(plans, download=download), file=stdout)
        return EXIT_OK
    if args.command == "ledger":
        from pipeline.gallery import write_outputs

        plans, _ = read_plans(manifest, folder, manifest.settings)
        gallery = write_outputs(folder, manifest, plans, download=manifest.settings.download)
        print(
            f"wrote {folder / 'ledger.jsonl'}, {folder / 'ledger.csv'} and {gallery} "
            f"({len(plans)} jobs)",
            file=stdout,
        )
        return EXIT_OK
    settings = settings_from_args(manifest, args)
    if args.dry_run:
        plans, has_state = read_plans(manifest, folder, settings)
        est = estimate(plans, on_ambiguous=settings.on_ambiguous)
        print(report.plan_table(manifest, plans, est, has_state=has_state), file=stdout)
        return EXIT_OK
    return _run(manifest, settings, folder, args, stdout=stdout, stderr=stderr, environ=environ)


def _run(
    manifest: Manifest,
    settings: Settings,
    folder: Path,
    args: argparse.Namespace,
    *,
    stdout: TextIO,
    stderr: TextIO,
    environ: Mapping[str, str],
) -> int:
    if args.callback_listen and not args.callback_url:
        raise UsageError(
            "--callback-listen needs --callback-url: the public URL that reaches "
            "the listener, which Kie is told to call"
        )
    # Imported here: validate, --dry-run and status never load the HTTP stack.
    from pipeline.batch import SIMULATED_ENDPOINT, Target, resolve_target, run_batch
    from pipeline.runner import RunOptions

    options = RunOptions(
        settings=settings,
        retry_failed=args.retry_failed,
        partial=args.partial,
        time_scale=args.time_scale or 1.0,
        callback_url=args.callback_url,
    )
    with contextlib.ExitStack() as stack:
        if args.simulate:
            from pipeline.simulator import SimConfig, running_simulator

            scale = args.time_scale or SIMULATE_TIME_SCALE
            sim = stack.enter_context(
                running_simulator(
                    SimConfig(api_keys=(SIMULATOR_KEY,), time_scale=scale, seed=args.seed)
                )
            )
            target = Target(sim.base_url, SIMULATOR_KEY, SIMULATED_ENDPOINT)
            options = replace(options, time_scale=scale, seed=args.seed)
            print(
                f"run-pipeline: simulating Kie at {sim.base_url} (time scale {scale:g}); "
                f"outputs in {folder}",
                file=stderr,
            )
        else:
            target = resolve_target(args.base_url, environ)
        summary = run_batch(
            manifest,
            settings,
            folder,
            target,
            options=options,
            quiet=args.quiet,
            verbose=args.verbose,
            stderr=stderr,
            listen=args.callback_listen,
            hmac_key=environ.get("KIE_WEBHOOK_HMAC_KEY") or None,
        )
    print(report.summary_line(manifest, summary, folder, download=settings.download), file=stdout)
    if summary.interrupted:
        print(
            f"run-pipeline: interrupted; everything is recorded in {folder / STATE_FILE}. "
            "Run the same command again to resume.",
            file=stderr,
        )
        return EXIT_INTERRUPTED
    if summary.stop_reason:
        print(f"run-pipeline: stopped: {summary.stop_reason}", file=stderr)
        return EXIT_STOPPED
    statuses = {row_status(p, settings.download) for p in summary.plans}
    return EXIT_OK if statuses <= {"succeeded"} else EXIT_JOBS_FAILED
