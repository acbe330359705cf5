"""The upload client against a loopback host that records what it receives: the key goes to
the upload endpoint and never to the file URL; answers of either shape are read; bad ones
map onto the error tree."""

from __future__ import annotations

import asyncio
import json

import pytest

from pipeline.kie.client import AuthError, MalformedAnswer, PermanentError, ServerError
from pipeline.kie.uploads import UploadClient, UploadInfo
from tests.support.hostile import Conn, Handler, Request, hostile, response

KEY = "upload-secret-key"


def _host(answer: dict[str, object] | bytes, file_status: int = 206) -> Handler:
    def handler(request: Request, conn: Conn) -> None:
        if request.method == "POST":
            raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            conn.send(response(200, raw, {"Content-Type": "application/json"}))
        else:
            conn.send(response(file_status, b"\x89", {"Content-Type": "image/png"}))

    return handler


def _ok(url_key: str, url: str) -> dict[str, object]:
    data = {"fileName": "x.png", "filePath": "run-pipeline/x.png", url_key: url, "fileSize": 3}
    return {"success": True, "code": 200, "msg": "ok", "data": data}


def _upload(base: str, data: bytes = b"abc") -> UploadInfo:
    async def go() -> UploadInfo:
        async with UploadClient(base, KEY) as client:
            return await client.upload_bytes(data, "run-pipeline", "x.png")

    return asyncio.run(go())


@pytest.mark.parametrize("url_key", ["downloadUrl", "fileUrl"])
def test_upload_reads_either_answer_shape_and_keeps_the_key_off_the_file_host(
    url_key: str,
) -> None:
    holder: dict[str, str] = {}

    def handler(request: Request, conn: Conn) -> None:
        _host(_ok(url_key, holder["file"]))(request, conn)

    with hostile(handler) as server:
        holder["file"] = server.url + "/files/x.png"
        info = _upload(server.url)

        async def check() -> bool:
            async with UploadClient(server.url, KEY) as client:
                return await client.alive(holder["file"])

        assert asyncio.run(check()) is True
    assert info.url == holder["file"]
    post, get = server.requests
    assert post.path == "/api/file-stream-upload"
    assert post.headers["authorization"] == f"Bearer {KEY}"
    assert b'name="uploadPath"' in post.body and b"run-pipeline" in post.body
    assert b'name="fileName"' in post.body and b"abc" in post.body
    assert get.method == "GET" and get.headers.get("range") == "bytes=0-0"
    assert "authorization" not in get.headers


def test_a_file_the_host_no_longer_serves_is_not_alive() -> None:
    with hostile(_host({}, file_status=404)) as server:

        async def check() -> bool:
            async with UploadClient(server.url, KEY) as client:
                return await client.alive(server.url + "/files/gone.png")

        assert asyncio.run(check()) is False


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"success": False, "code": 401, "msg": "bad key", "data": None}, AuthError),
        ({"success": False, "code": 400, "msg": "uploadPath is required"}, PermanentError),
        ({"success": False, "code": 500, "msg": "busy"}, ServerError),
        ({"success": True, "code": 200, "msg": "ok", "data": {"fileName": "x"}}, MalformedAnswer),
        (b"<html>502 Bad Gateway</html>", MalformedAnswer),
    ],
)
def test_bad_answers_map_onto_the_error_tree(
    answer: dict[str, object] | bytes, error: type[Exception]
) -> None:
    with hostile(_host(answer)) as server, pytest.raises(error) as caught:
        _upload(server.url)
    assert KEY not in str(caught.value)
