"""Per-model behaviour from the model files: results of each media type, several per task,
prices, latency profiles, paused and unknown models, and the 2026 recordInfo fields."""

from __future__ import annotations

import json
import random
import statistics
from typing import Any

import httpx
import pytest

from pipeline.simulator import SimConfig, Simulator
from pipeline.simulator.results import video_bytes
from pipeline.simulator.tasks import plan_task, profile_for
from tests.support.sim import (
    CREATE,
    CREDIT,
    DOWNLOAD_URL,
    QUERY,
    MakeSim,
    body,
    client,
    create,
    record,
    wait_end,
)

MAGIC = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
    "audio/mpeg": b"ID3",
}


def finished(http: httpx.Client, model: str, **extra: Any) -> dict[str, Any]:
    data = wait_end(http, create(http, model=model, **extra))
    assert data["state"] == "success", data
    return data


def test_a_multi_image_task_has_one_distinct_png_per_image(market_sim: Simulator) -> None:
    with client(market_sim) as http:
        data = finished(http, "test/multi-image", num_images=4)
        balance = http.get(CREDIT).json()["data"]
    urls = data["response"]["resultUrls"]
    assert len(urls) == 4 and len(set(urls)) == 4
    assert data["successFlag"] == 1 and data["creditsConsumed"] == 16 == 100_000 - balance
    bodies = []
    for url in urls:
        answer = httpx.get(url)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        assert answer.content.startswith(MAGIC["image/png"])
        bodies.append(answer.content)
    assert len(set(bodies)) == 4  # four images, four hashes


def test_a_jpeg_is_asked_for_and_served(market_sim: Simulator) -> None:
    with client(market_sim) as http:
        (url,) = finished(http, "test/multi-image", output_format="jpeg")["response"]["resultUrls"]
    answer = httpx.get(url)
    assert url.endswith(".jpg") and answer.headers["content-type"] == "image/jpeg"
    assert answer.content.startswith(MAGIC["image/jpeg"]) and answer.content.endswith(b"\xff\xd9")


def test_an_audio_model_gives_an_mp3(market_sim: Simulator) -> None:
    with client(market_sim) as http:
        data = finished(http, "test/song")
    (url,) = data["response"]["resultUrls"]
    answer = httpx.get(url)
    assert answer.headers["content-type"] == "audio/mpeg" and answer.content.startswith(b"ID3")
    assert b"\xff\xfb\x90" in answer.content  # MPEG-1 Layer III frames follow the tag
    assert data["creditsConsumed"] == 12


def test_a_portrait_video_of_another_model_is_the_portrait_mp4(market_sim: Simulator) -> None:
    with client(market_sim) as http:
        (url,) = finished(http, "test/video", aspect_ratio="9:16")["response"]["resultUrls"]
    answer = httpx.get(url)
    assert answer.headers["content-type"] == "video/mp4" and answer.content[4:8] == b"ftyp"
    assert answer.content == video_bytes("portrait")


@pytest.mark.parametrize(
    ("model", "extra", "credits"),
    [
        ("test/video", {"duration": "10"}, 140),  # per second of duration
        ("test/video", {}, 70),  # the schema default ("5") is what Kie bills
        ("test/table", {"resolution": "1080p"}, 110),
        ("test/table", {}, 55),  # the table's default
        ("test/multi-image", {"num_images": 3}, 12),  # per result
        ("test/unpriced", {}, 20),  # no rule: the simulator's flat fallback
        ("sora-2-text-to-video", {"n_frames": "15"}, 35),  # the older format's price table
    ],
)
def test_each_price_rule_is_charged(
    market_sim: Simulator, model: str, extra: dict[str, Any], credits: int
) -> None:
    with client(market_sim) as http:
        create(http, model=model, **extra)
        assert http.get(CREDIT).json()["data"] == 100_000 - credits
    (task,) = market_sim.tasks()
    assert task["credits"] == credits


def test_the_second_image_keeps_its_place_through_download_url(market_sim: Simulator) -> None:
    with client(market_sim) as http:
        urls = finished(http, "test/multi-image", num_images=2)["response"]["resultUrls"]
        fresh = http.post(DOWNLOAD_URL, json={"url": urls[1]}).json()["data"]
    assert fresh != urls[1] and fresh.endswith("-2.png")
    assert httpx.get(fresh).content == httpx.get(urls[1]).content


def test_recordinfo_carries_the_2026_fields_beside_the_old_ones(market_sim: Simulator) -> None:
    with client(market_sim) as http:
        task_id = create(http, model="test/multi-image")
        running = record(http, task_id)
        done = wait_end(http, task_id)
    assert running["successFlag"] == 0 and running["response"] is None
    assert "creditsConsumed" not in running and running["resultJson"] == ""
    assert done["successFlag"] == 1 and done["creditsConsumed"] == 4
    assert isinstance(done["costTime"], int) and done["costTime"] >= 1  # seconds now
    assert json.loads(done["resultJson"])["resultUrls"] == done["response"]["resultUrls"]


def test_a_failed_task_has_success_flag_3_and_no_credits(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"generation_failure": 1.0})
    with client(sim) as http:
        data = wait_end(http, create(http))
    assert data["state"] == "fail" and data["successFlag"] == 3
    assert "creditsConsumed" not in data and data["response"] is None


def test_unknown_task_is_404_by_default_and_422_recordinfo_is_null_when_asked(
    make_sim: MakeSim,
) -> None:
    old, new = make_sim(), make_sim(unknown_task_422=True)
    with client(old) as http:
        assert http.get(QUERY, params={"taskId": "0" * 32}).json()["code"] == 404
    with client(new) as http:
        envelope = http.get(QUERY, params={"taskId": "0" * 32}).json()
    assert envelope == {"code": 422, "msg": "recordInfo is null", "data": None}


def test_paused_models_answer_500_temporarily_paused(make_sim: MakeSim, tmp_path: Any) -> None:
    from tests.support.sim import write_models

    sim = make_sim(model_pauses=True, model_dirs=(write_models(tmp_path),))
    paused = {"code": 500, "msg": "This interface is temporarily paused", "data": None}
    with client(sim) as http:
        assert http.post(CREATE, json=body()).json() == paused  # Sora, older file format
        assert http.post(CREATE, json=body(model="test/paused")).json() == paused
        assert http.post(CREATE, json=body(model="test/video")).json()["code"] == 200
    assert sim.stats()["creates"] == 1
    sim.control(model_pauses=False)  # a test can still run Sora
    with client(sim) as http:
        create(http)


def test_latency_profiles_by_media() -> None:
    config = SimConfig()

    def median(media: str, long: bool = False) -> float:
        rng = random.Random(3)
        profile = profile_for(config, media, long)
        return statistics.median(
            plan_task(config, rng, False, profile).latency for _ in range(2000)
        )

    image, video, long = median("image"), median("video"), median("video", long=True)
    assert 10 < image < 20  # tens of seconds
    assert 100 < video < 140  # about two minutes
    assert long > 1.5 * video and 20 < median("audio") < 120
    rng, profile = random.Random(4), profile_for(config, "image", False)
    assert all(5 <= plan_task(config, rng, False, profile).latency <= 60 for _ in range(500))


def test_a_url_field_holding_a_path_is_refused_as_kie_would(market_sim: Simulator) -> None:
    with client(market_sim) as http:
        for text in ("./assets/x.png", "{output: still}"):
            answer = http.post(
                CREATE,
                json=body(
                    "It turns",
                    model="kling-2.6/image-to-video",
                    sound=False,
                    duration="5",
                    image_urls=[text],
                ),
            ).json()
            assert answer["code"] == 422 and "image_urls" in answer["msg"], answer
        create(
            http,
            "It turns",
            model="kling-2.6/image-to-video",
            sound=False,
            duration="5",
            image_urls=["https://example.com/x.png"],
        )
    assert market_sim.stats()["creates"] == 1
