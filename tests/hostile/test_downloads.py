"""Downloads from file hosts that misbehave: every download ends, is bounded, resumes only
what is the same file, and stores only media of the kind the model makes."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.kie.client import KieClient
from pipeline.results import download as dl
from pipeline.results import partfiles
from pipeline.simulator.files import video_bytes
from tests.support.hostile import Conn, Handler, HostileServer, Request, hostile, response

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
JPEG = b"\xff\xd8\xff\xe0" + b"\x10JFIF" + bytes(200)
MP4 = video_bytes("portrait")
TEXT = b"<html>admin console</html>\n    "  # 32 bytes


def serve(data: bytes, content_type: str | None) -> Handler:
    """A well-behaved host with Range support, serving `data`."""

    def handler(request: Request, conn: Conn) -> None:
        headers = {"Content-Type": content_type} if content_type else {}
        match = re.fullmatch(r"bytes=(\d+)-", request.headers.get("range", ""))
        if match:
            start = int(match.group(1))
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            conn.send(response(206, data[start:], headers))
        else:
            conn.send(response(200, data, headers))

    return handler


async def _no_refresh(url: str) -> str:
    raise AssertionError("no refresh expected")


async def _no_pause(n: int) -> None:
    return None


def fetch(
    server: HostileServer,
    stem: Path,
    path: str = "/r/result",
    *,
    base_url: str | None = None,
    **kwargs: Any,
) -> dl.Result:
    async def go() -> dl.Result:
        async with KieClient(base_url or server.url, "file-host-key", timeout=5) as client:
            kwargs.setdefault("refresh", _no_refresh)
            return await dl.download_result(
                client, server.url + path, stem, pause=_no_pause, **kwargs
            )

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("data", "content_type", "path", "name", "mime"),
    [
        (PNG, "image/png", "/a", "r.png", "image/png"),
        (JPEG, "image/jpeg; charset=binary", "/a", "r.jpg", "image/jpeg"),
        (MP4, "video/mp4", "/a", "r.mp4", "video/mp4"),
        (b"ID3\x04" + bytes(100), "audio/mpeg", "/a", "r.mp3", "audio/mpeg"),
        (PNG, "application/octet-stream", "/a.jpg", "r.png", "image/png"),  # the bytes win
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(64), None, "/x.webp", "r.webp", "image/webp"),
    ],
)
def test_a_result_is_named_by_its_type(
    tmp_path: Path, data: bytes, content_type: str | None, path: str, name: str, mime: str
) -> None:
    with hostile(serve(data, content_type)) as server:
        result = fetch(server, tmp_path / "r", path)
        assert "authorization" not in server.requests[0].headers
        assert server.requests[0].headers["accept-encoding"] == "identity"
    assert result.path == tmp_path / name and result.path.read_bytes() == data
    assert result.sha256 == hashlib.sha256(data).hexdigest() and result.size == len(data)
    assert result.media_type == mime and result.warning is None
    assert sorted(os.listdir(tmp_path)) == [name]


def test_an_unknown_type_is_kept_as_bin_with_a_warning(tmp_path: Path) -> None:
    with hostile(serve(b"\x00\x01opaque model output" * 4, "application/x-thing")) as server:
        result = fetch(server, tmp_path / "r", "/blob")
    assert result.path.name == "r.bin" and result.media_type == "application/octet-stream"
    assert result.warning and "application/x-thing" in result.warning


@pytest.mark.parametrize(
    ("data", "content_type", "path", "expected"),
    [
        (TEXT, "text/plain", "/admin", "video"),  # issue 18: a text page is not a video
        (TEXT, "video/mp4", "/v.mp4", None),  # served as MP4, not MP4 bytes
        (JPEG, "image/png", "/a.png", "image"),  # a JPEG served as PNG
        (TEXT, None, "/v.mp4", None),  # the URL says MP4; the bytes do not
        (PNG, "image/png", "/a.png", "video"),  # an image where the model makes videos
    ],
)
def test_a_result_that_is_not_what_it_says_is_an_error(
    tmp_path: Path, data: bytes, content_type: str | None, path: str, expected: str | None
) -> None:
    with hostile(serve(data, content_type)) as server:
        with pytest.raises(dl.DownloadError) as caught:
            fetch(server, tmp_path / "r", path, expected_media=expected)
        assert len(server.requests) == 1  # not worth another try
    assert caught.value.permanent and "not a valid result" in str(caught.value)
    assert os.listdir(tmp_path) == []  # no misnamed file, no .part


def test_a_resumed_answer_from_the_wrong_offset_restarts_from_zero(tmp_path: Path) -> None:
    """The host answers 206 from byte 0 whatever Range asked; appending it would grow the
    .part past the file (a 4 KB video's .part reached 27.5 MB)."""

    def wrong_range(request: Request, conn: Conn) -> None:
        headers = {"Content-Type": "video/mp4"}
        if "range" in request.headers:
            headers["Content-Range"] = f"bytes 0-{len(MP4) - 1}/{len(MP4)}"
            conn.send(response(206, MP4, headers))
        else:
            conn.send(response(200, MP4, headers))

    stem = tmp_path / "v"
    part = partfiles.part_path(stem, "task-1")
    part.write_bytes(MP4[:1000])
    with hostile(wrong_range) as server:
        result = fetch(server, stem, source="task-1")
        assert [r.headers.get("range") for r in server.requests] == ["bytes=1000-", None]
    assert result.path.read_bytes() == MP4 and not part.exists()


def test_a_host_that_always_sends_the_wrong_range_is_given_up(tmp_path: Path) -> None:
    def always_wrong(request: Request, conn: Conn) -> None:
        headers = {"Content-Type": "video/mp4", "Content-Range": f"bytes 7-99/{len(MP4)}"}
        conn.send(response(206, MP4[7:100], headers))

    with hostile(always_wrong) as server:
        with pytest.raises(dl.DownloadError) as caught:
            fetch(server, tmp_path / "v", source="t")
        assert len(server.requests) <= dl.DOWNLOAD_TRIES * dl.ALL_TRIES
    assert "gave up" in str(caught.value)
    assert not any(p.stat().st_size > len(MP4) for p in tmp_path.iterdir())


def test_bytes_past_the_declared_total_are_a_failure(tmp_path: Path) -> None:
    def overflowing(request: Request, conn: Conn) -> None:
        headers = {"Content-Type": "video/mp4", "Content-Range": "bytes 0-99/100"}
        conn.send(response(206, MP4[:5000], headers))

    with hostile(overflowing) as server:
        with pytest.raises(dl.DownloadError) as caught:
            fetch(server, tmp_path / "v", source="t")
        assert len(server.requests) == dl.DOWNLOAD_TRIES  # none of them made progress
    assert "more than its 100 bytes" in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_an_endless_body_stops_at_the_size_cap(tmp_path: Path) -> None:
    def endless(request: Request, conn: Conn) -> None:
        conn.send(response(200, MP4[:64], {"Content-Type": "video/mp4"}, length=False))
        while not conn.stopped and conn.send(bytes(65536)):
            pass

    limits = dl.Limits(max_bytes=1024 * 1024)
    with hostile(endless) as server:
        with pytest.raises(dl.DownloadError) as caught:
            fetch(server, tmp_path / "v", limits=limits)
        assert len(server.requests) == 1
    assert caught.value.permanent and "cap" in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_a_declared_length_over_the_cap_is_refused_before_reading(tmp_path: Path) -> None:
    def big(request: Request, conn: Conn) -> None:
        conn.send(response(200, MP4[:64], {"Content-Length": str(10 * 1024**3)}))
        conn.hold()

    with hostile(big) as server, pytest.raises(dl.DownloadError) as caught:
        fetch(server, tmp_path / "v")
    assert caught.value.permanent and "over the" in str(caught.value)


def test_a_gzip_encoded_file_is_refused(tmp_path: Path) -> None:
    def gzipped(request: Request, conn: Conn) -> None:
        headers = {"Content-Type": "video/mp4", "Content-Encoding": "gzip"}
        conn.send(response(200, gzip.compress(bytes(1_000_000)), headers))

    with hostile(gzipped) as server, pytest.raises(dl.DownloadError) as caught:
        fetch(server, tmp_path / "v")
    assert caught.value.permanent and "gzip" in str(caught.value)


def test_a_stalled_host_is_given_up(tmp_path: Path) -> None:
    def stall(request: Request, conn: Conn) -> None:
        conn.send(response(200, b"", {"Content-Length": str(len(MP4))})[:-2])
        conn.hold()

    limits = dl.Limits(stall=0.3)
    with hostile(stall) as server:
        with pytest.raises(dl.DownloadError) as caught:
            fetch(server, tmp_path / "v", limits=limits, tries=2)
        assert len(server.requests) == 2
    assert "stalled" in str(caught.value)


def test_a_dripped_download_ends_at_the_overall_deadline(tmp_path: Path) -> None:
    """A byte every 50 ms is progress for ever; the overall deadline ends it."""

    def drip(request: Request, conn: Conn) -> None:
        conn.drip(response(200, MP4, {"Content-Type": "video/mp4"}), every=0.05, step=8)

    limits = dl.Limits(deadline=1.5, stall=1.0)
    with hostile(drip) as server, pytest.raises(dl.DownloadError) as caught:
        fetch(server, tmp_path / "v", limits=limits)
    assert "not finished within 1.5 s" in str(caught.value)


def test_a_loopback_result_is_refused_when_the_api_is_not(tmp_path: Path) -> None:
    with hostile(serve(TEXT, "text/plain")) as server:
        with pytest.raises(dl.DownloadError) as caught:
            fetch(server, tmp_path / "v", "/admin", base_url="https://api.kie.ai")
        assert server.requests == []  # never contacted
    assert caught.value.permanent and "loopback" in str(caught.value)


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "never"),
        ("http://10.0.0.1/internal", "private"),
        ("file:///etc/passwd", "scheme"),
        ("/again", "redirects"),
    ],
)
def test_redirects_are_bounded_and_each_hop_checked(
    tmp_path: Path, location: str, why: str
) -> None:
    def redirect(request: Request, conn: Conn) -> None:
        conn.send(response(302, b"", {"Location": location}))

    with hostile(redirect) as server:
        with pytest.raises(dl.DownloadError) as caught:
            fetch(server, tmp_path / "v", "/start")
        hops = len(server.requests)
    assert caught.value.permanent and why in str(caught.value)
    assert hops == (6 if why == "redirects" else 1)


def test_a_redirect_to_a_good_host_is_followed(tmp_path: Path) -> None:
    with hostile(serve(PNG, "image/png")) as files:

        def redirect(request: Request, conn: Conn) -> None:
            conn.send(response(302, b"", {"Location": files.url + "/real.png"}))

        with hostile(redirect) as front:
            result = fetch(front, tmp_path / "i", "/short")
    assert result.path.read_bytes() == PNG and result.url == front.url + "/short"


def test_an_expired_url_is_refreshed_and_resumed(tmp_path: Path) -> None:
    def host(request: Request, conn: Conn) -> None:
        if request.path.startswith("/old"):
            conn.send(response(403, b"<Error>AccessDenied</Error>"))
        else:
            serve(MP4, "video/mp4")(request, conn)

    async def refresh(url: str) -> str:
        return url.replace("/old", "/new")

    stem = tmp_path / "v"
    partfiles.part_path(stem, "t").write_bytes(MP4[:500])
    with hostile(host) as server:
        result = fetch(server, stem, "/old/v", source="t", refresh=refresh)
        ranges = [r.headers.get("range") for r in server.requests]
    assert result.url.endswith("/new/v") and result.path.read_bytes() == MP4
    assert ranges == ["bytes=500-", "bytes=500-"]


def test_another_tasks_part_is_never_resumed_and_folders_are_listed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = partfiles.part_path(tmp_path / "a", "old-task")
    stale.write_bytes(PNG[:100])
    (tmp_path / "b.0123456789abcdef.part").write_bytes(b"other job")
    listings: list[object] = []
    real_scandir = os.scandir

    def counting(path: Any) -> Any:
        listings.append(path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    parts = dl.PartFiles(tmp_path)
    with hostile(serve(PNG, "image/png")) as server:
        for name in ("a", "a-2", "a-3"):
            fetch(server, tmp_path / name, source="new-task", parts=parts)
        assert [r.headers.get("range") for r in server.requests] == [None] * 3
    assert len(listings) == 1
    assert not stale.exists() and (tmp_path / "b.0123456789abcdef.part").exists()
    assert (tmp_path / "a.png").read_bytes() == PNG


def test_a_symlinked_part_is_replaced_not_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"precious")
    folder = tmp_path / "media"
    folder.mkdir()
    partfiles.part_path(folder / "v", "t").symlink_to(outside)
    with hostile(serve(MP4, "video/mp4")) as server:
        result = fetch(server, folder / "v", source="t")
    assert outside.read_bytes() == b"precious" and result.path.read_bytes() == MP4


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script/></svg>'


@pytest.mark.parametrize(
    ("data", "content_type", "path", "expected"),
    [
        (SVG, "image/svg+xml", "/a", None),  # served as SVG, any model
        (SVG, "application/octet-stream", "/a.svg", "image"),  # named .svg
        (SVG, None, "/blob", None),  # markup by its bytes, nothing else said
        (b"<html><script>x()</script>", "application/octet-stream", "/a", None),
        (b"\x00\x01opaque model output" * 4, "application/x-thing", "/blob", "image"),
    ],
)
def test_active_content_and_unknown_types_are_refused(
    tmp_path: Path, data: bytes, content_type: str | None, path: str, expected: str | None
) -> None:
    with hostile(serve(data, content_type)) as server, pytest.raises(dl.DownloadError) as caught:
        fetch(server, tmp_path / "r", path, expected_media=expected)
    assert caught.value.permanent and "not a valid result" in str(caught.value)
    assert os.listdir(tmp_path) == []
