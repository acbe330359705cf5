"""Answers that look valid but are wrong never become a job's result (issue 26): a poll
answered with another task's record (a caching proxy), an upstream result of the wrong type
or on a host the downloader refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.kie import client as kie
from tests.hostile.test_api_answers import against
from tests.support.batch import MakeBatch
from tests.support.hostile import Conn, Handler, Request, hostile, json_answer, response
from tests.support.manifests import jobs_yaml


def test_a_record_of_another_task_is_malformed() -> None:
    body = '{"code":200,"msg":"success","data":{"taskId":"t2","state":"success"}}'
    with pytest.raises(kie.MalformedAnswer, match="answered with task t2"):
        against(json_answer(body), "record_info", "t1")


def test_polls_answered_for_another_task_are_never_recorded(make_batch: MakeBatch) -> None:
    batch = make_batch(faults={"foreign_record": 0.5})
    batch.write(jobs_yaml(4))
    assert batch.run() == 0
    assert batch.stats()["faults"].get("foreign_record", 0) > 0  # the proxy did answer wrong
    for row in batch.rows():  # each job's result is its own task's (the URL names the task)
        assert row["task_id"] in row["result_url"], row
    assert len({r["sha256"] for r in batch.rows()}) == 2  # two orientations, as made


CHAIN = """version: 1
{settings}jobs:
  - id: still
    model: nano-banana-pro
    prompt: A mug on an oak table
    aspect_ratio: "16:9"
  - id: video
    model: kling-2.6/image-to-video
    prompt: Steam rises
    image_urls: [{{output: still}}]
    sound: false
"""
DOWNLOADS = {"on": "", "off": "settings:\n  download: false\n"}


@pytest.mark.parametrize("downloads", ["on", "off"])
def test_an_upstream_result_of_the_wrong_type_is_never_sent(
    make_batch: MakeBatch, downloads: str
) -> None:
    """The image model's task returns a video: the downstream job is not created from it."""
    batch = make_batch(faults={"wrong_media": 1.0})
    batch.write(CHAIN.format(settings=DOWNLOADS[downloads]))
    assert batch.run() == 1
    assert batch.stats()["creates"] == 1  # the upstream's only
    rows = batch.ledger()
    video = rows["video"]
    assert video["task_id"] is None
    assert "where the model makes image" in (video["error_message"] or ""), video
    if downloads == "on":  # the upstream's download refused it: the downstream is blocked
        assert rows["still"]["status"] == "failed" and video["status"] == "blocked"
    else:  # nothing downloads: the check before the create refuses it
        assert video["status"] == "failed" and video["error_code"] == "input"


def _mini_kie(result_url: str, upload_url: str | None = None) -> tuple[Handler, list[str]]:
    """A loopback Kie whose every task succeeds at once with `result_url`, and whose upload
    endpoint answers `upload_url`; the prompts of the creates it received."""
    prompts: list[str] = []

    def handler(request: Request, conn: Conn) -> None:
        data: object = None
        if request.path.startswith("/api/v1/chat/credit"):
            data = 1_000_000
        elif request.path.startswith("/api/v1/jobs/createTask"):
            prompts.append(json.loads(request.body)["input"].get("prompt", ""))
            data = {"taskId": f"task-{len(prompts)}"}
        elif request.path.startswith("/api/v1/jobs/recordInfo"):
            task = request.path.partition("taskId=")[2]
            result = json.dumps({"resultUrls": [result_url]})
            data = {"taskId": task, "state": "success", "resultJson": result}
        elif request.path.startswith("/api/file-stream-upload") and upload_url:
            data = {"downloadUrl": upload_url, "fileName": "x.png"}
        body = {"code": 200, "msg": "success", "data": data, "success": True}
        conn.send(response(200, json.dumps(body).encode(), {"Content-Type": "application/json"}))

    return handler, prompts


def _run(tmp_path: Path, text: str, base_url: str, *extra: str) -> int:
    manifest = tmp_path / "batch.yaml"
    manifest.write_text(text)
    (tmp_path / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    out = str(tmp_path / "out")
    argv = [str(manifest), "--base-url", base_url, "--out", out, "--quiet", *extra]
    return main([*argv, "--time-scale", "0.01", "--upload-url", base_url])


@pytest.mark.parametrize("downloads", ["on", "off"])
def test_a_result_url_the_downloader_refuses_is_never_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, downloads: str
) -> None:
    monkeypatch.setenv("KIE_API_KEY", "test-key")
    handler, prompts = _mini_kie("http://169.254.169.254/latest/meta-data/still.png")
    with hostile(handler) as server:
        code = _run(tmp_path, CHAIN.format(settings=DOWNLOADS[downloads]), server.url)
    assert code == 1
    assert prompts == ["A mug on an oak table"]  # the downstream was never created
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "out/ledger.jsonl").open())}
    assert "169.254.169.254 is never" in rows["video"]["error_message"], rows["video"]


def test_an_upload_url_on_a_link_local_host_is_never_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIE_API_KEY", "test-key")
    handler, prompts = _mini_kie("http://x", upload_url="http://169.254.169.254/pic.png")
    text = (
        "version: 1\njobs:\n  - id: clip\n    model: kling-2.6/image-to-video\n"
        "    prompt: The camera circles\n    image_urls: [{file: pic.png}]\n    sound: false\n"
    )
    with hostile(handler) as server:
        code = _run(tmp_path, text, server.url)
    assert code == 1
    assert prompts == []  # no create carried the refused URL
    (row,) = map(json.loads, (tmp_path / "out/ledger.jsonl").open())
    assert "refused URL" in row["error_message"], row
