"""The gallery page as text: escaping, the security policy, structure and summary numbers."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import yaml

from pipeline.cli.main import main
from pipeline.engine.planner import Decision, PlanOptions, decide
from pipeline.manifest import Job, Manifest, Settings
from pipeline.outputs.gallery import GALLERY_FILE, csp, render_gallery, summarize
from pipeline.outputs.ledger import row
from pipeline.outputs.players import FIRST_FRAME
from pipeline.outputs.writer import write_outputs
from pipeline.state.store import Attempt
from tests.support.factories import attempt, make_job, result

HOSTILE = '<script>alert(1)</script> "quoted" & <img src=x onerror="alert(2)">'
NOW = "2026-01-02T03:04:05Z"


def plans_for(*history: tuple[Job, Sequence[Attempt]], download: bool = True) -> list[Decision]:
    options = PlanOptions(max_attempts=3, download=download)
    return [decide(job, attempts, options) for job, attempts in history]


def manifest_of(plans: Sequence[Decision], name: str = "Spring launch") -> Manifest:
    return Manifest(Path("manifests/spring.yaml"), name, Settings(), tuple(p.job for p in plans))


def sample() -> list[Decision]:
    ok = make_job("teaser", "A paper boat sails across a puddle at dawn")
    tall = make_job("hero", "A lighthouse at night", aspect_ratio="portrait", remove_watermark=True)
    bad = make_job("xss", HOSTILE, n_frames="15")
    retried = make_job("retried", "Rain on a window", n_frames="15")
    waiting = make_job("later", "Not sent yet")
    running = make_job("busy", "Still generating")
    return plans_for(
        (ok, [attempt(ok, "succeeded")]),
        (tall, [attempt(tall, "succeeded")]),
        (
            bad,
            [
                attempt(
                    bad,
                    "failed",
                    error_code="422",
                    permanent=True,
                    error_message='Invalid prompt: <b onmouseover="x()">prohibited</b>',
                )
            ],
        ),
        (
            retried,
            [
                attempt(retried, "failed", error_code="501", error_message="boom"),
                attempt(retried, "succeeded", attempt=2),
            ],
        ),
        (waiting, []),
        (running, [attempt(running, "submitted")]),
    )


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]


def parse(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    tags.close()
    return tags


def render(plans: Sequence[Decision], *, download: bool = True, name: str = "Spring launch") -> str:
    if not download:
        options = PlanOptions(max_attempts=3, download=False)
        plans = [decide(p.job, p.current, options) for p in plans]
    rows = [row(p) for p in plans]
    return render_gallery(manifest_of(plans, name), plans, rows, generated_at=NOW)


def test_hostile_text_is_escaped_everywhere() -> None:
    page = render(sample(), name="<b>Launch</b> & co")
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot; &amp; &lt;img" in page
    assert "&lt;b onmouseover=&quot;x()&quot;&gt;prohibited&lt;/b&gt;" in page
    assert "<h1>&lt;b&gt;Launch&lt;/b&gt; &amp; co</h1>" in page
    tags = parse(page)
    assert {t for t, _ in tags.tags} <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "header",
        "h1",
        "p",
        "a",
        "ul",
        "li",
        "b",
        "span",
        "main",
        "div",
        "video",
        "dl",
        "dt",
        "dd",
        "strong",
        "footer",
        "code",
    }
    assert not [a for _, attrs in tags.tags for a in attrs if a.startswith("on")]


def test_policy_forbids_scripts_and_allows_exactly_the_inline_style() -> None:
    tags = parse(render(sample()))
    metas = [a for t, a in tags.tags if t == "meta"]
    assert metas[0] == {"charset": "utf-8"}
    assert metas[1]["http-equiv"] == "Content-Security-Policy"  # before anything that loads
    policy = str(metas[1]["content"])
    assert policy == csp(tags.style)
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'" and directives["script-src"] == "'none'"
    assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'"
    digest = base64.b64encode(hashlib.sha256(tags.style.encode()).digest()).decode()
    assert directives["style-src"] == f"'sha256-{digest}'"
    assert "unsafe" not in policy and "http" not in policy


def test_page_is_self_contained() -> None:
    page = render(sample())
    tags = parse(page)
    assert "@import" not in tags.style and "url(" not in tags.style
    assert not tags.find("link") and not tags.find("script") and not tags.find("iframe")
    for _, attrs in tags.tags:
        for key in ("src", "href"):
            assert not str(attrs.get(key) or "").startswith(("http:", "https:", "//")), attrs


def test_one_card_per_job_in_manifest_order_with_status_and_settings() -> None:
    plans = sample()
    tags = parse(render(plans))
    cards = tags.find("li", **{"class": "card"})
    assert [c["id"] for c in cards] == [f"job-{p.job.id}" for p in plans]
    assert [c["data-status"] for c in cards] == [
        "succeeded",
        "succeeded",
        "failed",
        "succeeded",
        "pending",
        "running",
    ]
    page = render(plans)
    hero = page.split('id="job-hero"')[1].split("</li>")[0]
    assert "<dt>aspect_ratio</dt><dd>portrait</dd>" in hero
    assert "<dt>remove_watermark</dt><dd>true</dd>" in hero
    assert "<dt>model</dt><dd>sora-2-text-to-video</dd>" in hero
    assert '<span class="badge s-succeeded">succeeded</span>' in hero
    retried = page.split('id="job-retried"')[1].split("</li>")[0]
    assert "<dt>attempts</dt><dd>2</dd>" in retried and "<dt>price</dt><dd>35 credits" in retried
    failed = page.split('id="job-xss"')[1].split("</li>")[0]
    assert '<p class="error"><strong>422</strong> Invalid prompt:' in failed
    assert "<video" not in failed


def test_videos_play_from_local_files_with_metadata_preload() -> None:
    tags = parse(render(sample()))
    videos = tags.find("video")
    assert [v["src"] for v in videos] == [
        f"media/{j}.mp4{FIRST_FRAME}" for j in ("teaser", "hero", "retried")
    ]
    assert all(v["preload"] == "metadata" and "controls" in v for v in videos)


def test_summary_counts_and_spend() -> None:
    plans = sample()
    rows = [row(p) for p in plans]
    summary = summarize(plans, rows)
    assert dict(summary.counts) == {
        "succeeded": 3,
        "failed": 1,
        "timed_out": 0,
        "blocked": 0,
        "running": 1,
        "pending": 1,
    }
    # 30 + 30 (10 s), 35 (the failed 15 s job), 2 x 35 (15 s, retried), 30 (running), 0 pending
    assert summary.attempts == 6 and summary.credits == 195 and summary.unpriced == 0
    assert summary.usd == Decimal("0.975")
    assert (summary.files, summary.bytes) == (3, 120_000)
    assert summary.reported == 60 and summary.unreported == 0  # Kie's 20 for each success
    page = render(plans)
    header = page.split("</header>")[0]
    for value, label in (
        ("6", "jobs"),
        ("3", "succeeded"),
        ("1", "failed"),
        ("1", "running"),
        ("1", "pending"),
        ("195", "credits (est.), 6 tasks"),
        ("$0.98", "dollars (est.), same tasks"),  # rounded half up
        ("60", "credits Kie reported, same tasks"),
    ):
        assert f"<li><b>{value}</b><span>{label}</span></li>" in header
    assert "timed out" not in header  # zero counts are left out


def test_unpriced_models_are_counted_apart() -> None:
    odd = make_job("odd", model="some-future-model")
    plans = plans_for((odd, [attempt(odd, "succeeded")]))
    summary = summarize(plans, [row(plans[0])])
    assert summary.credits == 0 and summary.unpriced == 1
    assert "<b>0 + 1 unpriced</b>" in render(plans)


def test_without_downloads_a_safe_link_replaces_the_player() -> None:
    good = make_job("good")
    evil = make_job("evil")
    plans = plans_for(
        (good, [attempt(good, "succeeded", results=(result("good", downloaded=False),))]),
        (
            evil,
            [
                attempt(
                    evil,
                    "succeeded",
                    results=(result("evil", downloaded=False, url="javascript:alert(1)"),),
                )
            ],
        ),
    )
    page = render(plans, download=False)
    tags = parse(page)
    assert not tags.find("video")
    links = [a["href"] for a in tags.find("a") if a.get("rel")]
    assert links == ["https://files.example/good.mp4"]
    assert "javascript:" not in page


def test_render_is_pure_and_write_is_atomic(tmp_path: Path) -> None:
    plans = sample()
    assert render(plans) == render(plans)
    path = write_outputs(tmp_path / "out", manifest_of(plans), plans)
    assert path == tmp_path / "out" / GALLERY_FILE
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    # The three outputs, and no temp file left.
    assert sorted(p.name for p in path.parent.iterdir()) == [
        GALLERY_FILE,
        "ledger.csv",
        "ledger.jsonl",
    ]


def test_runs_and_the_ledger_command_write_the_gallery(tmp_path: Path) -> None:
    manifest = tmp_path / "batch.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "name": "Tiny",
                # --simulate behaves like Kie today, where Sora (the default model) is paused.
                "defaults": {"model": "kling-2.6/text-to-video", "sound": False},
                "jobs": [{"id": "one", "prompt": "A paper boat"}, {"id": "two", "prompt": HOSTILE}],
            }
        )
    )
    out = tmp_path / "out"
    assert (
        main([str(manifest), "--simulate", "--time-scale", "0.002", "--out", str(out), "--quiet"])
        == 0
    )
    page = (out / GALLERY_FILE).read_text(encoding="utf-8")
    assert len(parse(page).find("video")) == 2 and "<script" not in page
    (out / GALLERY_FILE).unlink()
    assert main(["ledger", str(manifest), "--out", str(out)]) == 0
    assert "<h1>Tiny</h1>" in (out / GALLERY_FILE).read_text(encoding="utf-8")


def test_earlier_takes_fold_under_the_card_escaped_newest_first() -> None:
    job = make_job("teaser", "A paper boat at dawn")
    old_inputs = json.dumps({"model": job.model, "prompt": HOSTILE, "aspect_ratio": "landscape"})
    takes = [
        attempt(
            job,
            "succeeded",
            fingerprint=f"{n}" * 64,
            completed_at=1.0e9 + n * 3600,
            inputs=old_inputs,
            results=(replace(result("teaser"), file=f"media/takes/teaser/{n}.mp4"),),
        )
        for n in (1, 2)
    ]
    (plan,) = plans_for((job, [*takes, attempt(job, "succeeded")]))
    assert [t.fingerprint[0] for t in plan.takes] == ["2", "1"]  # newest first
    page = render([plan])
    fold = page[page.index('<details class="takes">') :]
    assert "<summary>2 earlier takes</summary>" in fold
    assert fold.index("media/takes/teaser/2.mp4") < fold.index("media/takes/teaser/1.mp4")
    assert "<dt>prompt</dt><dd>&lt;script&gt;alert(1)&lt;/script&gt;" in fold
    assert "<dt>n_frames</dt><dd>(not set)</dd>" in fold  # a field the old version lacked
    assert "<script" not in page.lower()
    assert 'aria-label="Earlier take 2 of teaser, finished 2001-09-09 03:46:40 UTC"' in fold
