"""`run-pipeline MANIFEST`: run the batch (or, with --dry-run, show what a run would do)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace
from typing import TextIO

from pipeline import report
from pipeline.commands.folder import read_decisions
from pipeline.engine.planner import PlanOptions, estimate
from pipeline.errors import EXIT_INTERRUPTED, EXIT_JOBS_FAILED, EXIT_OK, EXIT_STOPPED, UsageError
from pipeline.manifest import load_manifest
from pipeline.request import STATE_FILE, RunRequest
from pipeline.status import UNFINISHED

SIMULATOR_KEY = "sim-key"
# The demo's default: a 2-minute generation takes 1.2 s, the 20-per-10 s window 0.1 s.
SIMULATE_TIME_SCALE = 0.01


def run(request: RunRequest, *, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str]) -> int:
    manifest = load_manifest(request.manifest)
    for warning in manifest.warnings:
        print(warning, file=stderr)
    settings = request.overrides.apply(manifest.settings)
    folder = request.folder
    if request.dry_run:
        plan_options = PlanOptions.of(settings, retry_failed=request.retry_failed)
        decisions, has_state = read_decisions(manifest, folder, plan_options, missing_ok=True)
        est = estimate(decisions)
        print(report.plan_table(manifest, decisions, est, has_state=has_state), file=stdout)
        return EXIT_OK
    if request.callback_listen and not request.callback_url:
        raise UsageError(
            "--callback-listen needs --callback-url: the public URL that reaches "
            "the listener, which Kie is told to call"
        )
    # Imported here: validate, --dry-run and status never load the HTTP stack.
    from pipeline.engine.batch import SIMULATED_ENDPOINT, Target, resolve_target, run_batch
    from pipeline.engine.runner import RunOptions

    options = RunOptions(
        settings=settings,
        retry_failed=request.retry_failed,
        partial=request.partial,
        time_scale=request.time_scale or 1.0,
        callback_url=request.callback_url,
    )
    with contextlib.ExitStack() as stack:
        if request.simulate:
            from pipeline.simulator import SimConfig, running_simulator

            scale = request.time_scale or SIMULATE_TIME_SCALE
            sim = stack.enter_context(
                running_simulator(
                    SimConfig(api_keys=(SIMULATOR_KEY,), time_scale=scale, seed=request.seed)
                )
            )
            target = Target(sim.base_url, SIMULATOR_KEY, SIMULATED_ENDPOINT, sim.base_url)
            options = replace(options, time_scale=scale, seed=request.seed)
            print(
                f"run-pipeline: simulating Kie at {sim.base_url} (time scale {scale:g}); "
                f"outputs in {folder}",
                file=stderr,
            )
        else:
            target = resolve_target(request.base_url, environ, request.upload_url)
        summary = run_batch(
            manifest,
            folder,
            target,
            options,
            quiet=request.quiet,
            verbose=request.verbose,
            stderr=stderr,
            listen=request.callback_listen,
            hmac_key=environ.get("KIE_WEBHOOK_HMAC_KEY") or None,
        )
    print(report.summary_line(manifest, summary, folder), file=stdout)
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
    unfinished = any(d.status in UNFINISHED for d in summary.decisions)
    return EXIT_JOBS_FAILED if unfinished else EXIT_OK
