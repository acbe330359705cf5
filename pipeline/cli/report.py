"""Text the CLI prints: plan tables, status tables, summaries. Pure functions of data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.engine.planner import Decision, Estimate, dependency_order, price_of
from pipeline.manifest import FileRef, Manifest
from pipeline.models.registry import CREDIT_USD
from pipeline.outputs.ledger import status_counts
from pipeline.outputs.runlog import printable, printable_lines
from pipeline.status import STAGE_ORDER

if TYPE_CHECKING:
    from pipeline.engine.runner import RunSummary


def _describe_input(decision: Decision) -> str:
    values = decision.job.input
    seconds = values.get("n_frames", values.get("duration"))
    parts = [
        f"{seconds}s" if isinstance(seconds, str | int) else "",
        str(values.get("aspect_ratio", values.get("ratio", ""))),
        str(values.get("resolution", values.get("size", ""))),
    ]
    return " ".join(p for p in parts if p)


def pipeline_stages(decisions: Sequence[Decision]) -> dict[str, int]:
    """Job id -> its stage in the pipeline: 1 for a job that takes no other job's input,
    else one more than the latest stage it takes input from."""
    stages: dict[str, int] = {}
    for job in dependency_order([d.job for d in decisions]):
        stages[job.id] = 1 + max((stages.get(u, 0) for u in job.upstream), default=0)
    return stages


def plan_table(
    manifest: Manifest, decisions: Sequence[Decision], est: Estimate, *, has_state: bool
) -> str:
    width = max((len(d.job.id) for d in decisions), default=2)
    model_width = max((len(d.job.model) for d in decisions), default=5)
    lines = [
        f"{manifest.name} ({manifest.path}): {len(decisions)} jobs"
        + ("" if has_state else " (no state file yet: every job is new)")
    ]
    stages = pipeline_stages(decisions)
    last = max(stages.values(), default=1)
    for stage in range(1, last + 1):
        if last > 1:  # a pipeline: its stages in order, each job with what it takes
            after = " (each after the jobs it takes input from)" if stage > 1 else ""
            lines.append(f" stage {stage}{after}:")
        for d in decisions:
            if stages[d.job.id] != stage:
                continue
            price = price_of(d.job)
            cost = f"{price} cr" if price is not None else "price unknown"
            named = d.job.upstream and d.action != "wait"  # a wait names them already
            source = f" <- {', '.join(d.job.upstream)}" if named else ""
            lines.append(
                f"  {d.stage:<10} {d.job.id:<{width}}  {d.job.model:<{model_width}}  "
                f"{_describe_input(d):<16} {cost:>13}  -> {d.action}: {d.reason}{source}"
            )
            if d.action in ("submit", "wait") and d.job.files:
                lines.append(" " * 13 + "uploads " + ", ".join(_file_text(f) for f in d.job.files))
    tally = Counter(d.stage for d in decisions)
    lines.append("Totals: " + ", ".join(f"{tally[s]} {s}" for s in STAGE_ORDER if tally[s]))
    unpriced = f" (+{est.unpriced} of unknown price)" if est.unpriced else ""
    waiting = f", {est.waiting} of them once their upstream jobs succeed" if est.waiting else ""
    blocked = sum(1 for d in decisions if d.status == "blocked")
    lines.append(
        f"Would submit {est.tasks} task(s){waiting}: an estimated {est.credits} credits "
        f"(${est.usd:,.2f}){unpriced}."
        + (f" {blocked} job(s) blocked (cost nothing)." if blocked else "")
        + " Dry run: nothing sent, nothing written."
    )
    files = {(f.sha256, f.extension): f for d in decisions if d.action == "submit"
             for f in d.job.files}  # fmt: skip
    if files:
        size = sum(f.size for f in files.values())
        lines.append(
            f"Would upload {len(files)} file(s) ({size:,} bytes), each once; an upload younger "
            "than settings.upload_max_age that Kie still serves is reused."
        )
    return printable_lines("\n".join(lines))


def _file_text(ref: FileRef) -> str:
    return f"{ref.name} ({ref.size:,} bytes)"


def status_table(decisions: Sequence[Decision]) -> str:
    width = max((len(d.job.id) for d in decisions), default=2)
    lines = [f"{'ID':<{width}}  {'STATUS':<10} {'ATTEMPTS':>8} {'RESULTS':>7}  {'TASK':<34} NEXT"]
    for d in decisions:
        task = (d.latest.task_id if d.latest else None) or "-"
        lines.append(
            f"{d.job.id:<{width}}  {d.status:<10} {d.attempts:>8} {len(d.results):>7}  "
            f"{task:<34} {d.action}: {d.reason}"
        )
    tally = status_counts(decisions)
    lines.append("Totals: " + ", ".join(f"{n} {s}" for s, n in tally.items()))
    return printable_lines("\n".join(lines))


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _money(credits: float) -> str:
    return f"{credits:,.0f} credits (${credits * CREDIT_USD:,.2f})"


def money_line(summary: RunSummary) -> str:
    """This run's money, honestly: the estimate called one, creates that may have been
    duplicated counted, and Kie's own figure where it gave one."""
    creates = f"{summary.creates} create(s)"
    duplicates = sum(1 for d in summary.decisions for a in d.current if a.possible_duplicate)
    if duplicates:
        creates += f" ({duplicates} may have made a duplicate task, see possible_duplicate)"
    text = f"{creates}, estimated {_money(summary.credits_committed)}"
    if summary.reported_tasks:
        text += (
            f"; Kie reported {_money(summary.credits_reported)} for "
            f"{summary.reported_tasks} finished task(s)"
        )
    return text


def summary_line(
    manifest: Manifest,
    summary: RunSummary,
    folder: Path,
    *,
    elapsed: float | None = None,
    verbose: bool = False,
) -> str:
    """The one line a run ends with: what happened, how long it took, what it cost, and
    where to look (the query count only with --verbose)."""
    parts = ", ".join(f"{n} {s}" for s, n in status_counts(summary.decisions).items())
    took = f" in {_duration(elapsed)}" if elapsed is not None else ""
    queries = f", {summary.queries} queries" if verbose else ""
    return printable(
        f"{manifest.name}: {parts} ({len(summary.decisions)} jobs){took}; "
        f"{money_line(summary)}{queries}; gallery: {folder / 'index.html'}"
    )
