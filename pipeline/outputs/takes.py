"""Earlier takes in the gallery: folded under the job's card, newest first.

An edited job's earlier results are kept under `media/takes/` (see `engine.takes`); a
producer compares them with the current one. Each take says when it finished and how its
version differed from the job as the manifest now has it (the settings each submission
sent are kept in the state, see `refs.shown`).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from pipeline.engine.planner import Decision
from pipeline.manifest.refs import shown
from pipeline.outputs.ledger import iso
from pipeline.outputs.players import player, strip
from pipeline.state.store import Attempt

TAKES_CSS = """
.takes { border-top: 1px solid var(--line); font-size: 12.5px; }
.takes summary { cursor: pointer; padding: 8px 14px; color: var(--muted); }
.takes ol { margin: 0; padding: 0 14px 12px; list-style: none; display: flex;
  flex-direction: column; gap: 10px; }
.takes .frame { aspect-ratio: 16 / 9; border-radius: 6px; }
.takes dl { margin-top: 4px; }
.takes .when { margin: 4px 0 0; color: var(--muted); }
"""


def _when(take: Attempt) -> str:
    stamp = iso(take.finished_at) or ""
    return stamp.replace("T", " ").replace("Z", " UTC")


def _changes(now: Mapping[str, str], then: Mapping[str, str]) -> list[tuple[str, str]]:
    """The fields whose value differed in the take's version, with the take's value."""
    keys = [k for k in then if now.get(k) != then[k]]
    keys += [k for k in now if k not in then]
    return [(k, then.get(k, "(not set)")) for k in keys]


def _take(decision: Decision, take: Attempt, number: int) -> str:
    job = decision.job
    outputs: list[Mapping[str, Any]] = [
        {"file": r.file, "media_type": r.media_type} for r in take.results
    ]
    when = _when(take)
    first = next((o for o in outputs if o["file"]), None)
    frame = ""
    if first is not None:
        alt = f"Earlier take {number} of {job.id}, finished {when}"
        frame = f'<div class="frame">{player(first, alt)}</div>'
        frame += strip(job.id, outputs) if len(outputs) > 1 else ""
    then = take.shown_inputs
    if then:
        changes = _changes(shown(job.model, job.input), then)
        rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in changes)
        detail = f"<dl>{rows}</dl>" if rows else '<p class="when">Same settings as now.</p>'
    else:  # a submission from before the settings were kept
        detail = ""
    version = f"version {take.fingerprint[:8]}"
    return f'<li>{frame}<p class="when">{escape(when)} · {escape(version)}</p>{detail}</li>'


def takes(decision: Decision) -> str:
    """The folded list of the job's earlier takes ("" when it has none)."""
    if not decision.takes:
        return ""
    count = len(decision.takes)
    items = "".join(_take(decision, take, count - i) for i, take in enumerate(decision.takes))
    summary = f"{count} earlier take{'s' if count > 1 else ''}"
    return f'<details class="takes"><summary>{summary}</summary><ol>{items}</ol></details>'
