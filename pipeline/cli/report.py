"""Text the CLI prints: plan tables, status tables, summaries. Pure functions of data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.engine.planner import (
    Decision,
    Estimate,
    dependency_order,
    price_of,
    unpriced_jobs,
)
from pipeline.manifest import FileRef, Manifest
from pipeline.models.pricing import credits_text, usd, usd_text
from pipeline.outputs.ledger import status_counts
from pipeline.outputs.runlog import printable, printable_lines
from pipeline.status import STAGE_ORDER

if TYPE_CHECKING:
    from pipeline.engine.runner import RunSummary


def plural(count: int, word: str) -> str:
    """ "1 job", "2 jobs"."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


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


def budget_lines(decisions: Sequence[Decision], budget: Decimal) -> list[str]:
    """What `max_credits` covers of the plan, counted as the runner counts it: tasks of the
    jobs' current versions that exist or may exist first, then the tasks to submit in the
    order a run sends them (jobs ready now, then those waiting for upstream jobs). A run
    refuses outright (exit 2) when a job it would submit has no known price."""
    refused = unpriced_jobs(decisions)
    if refused:
        names = ", ".join(f"{d.job.id} ({d.job.model})" for d in refused)
        return [
            f"max_credits {credits_text(budget)}: a run would refuse this plan (exit 2, "
            f"nothing sent): the price of {len(refused)} job(s) is unknown: {names}. Add a "
            "price rule to the model file (run-pipeline models show MODEL), or remove max_credits."
        ]
    spent = sum(((price_of(d.job) or Decimal(0)) * d.attempts for d in decisions), Decimal(0))
    todo = [d for d in decisions if d.action == "submit"]
    todo += [d for d in decisions if d.action == "wait"]
    total = sum((price_of(d.job) or Decimal(0) for d in todo), Decimal(0))
    covered, room = 0, budget - spent
    for decision in todo:  # the runner stops at the first task the budget cannot pay
        price = price_of(decision.job) or Decimal(0)
        if price > room:
            break
        covered, room = covered + 1, room - price
    earlier = f" ({credits_text(spent)} of it on tasks that exist or may exist)" if spent else ""
    if covered == len(todo):
        return [
            f"max_credits {credits_text(budget)}{earlier} covers the whole plan "
            f"({credits_text(total)} credits)."
        ]
    stop = todo[covered].job.id
    return [
        f"max_credits {credits_text(budget)}{earlier} covers {covered} of the {len(todo)} "
        f"task(s) to submit; a run would stop before {stop} (the rest stays pending)."
    ]


def plan_table(
    manifest: Manifest,
    decisions: Sequence[Decision],
    est: Estimate,
    *,
    has_state: bool,
    budget: Decimal | None = None,
) -> str:
    width = max((len(d.job.id) for d in decisions), default=2)
    model_width = max((len(d.job.model) for d in decisions), default=5)
    lines = [
        f"{manifest.name} ({manifest.path}): {plural(len(decisions), 'job')}"
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
            cost = f"{credits_text(price)} cr" if price is not None else "price unknown"
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
        f"Would submit {est.tasks} task(s){waiting}: an estimated "
        f"{credits_text(est.credits)} credits ({usd_text(est.usd)}){unpriced}."
        + (f" {blocked} job(s) blocked (cost nothing)." if blocked else "")
        + " Dry run: nothing sent, nothing written."
    )
    if budget is not None:
        lines += budget_lines(decisions, budget)
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


def _money(credits: Decimal) -> str:
    return f"{credits_text(credits)} credits ({usd_text(usd(credits))})"


def money_line(summary: RunSummary) -> str:
    """This run's money, honestly: the estimate called one, creates that may have been
    duplicated counted, and Kie's own figure where it gave one, each with its scope."""
    notes = []
    if summary.creates != summary.created:  # 429s, refusals, calls that never connected
        notes.append(f"{summary.creates} create calls")
    duplicates = sum(1 for d in summary.decisions for a in d.current if a.possible_duplicate)
    if duplicates:
        notes.append(f"{duplicates} may have made a duplicate task, see possible_duplicate")
    creates = f"{summary.created} task(s) created" + (f" ({'; '.join(notes)})" if notes else "")
    # Each figure names its scope: the estimate covers the tasks this run made, Kie's
    # figure the tasks that ended in this run (some made by an earlier run).
    text = f"{creates}, estimated {_money(summary.credits_committed)} for those"
    if summary.reported_tasks:
        text += (
            f"; Kie reported {_money(summary.credits_reported)} for the "
            f"{summary.reported_tasks} task(s) that ended in this run"
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
        f"{manifest.name}: {parts} ({plural(len(summary.decisions), 'job')}){took}; "
        f"{money_line(summary)}{queries}; gallery: {folder / 'index.html'}"
    )
