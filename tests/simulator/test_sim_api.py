"""The simulator's API over real HTTP: answers, records and every error code."""

from __future__ import annotations

import json
import re
import subprocess
import time

import httpx
import pytest

from pipeline.simulator import Simulator
from tests.support.sim import (
    CREATE,
    CREDIT,
    DOWNLOAD_URL,
    KEY,
    QUERY,
    MakeSim,
    body,
    client,
    create,
    record,
    wait_end,
    wait_for,
)

HEX32 = re.compile(r"^[0-9a-f]{32}$")
ENDPOINTS = [("POST", CREATE), ("GET", QUERY), ("POST", DOWNLOAD_URL), ("GET", CREDIT)]


def test_create_answers_a_32_hex_task_id_and_record_id(sim: Simulator) -> None:
    with client(sim) as http:
        envelope = http.post(CREATE, json=body()).json()
    assert envelope["code"] == 200 and envelope["msg"] == "success"
    assert HEX32.match(envelope["data"]["taskId"])
    assert envelope["data"]["recordId"] == envelope["data"]["taskId"]


def test_the_curl_example_from_the_endpoint_page(make_sim: MakeSim) -> None:
    # Real time scale: the task stays in flight, so no callback goes to your-domain.com.
    sim = make_sim(time_scale=1.0, callback_timeout=0.5)
    data = """
{
  "model": "sora-2-text-to-video",
  "callBackUrl": "https://your-domain.com/api/callback",
  "input": {
    "prompt": "一位教授站在气氛活跃的教室前排，满怀热情地授课。他身后的黑板上画着色彩鲜艳的粉笔示意图，他用生动的手势向学生们宣布：“Sora 2 现已在 Kie AI 上线，让创作惊艳视频变得前所未有的简单。” 学生们专注听讲，有人面带微笑，有人认真记笔记。",
    "aspect_ratio": "landscape",
    "n_frames": "10",
    "remove_watermark": true
  }
}
"""  # noqa: E501
    out = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--request",
            "POST",
            "--url",
            f"{sim.base_url}/api/v1/jobs/createTask",
            "--header",
            f"Authorization: Bearer {KEY}",
            "--header",
            "Content-Type: application/json",
            "--data",
            data,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    envelope = json.loads(out.stdout)
    assert envelope["code"] == 200 and envelope["msg"] == "success"
    assert HEX32.match(envelope["data"]["taskId"])
    with client(sim) as http:
        param = json.loads(record(http, envelope["data"]["taskId"])["param"])
    assert param == json.loads(data)  # the create body, echoed back intact


def test_a_running_task_has_null_end_fields_and_no_update_time(make_sim: MakeSim) -> None:
    sim = make_sim(time_scale=1.0)  # real speed: minutes before it ends
    with client(sim) as http:
        sent = body("A slow sunrise", aspect_ratio="portrait")
        task_id = http.post(CREATE, json=sent).json()["data"]["taskId"]
        data = record(http, task_id)
    assert data["taskId"] == task_id and data["model"] == sent["model"]
    assert data["state"] in ("waiting", "queuing", "generating")
    assert isinstance(data["param"], str) and json.loads(data["param"]) == sent
    assert data["resultJson"] == ""
    for name in ("failCode", "failMsg", "costTime", "completeTime"):
        assert data[name] is None, name
    assert "updateTime" not in data
    assert abs(data["createTime"] - time.time() * 1000) < 60_000


def test_states_progress_in_order_to_success(make_sim: MakeSim) -> None:
    sim = make_sim(latency_median=100.0, latency_min=100.0, latency_max=100.0)  # 1 s exactly
    order = ["waiting", "queuing", "generating", "success"]
    seen: list[str] = []
    with client(sim) as http:
        task_id = create(http)
        data = record(http, task_id)
        while data["state"] != "success":
            if not seen or seen[-1] != data["state"]:
                seen.append(data["state"])
            time.sleep(0.01)
            data = record(http, task_id)
    seen.append("success")
    assert seen == sorted(seen, key=order.index) and seen[0] == "waiting"
    assert "generating" in seen
    result = json.loads(data["resultJson"])
    assert isinstance(data["resultJson"], str)
    assert len(result["resultUrls"]) == 1 and len(result["resultWaterMarkUrls"]) == 1
    assert data["failCode"] == "" and data["failMsg"] == ""
    assert isinstance(data["costTime"], int) and data["costTime"] > 0
    assert data["completeTime"] == data["updateTime"] >= data["createTime"]


def test_unknown_task_and_another_accounts_task_are_not_found(make_sim: MakeSim) -> None:
    sim = make_sim(api_keys=("alice", "bob"))
    with client(sim, "alice") as alice, client(sim, "bob") as bob:
        task_id = create(alice)
        for http, asked in ((alice, "0" * 32), (bob, task_id)):
            envelope = http.get(QUERY, params={"taskId": asked}).json()
            assert envelope == {"code": 404, "msg": "Task not found", "data": None}
        assert record(alice, task_id)["taskId"] == task_id
        assert alice.get(QUERY).json()["code"] == 422  # no taskId at all


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_missing_or_invalid_key_is_401(
    sim: Simulator, method: str, path: str, key: str | None
) -> None:
    with client(sim, key) as http:
        answer = http.request(method, path, params={"taskId": "x"}, json={"url": "x"})
    assert answer.status_code == 200
    assert answer.json()["code"] == 401 and answer.json()["data"] is None


def test_credits_are_charged_per_task_and_short_balance_is_402(make_sim: MakeSim) -> None:
    sim = make_sim(credits=95)
    with client(sim) as http:
        create(http, n_frames="10")  # 30 credits
        create(http, n_frames="15")  # 35 credits
        assert http.get(CREDIT).json() == {"code": 200, "msg": "success", "data": 30}
        envelope = http.post(CREATE, json=body(n_frames="15")).json()
        assert envelope["code"] == 402 and "credits" in envelope["msg"].lower()
        assert http.get(CREDIT).json()["data"] == 30  # a rejected create costs nothing
        create(http)  # exactly affordable: n_frames defaults to "10", 30 credits
        assert http.get(CREDIT).json()["data"] == 0
    assert sim.stats()["creates"] == 3


def test_control_can_empty_the_balance_mid_run(sim: Simulator) -> None:
    with client(sim) as http:
        create(http)
        answer = httpx.post(f"{sim.base_url}/__sim/control", json={"credits": {KEY: 0}})
        assert answer.status_code == 200 and answer.json()["balances"] == [0]
        assert http.post(CREATE, json=body()).json()["code"] == 402
        sim.control(credits=1000)
        assert http.get(CREDIT).json()["data"] == 1000
        create(http)


@pytest.mark.parametrize(
    ("sent", "named"),
    [
        (body(n_frames="12"), "n_frames"),
        (body(n_frames=10), "n_frames"),
        (body(aspect_ratio="square"), "aspect_ratio"),
        ({"model": "sora-2-text-to-video", "input": {"aspect_ratio": "portrait"}}, "prompt"),
        (body("x" * 10_001), "prompt"),
        ({"input": {"prompt": "hi"}}, "model"),
        ({"model": "sora-2-text-to-video"}, "input"),
        (body(callBackUrl="not a url"), "callBackUrl"),
    ],
)
def test_invalid_requests_are_422_naming_the_field(
    sim: Simulator, sent: dict[str, object], named: str
) -> None:
    with client(sim) as http:
        envelope = http.post(CREATE, json=sent).json()
    assert envelope["code"] == 422 and named in envelope["msg"], envelope
    assert sim.stats()["creates"] == 0


def test_unknown_input_fields_are_ignored_and_billed_like_kie(sim: Simulator) -> None:
    with client(sim) as http:
        task_id = create(http, colour="red")
        assert http.get(CREDIT).json()["data"] == 100_000 - 30
    (task,) = sim.tasks()
    assert task["taskId"] == task_id and task["credits"] == 30


def test_an_unknown_model_is_code_500_not_supported(sim: Simulator) -> None:
    with client(sim) as http:
        envelope = http.post(CREATE, json=body(model="no-such-model")).json()
    assert envelope == {
        "code": 500,
        "msg": "The model name you specified is not supported",
        "data": None,
    }
    assert sim.stats()["creates"] == 0


@pytest.mark.parametrize(
    ("sent", "msg"),
    [
        (
            {"model": "sora-2-text-to-video", "input": {"aspect_ratio": "portrait"}},
            "input.prompt: This field is required",
        ),
        (body(aspect_ratio="square"), "not within the range of allowed options"),
    ],
)
def test_validation_500_answers_like_kie(
    make_sim: MakeSim, sent: dict[str, object], msg: str
) -> None:
    sim = make_sim(validation_500=True)
    with client(sim) as http:
        envelope = http.post(CREATE, json=sent).json()
        assert envelope["code"] == 500 and msg in envelope["msg"], envelope
        # A type error is still 422.
        typed = {"model": "sora-2-text-to-video", "input": {"prompt": 5}}
        assert http.post(CREATE, json=typed).json()["code"] == 422
    assert sim.stats()["creates"] == 0


def test_a_body_that_is_not_json_is_422(sim: Simulator) -> None:
    with client(sim) as http:
        envelope = http.post(CREATE, content=b"{not json").json()
    assert envelope["code"] == 422


def test_create_rate_limit_rejects_excess_in_the_body(make_sim: MakeSim) -> None:
    sim = make_sim(time_scale=1.0, create_limit=(2, 10.0))
    with client(sim) as http:
        create(http)
        create(http)
        answer = http.post(CREATE, json=body())
    assert answer.status_code == 200 and answer.json()["code"] == 429
    assert len(sim.tasks()) == 2  # rejected, not queued
    assert sim.stats()["rate_limited"] == {"create": 1, "query": 0}


def test_create_rate_limit_window_slides(make_sim: MakeSim) -> None:
    sim = make_sim(create_limit=(1, 10.0))  # 1 per 0.1 s at this time scale
    with client(sim) as http:
        create(http)

        def accepted() -> bool | None:
            return True if http.post(CREATE, json=body()).json()["code"] == 200 else None

        assert wait_for(accepted, timeout=10)
    assert len(sim.tasks()) == 2


def test_query_rate_limit_as_a_real_http_429(make_sim: MakeSim) -> None:
    sim = make_sim(time_scale=1.0, query_limit=(3, 10.0), http_429=True)
    with client(sim) as http:
        for _ in range(3):
            assert http.get(CREDIT).status_code == 200
        for path in (CREDIT, QUERY):
            answer = http.get(path, params={"taskId": "x"})
            assert answer.status_code == 429 and answer.json()["code"] == 429
        create(http)  # creates have their own limit
    assert sim.stats()["rate_limited"]["query"] == 2


def test_maintenance_answers_455_everywhere_until_switched_off(sim: Simulator) -> None:
    sim.control(maintenance=True)
    with client(sim) as http:
        for method, path in ENDPOINTS:
            answer = http.request(method, path, params={"taskId": "x"}, json=body())
            assert answer.json()["code"] == 455, path
        sim.control(maintenance=False)
        create(http)


def test_a_disabled_model_answers_505_and_others_still_work(make_sim: MakeSim) -> None:
    sim = make_sim(disabled_models=("sora-2-pro-text-to-video",))
    with client(sim) as http:
        pro = body(model="sora-2-pro-text-to-video", size="high")
        envelope = http.post(CREATE, json=pro).json()
        assert envelope["code"] == 505 and "sora-2-pro-text-to-video" in envelope["msg"]
        create(http)
        sim.control(disabled_models=[])
        assert http.post(CREATE, json=pro).json()["code"] == 200
    assert sim.stats()["errors_by_code"] == {"505": 1}


def test_http_500_is_not_json_and_has_no_effect(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"http_500": 1.0})
    with client(sim) as http:
        answer = http.post(CREATE, json=body())
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.text)
    assert sim.tasks() == [] and sim.stats()["faults"] == {"http_500": 1}


def test_unknown_api_endpoint_is_404(sim: Simulator) -> None:
    with client(sim) as http:
        answer = http.get("/api/v1/jobs/nothing")
    assert answer.status_code == 404 and answer.json()["code"] == 404


def test_download_url_hands_out_a_fresh_working_link(make_sim: MakeSim) -> None:
    sim = make_sim(api_keys=("alice", "bob"))
    with client(sim, "alice") as alice, client(sim, "bob") as bob:
        data = wait_end(alice, create(alice))
        url = json.loads(data["resultJson"])["resultUrls"][0]
        envelope = alice.post(DOWNLOAD_URL, json={"url": url}).json()
        assert envelope["code"] == 200
        fresh = envelope["data"]
        assert isinstance(fresh, str) and fresh != url and fresh.startswith(sim.base_url)
        assert httpx.get(fresh).content == httpx.get(url).content
        assert bob.post(DOWNLOAD_URL, json={"url": url}).json()["code"] == 404
        assert alice.post(DOWNLOAD_URL, json={"url": "https://x.test/a.mp4"}).json()["code"] == 422
        assert alice.post(DOWNLOAD_URL, json={}).json()["code"] == 422
    assert sim.stats()["download_url_calls"] == 4
