"""`run-pipeline MANIFEST`: run the batch (or, with --dry-run, show what a run would do)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pipeline.cli import report
from pipeline.cli.requests import RunRequest
from pipeline.commands.folder import read_decisions
from pipeline.engine.planner import PlanOptions, estimate, unpriced_jobs
from pipeline.errors import EXIT_INTERRUPTED, EXIT_JOBS_FAILED, EXIT_OK, EXIT_STOPPED, UsageError
from pipeline.events import Listener, RunTotals
from pipeline.kie.target import Target, resolve_target, simulated
from pipeline.manifest import Manifest, load_manifest
from pipeline.models.registry import kie_model_folders
from pipeline.outputs.runlog import printable
from pipeline.paths import STATE_FILE
from pipeline.status import UNFINISHED

if TYPE_CHECKING:
    from pipeline.simulator import SimConfig

SIMULATOR_KEY = "sim-key"
# The demo's default: a 2-minute generation takes 1.2 s, the 20-per-10 s window 0.1 s.
SIMULATE_TIME_SCALE = 0.01


def refuse_unpriced(
    manifest: Manifest, folder: Path, options: PlanOptions, *, rebind: bool = False
) -> None:
    """A budget (max_credits) cannot be kept blindly: jobs the run would submit whose model
    has no known price, at any stage of a pipeline (a job waiting for its upstream jobs is
    submitted by the same run), are refused before anything is sent."""
    decisions, _ = read_decisions(manifest, folder, options, missing_ok=True, rebind=rebind)
    unpriced = sorted({d.job.model for d in unpriced_jobs(decisions)})
    if unpriced:
        raise UsageError(
            f"max_credits is set, but the price of {', '.join(unpriced)} is unknown, so the "
            "budget cannot be kept; add a price rule to the model file (run-pipeline models "
            "show MODEL), or remove max_credits / this model's jobs"
        )


def simulator_config(
    request: RunRequest, scale: float, model_dirs: Sequence[Path] = ()
) -> SimConfig:
    """The in-process simulator of --simulate: Kie as it behaves today (paused models, 500
    validation answers, 422 for an unknown task), its books kept in the output folder
    (SIM_STATE_FILE) so that edits, Ctrl-C and reruns go as they would against Kie. It knows
    every model the manifest resolves: `model_dirs` (the manifest's kie-models/ folders,
    nearest first) before the bundled catalog, as validate and the dry run look them up."""
    from pipeline.simulator import SimConfig

    return SimConfig(
        api_keys=(SIMULATOR_KEY,),
        time_scale=scale,
        seed=request.seed,
        state_dir=str(request.folder),
        model_pauses=True,
        validation_500=True,
        unknown_task_422=True,
        audio_data=True,
        model_dirs=tuple(str(d) for d in model_dirs),
    )


def run(request: RunRequest, *, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str]) -> int:
    manifest = load_manifest(request.manifest)
    for warning in manifest.warnings:
        print(warning, file=stderr)
    settings = request.settings(manifest)
    folder = request.folder
    plan_options = PlanOptions.of(settings, retry_failed=request.retry_failed)
    if request.dry_run:
        decisions, has_state = read_decisions(
            manifest, folder, plan_options, missing_ok=True, rebind=request.rebind
        )
        est = estimate(decisions)
        table = report.plan_table(
            manifest, decisions, est, has_state=has_state, budget=settings.max_credits
        )
        print(table, file=stdout)
        return EXIT_OK
    if settings.max_credits is not None:
        refuse_unpriced(manifest, folder, plan_options, rebind=request.rebind)
    if request.simulate:
        request = replace(request, time_scale=request.time_scale or SIMULATE_TIME_SCALE)
    # Imported here: validate, --dry-run and status never load the HTTP stack.
    from pipeline.engine.session import run_session

    def connect(stack: contextlib.ExitStack[bool | None]) -> Target:
        """Under the folder's lock: the simulator's books live in the folder too."""
        if not request.simulate:
            return resolve_target(request.base_url, environ, request.upload_url)
        from pipeline.simulator import running_simulator

        models = kie_model_folders(manifest.path.parent)
        config = simulator_config(request, request.scale, models)
        sim = stack.enter_context(running_simulator(config))
        if request.sim_credits is not None:
            sim.control(credits=request.sim_credits)
        print(
            f"run-pipeline: simulating Kie at {sim.base_url} (time scale {request.scale:g}); "
            f"outputs in {folder}",
            file=stderr,
        )
        return simulated(sim.base_url, SIMULATOR_KEY)

    def progress(totals: RunTotals) -> Listener:
        from pipeline.cli.progress import ProgressBars

        enabled = False if request.quiet else None
        return ProgressBars(
            totals,
            download=settings.download,
            enabled=enabled,
            stream=stderr,
            notes=not request.verbose,  # --verbose mirrors run.log, warnings included
        )

    started = time.monotonic()
    summary = run_session(
        request,
        manifest,
        connect,
        progress,
        stderr=stderr,
        hmac_key=environ.get("KIE_WEBHOOK_HMAC_KEY") or None,
    )
    elapsed = time.monotonic() - started
    print(
        report.summary_line(manifest, summary, folder, elapsed=elapsed, verbose=request.verbose),
        file=stdout,
    )
    for model, message in summary.unavailable.items():
        print(
            f"run-pipeline: {model} is not available on Kie ({printable(message)}); its jobs were "
            "not submitted again in this run (`run-pipeline models show "
            f"{model}`; a rerun tries one create again)",
            file=stderr,
        )
    if summary.interrupted:
        print(
            f"run-pipeline: interrupted; everything is recorded in {folder / STATE_FILE}. "
            "Run the same command again to resume.",
            file=stderr,
        )
        return EXIT_INTERRUPTED
    if summary.stop_reason:
        print(f"run-pipeline: stopped: {printable(summary.stop_reason)}", file=stderr)
        return EXIT_STOPPED
    unfinished = any(d.status in UNFINISHED for d in summary.decisions)
    return EXIT_JOBS_FAILED if unfinished else EXIT_OK
