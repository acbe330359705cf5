"""Text the CLI prints: plan tables, status tables, summaries. Pure functions of data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.engine.planner import Decision, Estimate, price_of
from pipeline.manifest import Manifest
from pipeline.outputs.ledger import status_counts
from pipeline.status import STAGE_ORDER

if TYPE_CHECKING:
    from pipeline.engine.runner import RunSummary


def _describe_input(decision: Decision) -> str:
    values = decision.job.input
    parts = [
        f"{values['n_frames']}s" if "n_frames" in values else "",
        str(values.get("aspect_ratio", "")),
        str(values.get("size", "")),
    ]
    return " ".join(p for p in parts if p)


def plan_table(
    manifest: Manifest, decisions: Sequence[Decision], est: Estimate, *, has_state: bool
) -> str:
    width = max((len(d.job.id) for d in decisions), default=2)
    lines = [
        f"{manifest.name} ({manifest.path}): {len(decisions)} jobs"
        + ("" if has_state else " (no state file yet: every job is new)")
    ]
    for d in decisions:
        price = price_of(d.job)
        cost = f"{price} cr" if price is not None else "? cr"
        lines.append(
            f"  {d.stage:<10} {d.job.id:<{width}}  {d.job.model:<24} "
            f"{_describe_input(d):<22} {cost:>6}  -> {d.action}: {d.reason}"
        )
    tally = Counter(d.stage for d in decisions)
    lines.append("Totals: " + ", ".join(f"{tally[s]} {s}" for s in STAGE_ORDER if tally[s]))
    unpriced = f" (+{est.unpriced} of unknown price)" if est.unpriced else ""
    lines.append(
        f"Would submit {est.tasks} task(s): {est.credits} credits "
        f"(${est.usd:,.2f}){unpriced}. Dry run: nothing sent, nothing written."
    )
    return "\n".join(lines)


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
    return "\n".join(lines)


def summary_line(manifest: Manifest, summary: RunSummary, folder: Path) -> str:
    """The one line a run ends with."""
    parts = ", ".join(f"{n} {s}" for s, n in status_counts(summary.decisions).items())
    return (
        f"{manifest.name}: {parts} ({len(summary.decisions)} jobs); {summary.creates} creates, "
        f"{summary.queries} queries, {summary.credits_committed} credits committed this run;"
        f" ledger: {folder / 'ledger.csv'}"
    )
