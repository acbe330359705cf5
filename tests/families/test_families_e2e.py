"""Kie's own-endpoint families end to end, over loopback against the simulator: the same
manifest, state, ledger, gallery and chains as createTask models."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from tests.families.conftest import png
from tests.support.batch import Batch, MakeBatch

MIXED = """\
version: 1
jobs:
  - id: hero
    model: veo3_fast
    prompt: A lighthouse at dusk, waves crashing on the rocks
    aspect_ratio: "16:9"
  - id: cutdown
    model: kling-2.6/text-to-video
    prompt: A fox running through fresh snow
    sound: false
    duration: "5"
  - id: balloon
    model: runway
    prompt: A red balloon drifting over a city at dawn
    duration: 5
    quality: 720p
    aspectRatio: "16:9"
  - id: watercolour
    model: flux-kontext-pro
    prompt: Make it a watercolour painting
    inputImage: {file: still.png}
"""


def creates(batch: Batch) -> list[dict[str, Any]]:
    """The create requests Kie answered, in order, with the bodies they sent."""
    return [r for r in batch.sim.requests() if "body" in r and r["code"] == 200]


def test_a_manifest_mixing_families_runs(make_batch: MakeBatch) -> None:
    batch = make_batch()
    (batch.manifest.parent / "still.png").write_bytes(png())
    batch.write(MIXED)
    assert batch.run("--upload-url", batch.sim.base_url) == 0
    rows = batch.ledger()
    assert {r["id"]: r["model"] for r in rows.values()} == {
        "hero": "veo3_fast",
        "cutdown": "kling-2.6/text-to-video",
        "balloon": "runway",
        "watercolour": "flux-kontext-pro",
    }
    assert all(r["status"] == "succeeded" and r["attempts"] == 1 for r in rows.values())
    files = {r["id"]: r["file"] for r in rows.values()}
    assert files == {
        "hero": "media/hero.mp4",
        "cutdown": "media/cutdown.mp4",
        "balloon": "media/balloon.mp4",
        "watercolour": "media/watercolour.png",
    }
    for name in files.values():
        assert (batch.out / name).stat().st_size > 0
    gallery = (batch.out / "index.html").read_text()
    assert all(name in gallery for name in files.values())
    # Each family's create went to its own endpoint, in its own shape.
    paths = {r["path"] for r in creates(batch)}
    assert paths == {
        "/api/v1/veo/generate",
        "/api/v1/jobs/createTask",
        "/api/v1/runway/generate",
        "/api/v1/flux/kontext/generate",
    }
    veo = next(r["body"] for r in creates(batch) if r["path"] == "/api/v1/veo/generate")
    assert veo["model"] == "veo3_fast" and "input" not in veo
    assert veo["prompt"] == "A lighthouse at dusk, waves crashing on the rocks"
    queried = {r["path"] for r in batch.sim.requests() if r["method"] == "GET"}
    assert {"/api/v1/veo/record-info", "/api/v1/runway/record-detail"} <= queried
    assert "/api/v1/flux/kontext/record-info" in queried


CHAIN = """\
version: 1
jobs:
  - id: still
    model: google/nano-banana
    prompt: A ceramic mug on a linen tablecloth, morning light
  - id: film
    model: veo3_fast
    prompt: The camera circles the mug slowly
    imageUrls: [{output: still}]
    generationType: FIRST_AND_LAST_FRAMES_2_VIDEO
  - id: film-4k
    model: veo/get-4k-video
    taskId: {task: film}
"""


def test_a_veo_chain_creates_each_task_once_in_order(make_batch: MakeBatch) -> None:
    batch = make_batch()
    batch.write(CHAIN)
    assert batch.run() == 0
    rows = batch.ledger()
    assert [r["status"] for r in rows.values()] == ["succeeded"] * 3
    made = creates(batch)
    assert [r["path"] for r in made] == [
        "/api/v1/jobs/createTask",
        "/api/v1/veo/generate",
        "/api/v1/veo/get-4k-video",
    ]
    assert all(n == 1 for n in batch.stats()["creates_by_fingerprint"].values())
    _, film, four_k = (r["body"] for r in made)
    # Each from its upstream's recorded result or task id.
    assert film["imageUrls"] == [rows["still"]["result_url"]]
    assert four_k == {"taskId": rows["film"]["task_id"], "index": 0}
    assert rows["film-4k"]["file"] == "media/film-4k.mp4"
    assert rows["film-4k"]["task_id"] != rows["film"]["task_id"]


FOLLOW_UPS = """\
version: 1
jobs:
  - id: film
    model: veo3
    prompt: A paper boat on a stream
  - id: longer
    model: veo/extend
    taskId: {task: film}
    prompt: The boat drifts under a bridge
  - id: hd
    model: veo/get-1080p-video
    taskId: {task: film}
"""


def test_veo_follow_ups_extend_with_their_sources_quality_and_fetch_1080p(
    make_batch: MakeBatch,
) -> None:
    batch = make_batch()
    batch.write(FOLLOW_UPS)
    assert batch.run() == 0
    rows = batch.ledger()
    assert all(r["status"] == "succeeded" for r in rows.values())
    extend = next(r["body"] for r in creates(batch) if r["path"] == "/api/v1/veo/extend")
    assert extend["model"] == "quality"  # veo3 is Kie's "quality"
    assert extend["taskId"] == rows["film"]["task_id"]
    assert rows["hd"]["file"] == "media/hd.mp4"
    assert rows["hd"]["task_id"] == f"1080p~0~{rows['film']['task_id']}"


def test_a_moderated_veo_task_fails_and_is_not_retried(make_batch: MakeBatch) -> None:
    batch = make_batch(moderation_words=("forbidden",))
    batch.write(
        "version: 1\njobs:\n  - id: bad\n    model: veo3_fast\n    prompt: A forbidden scene\n"
    )
    assert batch.run() == 1
    row = batch.ledger()["bad"]
    assert row["status"] == "failed" and row["attempts"] == 1
    assert row["error_code"] == "400"
    assert "violating content policies" in row["error_message"]
    records = [r for r in batch.sim.requests() if r["path"] == "/api/v1/veo/record-info"]
    assert records and len(creates(batch)) == 1


def test_suno_gets_the_runners_placeholder_callback_and_two_tracks(make_batch: MakeBatch) -> None:
    batch = make_batch()
    batch.write(
        "version: 1\njobs:\n  - id: song\n    model: V5\n    prompt: A calm piano piece\n"
        "    customMode: false\n    instrumental: true\n"
    )
    assert batch.run() == 0
    (made,) = creates(batch)
    assert made["path"] == "/api/v1/generate"
    assert made["body"]["callBackUrl"] == "https://callback.invalid/run-pipeline"
    assert made["body"]["model"] == "V5"
    row = json.loads((batch.out / "ledger.jsonl").read_text().splitlines()[0])
    assert [o["file"] for o in row["outputs"]] == ["media/song.mp3", "media/song-2.mp3"]
    gallery = (batch.out / "index.html").read_text()
    assert "<audio" in gallery and "media/song.mp3" in gallery


def test_gpt4o_image_yields_several_images(make_batch: MakeBatch) -> None:
    batch = make_batch()
    batch.write(
        "version: 1\njobs:\n  - id: pic\n    model: gpt4o-image\n"
        "    prompt: A cat astronaut\n    size: '1:1'\n"
    )
    assert batch.run() == 0
    row = batch.ledger()["pic"]
    assert row["outputs"] == 4 or len(row["outputs"]) == 4
    assert (batch.out / "media/pic-4.png").is_file()


def test_expired_results_are_refreshed_by_each_familys_download_url(
    make_batch: MakeBatch,
) -> None:
    # Result URLs expire as soon as the task ends: the later download must renew each link.
    batch = make_batch(url_ttl=0.001)
    batch.write(
        "version: 1\njobs:\n  - id: pic\n    model: gpt4o-image\n    prompt: A cat astronaut\n"
        "    size: '1:1'\n  - id: film\n    model: veo3_fast\n    prompt: A paper boat\n"
    )
    assert batch.run("--no-download") == 0
    assert batch.run() == 0
    rows = batch.ledger()
    assert rows["pic"]["status"] == rows["film"]["status"] == "succeeded"
    assert (batch.out / "media/pic-4.png").is_file() and (batch.out / "media/film.mp4").is_file()
    asked = [r["path"] for r in batch.sim.requests() if "download-url" in r["path"]]
    assert asked.count("/api/v1/gpt4o-image/download-url") == 4  # GPT-4o Image's own
    assert asked.count("/api/v1/common/download-url") == 1  # Veo documents none: the common


def test_family_shaped_callbacks_reach_the_runner(
    make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runway and Suno post `task_id`, Veo `taskId`: each callback is taken, for its id."""
    monkeypatch.setenv("KIE_WEBHOOK_HMAC_KEY", "whsec-families")
    batch = make_batch(webhook_hmac_key="whsec-families")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    batch.write(
        "version: 1\njobs:\n  - id: film\n    model: veo3_fast\n    prompt: A paper boat\n"
        "  - id: clip\n    model: runway\n    prompt: A kite\n    duration: 5\n"
        "    quality: 720p\n    aspectRatio: '16:9'\n"
        "  - id: song\n    model: V4_5\n    prompt: A calm piano piece\n"
        "    customMode: false\n    instrumental: true\n"
    )
    url = f"http://127.0.0.1:{port}/kie"
    assert batch.run("--callback-listen", f"127.0.0.1:{port}", "--callback-url", url) == 0
    # Delivered = the receiver took it (one without a readable task id is answered 400).
    assert batch.stats()["callbacks"]["delivered"] == 3
    sent = [r["body"]["callBackUrl"] for r in creates(batch)]
    assert sent == [url] * 3  # the run's own, not the placeholder
