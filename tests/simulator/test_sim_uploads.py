"""The file host: three upload endpoints, files typed by name, retention, the upload log, and
creates whose input file is gone or mislabelled."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from pipeline.simulator import Simulator
from pipeline.simulator.results import result_bytes
from tests.support.sim import KEY, MakeSim, body, client, create, wait_end, wait_for

STREAM, BASE64, URL = "/api/file-stream-upload", "/api/file-base64-upload", "/api/file-url-upload"
PNG = result_bytes("png", "upload-test", "landscape")
JPEG = result_bytes("jpg", "upload-test", "landscape")


def stream_upload(
    http: httpx.Client, data: bytes, name: str = "mug.png", path: str = "run-pipeline"
) -> dict[str, Any]:
    answer = http.post(
        STREAM,
        files={"file": ("original-name.bin", data, "application/octet-stream")},
        data={"uploadPath": path, "fileName": name},
    )
    assert answer.status_code == 200
    envelope = answer.json()
    assert isinstance(envelope, dict)
    return envelope


def test_a_stream_upload_answers_like_kie_and_is_served_back(sim: Simulator) -> None:
    with client(sim) as http:
        envelope = stream_upload(http, PNG)
    assert envelope["success"] is True and envelope["code"] == 200 and envelope["msg"]
    data = envelope["data"]
    assert data["fileName"] == "mug.png" and data["filePath"] == "run-pipeline/mug.png"
    assert data["fileSize"] == len(PNG) and data["mimeType"] == "image/png"
    assert data["uploadedAt"].endswith("Z")
    served = httpx.get(data["downloadUrl"])
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png"
    head = httpx.head(data["downloadUrl"])
    assert head.status_code == 200 and head.headers["content-length"] == str(len(PNG))
    ranged = httpx.get(data["downloadUrl"], headers={"Range": "bytes=0-0"})
    assert ranged.status_code == 206 and ranged.content == PNG[:1]


def test_the_content_type_comes_from_the_name_not_the_bytes(sim: Simulator) -> None:
    with client(sim) as http:
        url = stream_upload(http, PNG, name="mislabelled.jpg")["data"]["downloadUrl"]
    assert httpx.get(url).headers["content-type"] == "image/jpeg"


def test_uploads_need_the_bearer_key(sim: Simulator) -> None:
    with client(sim, key=None) as http:
        envelope = stream_upload(http, PNG)
    assert envelope["success"] is False and envelope["code"] == 401
    assert sim.service.uploads_view() == []


def test_base64_and_url_uploads(sim: Simulator) -> None:
    with client(sim) as http:
        plain = http.post(
            BASE64,
            json={"base64Data": base64.b64encode(JPEG).decode(), "uploadPath": "a/b"},
        ).json()
        data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
        named = http.post(
            BASE64, json={"base64Data": data_url, "uploadPath": "a", "fileName": "logo.png"}
        ).json()
        source = named["data"]["downloadUrl"]
        fetched = http.post(URL, json={"fileUrl": source, "uploadPath": "copies"}).json()
    assert plain["success"] and plain["data"]["fileName"].endswith(".jpg")  # named for you
    assert httpx.get(plain["data"]["downloadUrl"]).content == JPEG
    assert named["data"]["filePath"] == "a/logo.png"
    assert fetched["success"] and fetched["data"]["filePath"] == "copies/logo.png"
    assert httpx.get(fetched["data"]["downloadUrl"]).content == PNG
    endpoints = [e["endpoint"] for e in sim.service.uploads_view()]
    assert endpoints == ["base64", "base64", "url"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"uploadPath": "/leading"}, 400),
        ({"uploadPath": "trailing/"}, 400),
        ({"uploadPath": "a/../b"}, 400),
        ({}, 400),
    ],
)
def test_bad_upload_paths_are_refused(sim: Simulator, fields: dict[str, str], code: int) -> None:
    with client(sim) as http:
        answer = http.post(STREAM, files={"file": ("x.png", PNG)}, data=fields).json()
    assert answer["success"] is False and answer["code"] == code


def test_a_file_over_the_limit_is_refused(make_sim: MakeSim) -> None:
    sim = make_sim(upload_max_bytes=100)
    with client(sim) as http:
        answer = stream_upload(http, bytes(200))
    assert answer["success"] is False and answer["code"] == 413


def test_the_same_name_overwrites_and_the_log_says_who_uploaded_what(sim: Simulator) -> None:
    with client(sim) as http:
        url = stream_upload(http, PNG)["data"]["downloadUrl"]
        assert stream_upload(http, PNG + b"2")["data"]["downloadUrl"] == url
    assert httpx.get(url).content == PNG + b"2"
    log = httpx.get(f"{sim.base_url}/__sim/uploads").json()
    assert [(e["filePath"], e["fileSize"], e["overwrote"]) for e in log] == [
        ("run-pipeline/mug.png", len(PNG), False),
        ("run-pipeline/mug.png", len(PNG) + 1, True),
    ]
    assert all(e["account"] == 0 and e["time"] > 0 and len(e["sha256"]) == 64 for e in log)
    assert KEY not in str(log)
    assert sim.stats()["uploads"] == 2


def test_an_upload_expires_after_its_retention(make_sim: MakeSim) -> None:
    sim = make_sim(upload_ttl=30.0)  # 0.3 s at the tests' time scale
    with client(sim) as http:
        url = stream_upload(http, PNG)["data"]["downloadUrl"]
    assert httpx.get(url).status_code == 200
    wait_for(lambda: True if httpx.get(url).status_code == 404 else None)


def _task_with_input(sim: Simulator, image_url: str) -> dict[str, Any]:
    with client(sim) as http:
        return wait_end(http, create(http, model="test/video", image_url=image_url))


def test_a_create_with_a_live_upload_succeeds(market_sim: Simulator) -> None:
    with client(market_sim) as http:
        url = stream_upload(http, PNG)["data"]["downloadUrl"]
    assert _task_with_input(market_sim, url)["state"] == "success"


def test_a_create_with_an_expired_upload_fails_like_kie(make_sim: MakeSim, tmp_path: Any) -> None:
    from tests.support.sim import write_models

    sim = make_sim(upload_ttl=30.0, model_dirs=(write_models(tmp_path),))
    with client(sim) as http:
        url = stream_upload(http, PNG)["data"]["downloadUrl"]
        wait_for(lambda: True if httpx.get(url).status_code == 404 else None)
        balance = http.get("/api/v1/chat/credit").json()["data"]
    data = _task_with_input(sim, url)
    assert data["state"] == "fail" and data["failCode"] == "422"
    assert url in data["failMsg"] and "expired" in data["failMsg"]
    with client(sim) as http:  # refunded, like every failed task
        assert http.get("/api/v1/chat/credit").json()["data"] == balance


def test_a_create_naming_a_missing_upload_or_a_mislabelled_file_fails(
    market_sim: Simulator,
) -> None:
    missing = f"{market_sim.base_url}/uploads/run-pipeline/never.png"
    assert _task_with_input(market_sim, missing)["state"] == "fail"
    with client(market_sim) as http:
        url = stream_upload(http, JPEG, name="photo.png")["data"]["downloadUrl"]
    data = _task_with_input(market_sim, url)
    assert data["state"] == "fail" and "image/jpeg" in data["failMsg"]
    # Inputs elsewhere on the internet are not this host's business.
    assert _task_with_input(market_sim, "https://example.com/a.png")["state"] == "success"


def test_list_inputs_are_checked_too(market_sim: Simulator) -> None:
    gone = f"{market_sim.base_url}/uploads/x/gone.png"
    with client(market_sim) as http:
        task_id = create(http, model="test/multi-image", image_urls=["https://a/b.png", gone])
        assert wait_end(http, task_id)["state"] == "fail"
        assert http.post("/api/v1/jobs/createTask", json=body()).json()["code"] == 200
