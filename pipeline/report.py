"""Text the CLI prints: plan tables, status tables, summaries. Pure functions of data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.ledger import row_status, status_counts
from pipeline.manifest import Manifest
from pipeline.models import load_prices
from pipeline.plan import Estimate, JobPlan, counts

if TYPE_CHECKING:
    from pipeline.runner import RunSummary

PLAN_ORDER = ("new", "changed", "retry", "ambiguous", "in flight", "timed out", "done", "failed")


def _describe_input(plan: JobPlan) -> str:
    values = plan.job.input
    parts = [
        f"{values['n_frames']}s" if "n_frames" in values else "",
        str(values.get("aspect_ratio", "")),
        str(values.get("size", "")),
    ]
    return " ".join(p for p in parts if p)


def plan_table(
    manifest: Manifest, plans: Sequence[JobPlan], est: Estimate, *, has_state: bool
) -> str:
    prices = load_prices()
    width = max((len(p.job.id) for p in plans), default=2)
    lines = [
        f"{manifest.name} ({manifest.path}): {len(plans)} jobs"
        + ("" if has_state else " (no state file yet: every job is new)")
    ]
    for plan in plans:
        price = prices.credits_for(plan.job.model, plan.job.input)
        cost = f"{price} cr" if price is not None else "? cr"
        lines.append(
            f"  {plan.status:<10} {plan.job.id:<{width}}  {plan.job.model:<24} "
            f"{_describe_input(plan):<22} {cost}"
        )
    tally = counts(plans)
    lines.append("Totals: " + ", ".join(f"{tally[s]} {s}" for s in PLAN_ORDER if tally[s]))
    unpriced = f" (+{est.unpriced} of unknown price)" if est.unpriced else ""
    lines.append(
        f"Would submit {est.tasks} task(s): {est.credits} credits "
        f"(${est.usd:,.2f}){unpriced}. Dry run: nothing sent, nothing written."
    )
    return "\n".join(lines)


def status_table(plans: Sequence[JobPlan], *, download: bool) -> str:
    width = max((len(p.job.id) for p in plans), default=2)
    lines = [f"{'ID':<{width}}  {'STATUS':<10} {'ATTEMPTS':>8}  TASK"]
    for plan in plans:
        latest = plan.latest
        lines.append(
            f"{plan.job.id:<{width}}  {row_status(plan, download):<10} "
            f"{plan.attempts:>8}  {(latest.task_id if latest else None) or '-'}"
        )
    tally = status_counts(plans, download)
    lines.append("Totals: " + ", ".join(f"{n} {s}" for s, n in tally.items()))
    return "\n".join(lines)


def summary_line(manifest: Manifest, summary: RunSummary, folder: Path, *, download: bool) -> str:
    """The one line a run ends with."""
    parts = ", ".join(f"{n} {s}" for s, n in status_counts(summary.plans, download).items())
    return (
        f"{manifest.name}: {parts} ({len(summary.plans)} jobs); {summary.creates} creates, "
        f"{summary.queries} queries, {summary.credits_committed} credits committed this run;"
        f" ledger: {folder / 'ledger.csv'}"
    )
