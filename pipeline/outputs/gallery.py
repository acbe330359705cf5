"""The gallery: `index.html` in the output folder, one card per job, viewable offline.

The page is a pure function of the manifest and the plans (the same data as the ledger), so
`run-pipeline ledger` can rebuild it from the state file at any time.

Safety: prompts, error messages and URLs come from manifest authors and from the service, so
every value goes through `html.escape`, and a Content-Security-Policy forbids scripts outright
(belt and braces: a missed escape still could not run code). The stylesheet is allowed by its
hash rather than by 'unsafe-inline', so injected markup could not restyle the page either.
Nothing is fetched from the network: no CDN, no web fonts; results (images, videos, audio)
from the output folder only (`media/`, and `videos/` of folders from the first release).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape
from typing import Any
from urllib.parse import urlsplit

from pipeline.engine.moderation import EDIT_THE_PROMPT
from pipeline.engine.planner import Decision, price_of
from pipeline.manifest import Job, Manifest
from pipeline.manifest.refs import as_text
from pipeline.models.pricing import CREDIT_USD, as_credits, credits_text, usd_text
from pipeline.outputs.players import player, strip
from pipeline.outputs.takes import TAKES_CSS, takes
from pipeline.status import LEDGER_ORDER

GALLERY_FILE = "index.html"

_CSS = """
:root { color-scheme: light dark; --bg: #f6f7f9; --card: #fff; --ink: #1d2330;
  --muted: #5d6675; --line: #dde1e7; --ok: #1a7f37; --bad: #c62828; --warn: #b25e00;
  --run: #1f5fbf; --idle: #6b7280; }
@media (prefers-color-scheme: dark) { :root { --bg: #14171c; --card: #1d2128;
  --ink: #e6e9ee; --muted: #9aa3b2; --line: #2e343d; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 28px 40px; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans",
  "DejaVu Sans", sans-serif; }
header { margin-bottom: 20px; }
h1 { margin: 0 0 2px; font-size: 22px; }
.sub { color: var(--muted); margin: 0 0 14px; }
.sub a { color: inherit; }
.summary { display: flex; flex-wrap: wrap; gap: 10px; margin: 0; padding: 0;
  list-style: none; }
.summary li { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 8px 14px; min-width: 96px; }
.summary b { display: block; font-size: 20px; }
.summary span { color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: .04em; }
.cards { display: grid; gap: 16px; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr));
  align-items: start; margin: 0; padding: 0; list-style: none; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  overflow: hidden; display: flex; flex-direction: column; }
/* One frame size for every card; portrait videos are letterboxed inside it. Absolute
   positioning keeps a tall video from stretching the frame past its aspect ratio. */
.frame { position: relative; aspect-ratio: 16 / 9; overflow: hidden; background: #0b0d10;
  display: flex; align-items: center; justify-content: center; color: #c9ced6;
  text-align: center; }
.frame video, .frame img { position: absolute; inset: 0; width: 100%; height: 100%;
  object-fit: contain; }
.frame audio { width: 92%; }
.strip { display: flex; gap: 4px; padding: 4px; overflow-x: auto; background: #0b0d10;
  margin: 0; list-style: none; }
.strip li { flex: 0 0 auto; }
.strip a { display: block; width: 64px; height: 64px; border: 1px solid #2e343d;
  border-radius: 4px; overflow: hidden; color: #c9ced6; font-size: 11px; text-align: center;
  line-height: 64px; text-decoration: none; }
.strip img { width: 100%; height: 100%; object-fit: cover; display: block; }
.frame p { margin: 0; padding: 12px; }
.frame a { color: #9cc3ff; }
.body { padding: 12px 14px 14px; display: flex; flex-direction: column; gap: 8px; }
.head { display: flex; align-items: center; justify-content: space-between; gap: 8px; }
.id { font-weight: 600; font-family: ui-monospace, "DejaVu Sans Mono", monospace;
  overflow-wrap: anywhere; }
.badge { border-radius: 999px; padding: 1px 9px; font-size: 12px; font-weight: 600;
  color: #fff; white-space: nowrap; }
.s-succeeded { background: var(--ok); } .s-failed { background: var(--bad); }
.s-timed_out { background: var(--warn); } .s-running { background: var(--run); }
.s-pending { background: var(--idle); } .s-blocked { background: var(--bad); }
.from { margin: 0; color: var(--muted); font-size: 12.5px; }
.prompt { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 9.5em;
  overflow: auto; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; margin: 0;
  font-size: 12.5px; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
.error { margin: 0; padding: 8px 10px; border-radius: 6px; font-size: 12.5px;
  background: color-mix(in srgb, var(--bad) 12%, transparent); overflow-wrap: anywhere;
  white-space: pre-wrap; }
.warn { color: var(--warn); font-size: 12.5px; margin: 0; }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
"""
_STYLE = _CSS + TAKES_CSS


@dataclass(frozen=True)
class Summary:
    """The numbers at the top of the page. The money figures share one scope, named on the
    page: the tasks of the jobs' current versions (earlier takes are not counted)."""

    jobs: int
    counts: Mapping[str, int]  # ledger status -> jobs, every status of LEDGER_ORDER present
    attempts: int  # tasks of the jobs' current versions that exist or may (as in the ledger)
    credits: Decimal  # those tasks at the price the dry run shows (the planner's)
    unpriced: int  # of those tasks, the ones of a model without a known price
    usd: Decimal
    files: int  # results on disk
    bytes: int
    reported: Decimal  # credits Kie reported for those tasks (creditsConsumed)
    unreported: int  # of those tasks, the ones that ended without a figure


def summarize(decisions: Sequence[Decision], rows: Sequence[Mapping[str, Any]]) -> Summary:
    """Counts and spend. Credits are price x tasks, the same estimate the dry run and the
    runner's `max_credits` budget use (Kie may refund failed tasks; the balance is the
    truth), beside what Kie reported for the same tasks."""
    counts: dict[str, int] = dict.fromkeys(LEDGER_ORDER, 0)
    unpriced = attempts = files = size = unreported = 0
    credits = reported = Decimal(0)
    for decision, r in zip(decisions, rows, strict=True):
        counts[r["status"]] = counts.get(r["status"], 0) + 1
        attempts += r["attempts"]
        price = price_of(decision.job)
        if price is None:
            unpriced += r["attempts"]
        else:
            credits += price * r["attempts"]
        for output in r["outputs"]:
            if output["file"]:
                files += 1
                size += output["bytes"] or 0
        for task in decision.current:
            if task.credits is not None:
                reported += as_credits(task.credits)
            elif task.task_id and task.completed_at:
                unreported += 1
    return Summary(
        len(rows),
        counts,
        attempts,
        credits,
        unpriced,
        credits * CREDIT_USD,
        files,
        size,
        reported,
        unreported,
    )


def csp(style: str) -> str:
    """The page's policy: no scripts at all, this stylesheet only, images, videos and audio
    from the page's own folder (`file:` too, since browsers disagree on whether 'self' covers
    file:// pages), no forms, no <base> rewriting, nothing else."""
    digest = base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; script-src 'none'; object-src 'none'; "
        f"style-src 'sha256-{digest}'; img-src 'self' file:; media-src 'self' file:; "
        "base-uri 'none'; form-action 'none'"
    )


def _remote_link(url: str | None) -> str:
    """A link to a remote result (downloads off), only for http(s) URLs."""
    if not url or urlsplit(url).scheme not in {"http", "https"}:
        return ""
    return (
        f' <a href="{escape(url)}" rel="noopener noreferrer">Open the result on the '
        "provider's server</a> (the link expires)."
    )


def _frame(job: Job, r: Mapping[str, Any], reason: str = "") -> str:
    outputs = [o for o in r["outputs"] if isinstance(o, Mapping)]
    shown = next((o for o in outputs if o["file"]), None)
    if shown is not None:
        number = outputs.index(shown) + 1
        alt = f"Result {number} of {job.id}" if number > 1 else f"Result of {job.id}"
        frame = f'<div class="frame">{player(shown, alt)}</div>'
        return frame + (strip(job.id, outputs) if len(outputs) > 1 else "")
    status = r["status"]
    count = f" ({len(outputs)} results)" if len(outputs) > 1 else ""
    if status == "succeeded":  # downloads off: the results are only on Kie's server
        text = f"Not downloaded{count}." + _remote_link(r["result_url"])
    elif status == "running":
        text = f"Generated{count}; not downloaded yet." if outputs else "Generating…"
    elif status == "pending" and reason.startswith("waiting for "):
        text = escape(reason[:1].upper() + reason[1:]) + "."
    elif status == "pending":
        text = "Not submitted yet."
    elif status == "blocked":
        text = "Blocked: a job it takes input from failed (the reason is below)."
    elif status == "timed_out":
        text = "Timed out waiting for the result; a rerun keeps tracking it."
    else:
        text = "Failed: no result (the reason is below)."
    return f'<div class="frame"><p>{text}</p></div>'


def _source(job: Job) -> str:
    """Where a downstream job's input comes from: "from mug-still"."""
    if not job.upstream:
        return ""
    return f'<p class="from">from {escape(", ".join(job.upstream))}</p>'


def _card(decision: Decision, r: Mapping[str, Any]) -> str:
    job = decision.job
    status = str(r["status"])
    settings = [("model", job.model)] + [
        (k, as_text(v)) for k, v in job.input.items() if k != "prompt"
    ]
    price = price_of(job)  # the planner's, as the dry run shows it
    estimate = f"{credits_text(price)} credits (est.)" if price is not None else "unknown"
    settings.append(("price", estimate))
    if r["credits"] is not None:
        settings.append(("reported", f"{credits_text(r['credits'])} credits (Kie)"))
    if len(r["outputs"]) > 1:
        settings.append(("results", str(len(r["outputs"]))))
    settings.append(("attempts", str(r["attempts"])))
    if r["task_id"]:
        settings.append(("task", str(r["task_id"])))
    if r["completed_at"]:
        # Spaces instead of T/Z: the narrow column then wraps between date and time.
        when = str(r["completed_at"]).replace("T", " ").replace("Z", " UTC")
        settings.append(("completed", when))
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in settings)
    parts = [
        f'<li class="card" id="job-{escape(job.id)}" data-status="{escape(status)}">',
        _frame(job, r, decision.reason),
        '<div class="body"><div class="head">',
        f'<span class="id">{escape(job.id)}</span>',
        f'<span class="badge s-{escape(status)}">{escape(status)}</span></div>',
        f'<p class="prompt">{escape(job.prompt)}</p>',
        _source(job),
        f"<dl>{rows}</dl>",
    ]
    if r["error_code"] or r["error_message"]:
        code = f"<strong>{escape(str(r['error_code']))}</strong> " if r["error_code"] else ""
        parts.append(f'<p class="error">{code}{escape(str(r["error_message"] or ""))}</p>')
    if decision.reason == EDIT_THE_PROMPT:
        parts.append(
            '<p class="warn">Refused by moderation: edit the prompt. The same prompt '
            "is refused again, so a rerun does not resend it.</p>"
        )
    if r["possible_duplicate"]:
        parts.append(
            '<p class="warn">Possible duplicate: a create call\'s answer was lost, '
            "so Kie may hold a second task for this job.</p>"
        )
    parts.append("</div>")
    parts.append(takes(decision))
    parts.append("</li>")
    return "".join(parts)


def _header(manifest: Manifest, summary: Summary, generated_at: str) -> str:
    tiles = [(str(summary.jobs), "jobs")]
    tiles += [(str(summary.counts[s]), s) for s in LEDGER_ORDER if summary.counts[s]]
    unpriced = f" + {summary.unpriced} unpriced" if summary.unpriced else ""
    tasks = f"{summary.attempts} task" + ("" if summary.attempts == 1 else "s")
    tiles.append((f"{credits_text(summary.credits)}{unpriced}", f"credits (est.), {tasks}"))
    tiles.append((usd_text(summary.usd), "dollars (est.), same tasks"))
    if summary.reported or not summary.unreported:
        reported = credits_text(summary.reported)
        unreported = f" + {summary.unreported} unreported" if summary.unreported else ""
        tiles.append((f"{reported}{unreported}", "credits Kie reported, same tasks"))
    tiles.append((f"{summary.files} · {summary.bytes / 1e6:,.1f} MB", "files on disk"))
    items = "".join(f"<li><b>{escape(v)}</b><span>{escape(k)}</span></li>" for v, k in tiles)
    return (
        f"<header><h1>{escape(manifest.name)}</h1>"
        f'<p class="sub">{escape(manifest.path.name)} · {summary.attempts} task(s) of the '
        "jobs' current versions · "
        f"updated {escape(generated_at)} · "
        '<a href="ledger.csv">ledger.csv</a> · <a href="ledger.jsonl">ledger.jsonl</a></p>'
        f'<ul class="summary">{items}</ul></header>'
    )


def render_gallery(
    manifest: Manifest,
    decisions: Sequence[Decision],
    rows: Sequence[Mapping[str, Any]],
    *,
    generated_at: str,
) -> str:
    """The whole page as text (pure: same arguments, same bytes)."""
    summary = summarize(decisions, rows)
    cards = "".join(_card(d, r) for d, r in zip(decisions, rows, strict=True))
    title = escape(f"{manifest.name}: {summary.counts['succeeded']}/{summary.jobs} succeeded")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        # The policy must come before anything that could load or run something.
        f'<meta http-equiv="Content-Security-Policy" content="{escape(csp(_STYLE))}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="run-pipeline">'
        f"<title>{title}</title><style>{_STYLE}</style></head>\n<body>"
        f"{_header(manifest, summary, generated_at)}\n"
        f'<main><ul class="cards">{cards}</ul></main>\n'
        "<footer>Written by run-pipeline from state.sqlite; rebuild it with "
        "<code>run-pipeline ledger MANIFEST</code>. Credits count the tasks of each job's "
        "current version (those of versions replaced by an edit are not counted): estimated "
        "at the price the dry run "
        "shows (the model file's price rule, a project's kie-models/ first), and as Kie "
        "reported them where it did.</footer>"
        "</body></html>\n"
    )
