"""Pipelines end to end (issue 15): jobs that take other jobs' results, over HTTP against the
simulator. Its /__sim/tasks records show what each task received and when it was created."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from pipeline.cli.main import main
from tests.support.batch import Batch, MakeBatch

SETTINGS = "settings:\n  download: false\n"  # a task's success is what a downstream needs

CHAIN = """version: 1
{settings}jobs:
  - id: still
    model: nano-banana-pro
    prompt: {still}
    aspect_ratio: "16:9"
  - id: video
    model: kling-2.6/image-to-video
    prompt: {video}
    image_urls: [{{output: still}}]
    sound: false
  - id: hd
    model: topaz/video-upscale
    video_url: {{output: video}}
  - id: clip
    model: grok-imagine/text-to-video
    prompt: A lighthouse at dusk
  - id: clip-hd
    model: grok-imagine/upscale
    task_id: {{task: clip}}
"""


def chain(still: str = "A mug on an oak table", video: str = "Steam rises") -> str:
    return CHAIN.format(settings=SETTINGS, still=still, video=video)


def sim_tasks(batch: Batch) -> list[dict[str, Any]]:
    answer = httpx.get(batch.sim.base_url + "/__sim/tasks")
    answer.raise_for_status()
    tasks: list[dict[str, Any]] = answer.json()
    return tasks


def creates(batch: Batch) -> int:
    return int(batch.stats()["creates"])


def status_json(batch: Batch, capsys: Any) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["status", str(batch.manifest), "--out", str(batch.out), "--json"]) == 0
    payload: dict[str, Any] = json.loads(capsys.readouterr().out)
    return payload


def test_each_stage_gets_its_upstream_result_once_that_has_finished(
    make_batch: MakeBatch,
) -> None:
    batch = make_batch()
    batch.write(chain())
    assert batch.run() == 0
    rows = batch.ledger()
    assert {r["status"] for r in rows.values()} == {"succeeded"}
    tasks = {t["taskId"]: t for t in sim_tasks(batch)}
    assert len(tasks) == 5  # one task per job: nothing created twice
    task = {job: tasks[row["task_id"]] for job, row in rows.items()}
    # {output: JOB}: the upstream's result URL; {task: JOB}: its task id.
    assert task["video"]["input"]["image_urls"] == [rows["still"]["result_url"]]
    assert task["hd"]["input"]["video_url"] == rows["video"]["result_url"]
    assert task["clip-hd"]["input"]["task_id"] == rows["clip"]["task_id"]
    for down, up in (("video", "still"), ("hd", "video"), ("clip-hd", "clip")):
        assert task[up]["state"] == "success"
        assert task[down]["created_at"] >= task[up]["finished_at"], (down, up)


def test_a_downstream_job_starts_as_soon_as_its_upstream_succeeds(make_batch: MakeBatch) -> None:
    """Not after the whole batch: the quick chain runs while a slow job is still generating."""
    batch = make_batch()
    batch.write(
        chain()
        + "  - id: slow\n    model: topaz/video-upscale\n"
        + "    video_url: https://example.com/old-film.mp4\n"
    )
    # Videos take 300 s, upscales twice that, images at most 60 s (provider seconds).
    batch.control(latency_min=300, latency_median=300, latency_max=300)
    assert batch.run() == 0
    tasks = {t["taskId"]: t for t in sim_tasks(batch)}
    rows = batch.ledger()
    slow = tasks[rows["slow"]["task_id"]]
    video = tasks[rows["video"]["task_id"]]
    assert video["created_at"] < slow["finished_at"]


def test_edits_rerun_exactly_what_they_invalidate(make_batch: MakeBatch) -> None:
    batch = make_batch()
    batch.write(chain())
    assert batch.run() == 0
    first = batch.ledger()
    assert creates(batch) == 5

    batch.write(chain())  # no edit
    assert batch.run() == 0
    assert creates(batch) == 5

    batch.write(chain(still="A mug on a walnut table"))  # the still and all below it
    before = creates(batch)
    assert batch.run() == 0
    assert creates(batch) - before == 3
    second = batch.ledger()
    for job in ("still", "video", "hd"):
        assert second[job]["task_id"] != first[job]["task_id"], job
    assert second["clip"]["task_id"] == first["clip"]["task_id"]
    tasks = {t["taskId"]: t for t in sim_tasks(batch)}
    # The new video took the new still, not the stale one.
    assert tasks[second["video"]["task_id"]]["input"]["image_urls"] == [
        second["still"]["result_url"]
    ]

    batch.write(chain(still="A mug on a walnut table", video="Steam curls"))  # video and hd
    before = creates(batch)
    assert batch.run() == 0
    assert creates(batch) - before == 2
    third = batch.ledger()
    assert third["still"]["task_id"] == second["still"]["task_id"]

    before = creates(batch)
    assert batch.run() == 0  # no edit: nothing at all
    assert creates(batch) - before == 0


MODERATED = """version: 1
settings:
  download: false
jobs:
  - id: still
    model: seedream/5-lite-text-to-image
    prompt: A gore scene on a kitchen table
  - id: film-a
    model: kling-2.6/image-to-video
    prompt: The camera pushes in
    image_urls: [{output: still}]
    sound: false
  - id: film-b
    model: kling-2.6/image-to-video
    prompt: The camera pulls out
    image_urls: [{output: still}]
    sound: false
  - id: film-b-hd
    model: topaz/video-upscale
    video_url: {output: film-b}
"""


def test_a_moderated_upstream_blocks_its_downstream_jobs_for_free(
    make_batch: MakeBatch, capsys: Any
) -> None:
    batch = make_batch()
    batch.write(MODERATED)
    assert batch.run() == 1
    rows = batch.ledger()
    assert rows["still"]["status"] == "failed"
    assert creates(batch) == 1  # the still alone: nothing for the jobs it blocks
    for job in ("film-a", "film-b", "film-b-hd"):
        assert rows[job]["status"] == "blocked", rows[job]
        assert rows[job]["error_code"] == "blocked"
        assert rows[job]["task_id"] is None and rows[job]["attempts"] == 0
    assert rows["film-a"]["error_message"].startswith("still failed (422")
    assert rows["film-b-hd"]["error_message"].startswith("film-b is blocked (still failed")
    status = status_json(batch, capsys)
    assert status["counts"] == {"failed": 1, "blocked": 3}
    reasons = {j["id"]: j["reason"] for j in status["jobs"]}
    assert reasons["film-a"].startswith("blocked: still failed (422")
    page = (batch.out / "index.html").read_text()
    assert "from still" in page and 'data-status="blocked"' in page

    # A rerun without an edit changes nothing, and costs nothing.
    assert batch.run() == 1
    assert creates(batch) == 1

    # --retry-failed does not resend the same refused prompt; an edited one goes again,
    # then the jobs it blocked.
    batch.control(moderation_words=[])
    assert batch.run("--retry-failed") == 1
    assert creates(batch) == 1
    batch.write(MODERATED.replace("A gore scene", "A still life"))
    assert batch.run() == 0
    assert creates(batch) == 5
    rows = batch.ledger()
    tasks = {t["taskId"]: t for t in sim_tasks(batch)}
    still = tasks[rows["still"]["task_id"]]
    for job in ("film-a", "film-b"):
        assert tasks[rows[job]["task_id"]]["created_at"] >= still["finished_at"]


TIMEOUT = """version: 1
settings:
  download: false
  max_wait: {max_wait}
jobs:
  - id: film
    model: kling-2.6/text-to-video
    prompt: A slow dolly shot
    sound: false
  - id: film-hd
    model: topaz/video-upscale
    video_url: {{output: film}}
"""


def test_a_timed_out_upstream_keeps_its_downstream_waiting(
    make_batch: MakeBatch, capsys: Any
) -> None:
    batch = make_batch()
    batch.control(latency_min=400, latency_median=400, latency_max=400)  # 2 s, scaled
    batch.write(TIMEOUT.format(max_wait=40))  # 0.2 s, scaled
    assert batch.run() == 1
    rows = batch.ledger()
    assert rows["film"]["status"] == "timed_out" and rows["film-hd"]["status"] == "pending"
    reasons = {j["id"]: j["reason"] for j in status_json(batch, capsys)["jobs"]}
    assert reasons["film-hd"] == "waiting for film (timed_out)"
    assert creates(batch) == 1

    batch.write(TIMEOUT.format(max_wait=900))
    assert batch.run() == 0  # the same upstream task, tracked again; then the downstream
    assert creates(batch) == 2
    assert batch.ledger()["film"]["task_id"] == rows["film"]["task_id"]


def test_an_old_result_url_is_refreshed_before_it_is_sent(make_batch: MakeBatch) -> None:
    batch = make_batch()
    still_only = chain().split("  - id: video")[0]
    batch.write(still_only)
    assert batch.run() == 0
    stored = batch.ledger()["still"]
    time.sleep(600 * batch.scale + 0.5)  # past the margin (URL_FRESH_FOR, scaled)
    batch.write(chain())
    assert batch.run() == 0
    assert batch.stats()["download_url_calls"] >= 1
    rows = batch.ledger()
    tasks = {t["taskId"]: t for t in sim_tasks(batch)}
    (sent,) = tasks[rows["video"]["task_id"]]["input"]["image_urls"]
    assert sent != stored["result_url"]  # a fresh link to the same result
    assert stored["task_id"] in sent
    assert httpx.get(sent).status_code == 200


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

WITH_FILE = """version: 1
settings:
  download: false
jobs:
  - id: still
    model: nano-banana-pro
    prompt: The mug from the photo
    image_input: [{file: mug.png}]
  - id: film
    model: kling-2.6/image-to-video
    prompt: Steam rises
    image_urls: [{output: still}]
    sound: false
"""


def test_a_file_input_that_cannot_be_uploaded_sends_nothing_and_holds_downstream(
    make_batch: MakeBatch,
) -> None:
    batch = make_batch(upload_max_bytes=16)  # the file host refuses the 72-byte picture
    (batch.manifest.parent / "mug.png").write_bytes(PNG)
    batch.write(WITH_FILE)
    assert batch.run() == 1
    rows = batch.ledger()
    assert rows["still"]["status"] == "failed" and rows["still"]["task_id"] is None
    assert "mug.png" in rows["still"]["error_message"]
    # An upload that failed is tried again by the next run: the film waits for the still.
    assert rows["film"]["status"] == "pending" and rows["film"]["task_id"] is None
    assert creates(batch) == 0


def test_the_dry_run_shows_stages_and_the_cost_of_everything_that_would_run(
    make_batch: MakeBatch, capsys: Any
) -> None:
    batch = make_batch()
    batch.write(chain())
    capsys.readouterr()
    assert main([str(batch.manifest), "--dry-run", "--out", str(batch.out)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    order = [line.strip() for line in lines if line.startswith(" stage")]
    assert order == ["stage 1:"] + [
        f"stage {n} (each after the jobs it takes input from):" for n in (2, 3)
    ]
    video = next(line for line in lines if " video " in line)
    assert "-> wait: waiting for still (pending)" in video
    # Every job would run: 18 (still) + 55 (video) + 10 (grok upscale); the topaz upscale and
    # grok text-to-video (Kie types its duration a number; the old rule keyed on "6") have no
    # price until the price-list rules land.
    waiting = "Would submit 5 task(s), 3 of them once their upstream jobs succeed"
    assert f"{waiting}: an estimated 83 credits" in out
    assert "(+2 of unknown price)" in out
    assert not batch.out.exists()
