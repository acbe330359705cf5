"""Result videos: the bundled MP4s, Range requests, HEAD, and URL expiry with refresh."""

from __future__ import annotations

import json
import struct
from importlib import resources

import httpx
import pytest

from pipeline.simulator import Simulator
from tests.support.sim import DOWNLOAD_URL, MakeSim, client, create, wait_end, wait_for


def media(name: str) -> bytes:
    return (resources.files("pipeline.simulator") / "media" / name).read_bytes()


def top_level_boxes(data: bytes) -> list[str]:
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        boxes.append(kind.decode("ascii"))
        offset += size
    return boxes


def track_size(data: bytes) -> tuple[int, int]:
    """Width and height from the video track header (tkhd, 16.16 fixed point at its end)."""
    tkhd = data.index(b"tkhd")
    width, height = struct.unpack(">II", data[tkhd + 4 + 76 : tkhd + 4 + 84])
    return width >> 16, height >> 16


@pytest.mark.parametrize(
    ("name", "size"), [("landscape.mp4", (320, 180)), ("portrait.mp4", (180, 320))]
)
def test_bundled_videos_are_small_faststart_h264(name: str, size: tuple[int, int]) -> None:
    data = media(name)
    boxes = top_level_boxes(data)
    assert boxes[0] == "ftyp" and boxes.index("moov") < boxes.index("mdat")  # faststart
    assert b"avc1" in data and b"avcC" in data  # H.264
    assert track_size(data) == size
    assert 5_000 < len(data) < 200_000


def result_url(http: httpx.Client, **extra: str) -> str:
    data = wait_end(http, create(http, **extra))
    assert data["state"] == "success"
    url = json.loads(data["resultJson"])["resultUrls"][0]
    assert isinstance(url, str)
    return url


@pytest.mark.parametrize("aspect_ratio", ["landscape", "portrait"])
def test_the_video_matches_the_aspect_ratio(sim: Simulator, aspect_ratio: str) -> None:
    with client(sim) as http:
        url = result_url(http, aspect_ratio=aspect_ratio)
        answer = httpx.get(url)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "video/mp4"
    assert answer.headers["accept-ranges"] == "bytes"
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert answer.content == media(f"{aspect_ratio}.mp4")
    stats = sim.stats()
    assert stats["file_downloads"] == 1 and stats["file_download_bytes"] == len(answer.content)


def test_the_watermarked_url_serves_a_video_too(sim: Simulator) -> None:
    with client(sim) as http:
        data = wait_end(http, create(http))
    url = json.loads(data["resultJson"])["resultWaterMarkUrls"][0]
    assert httpx.get(url).content == media("landscape.mp4")


def test_range_requests(sim: Simulator) -> None:
    full = media("landscape.mp4")
    size = len(full)
    with client(sim) as http:
        url = result_url(http)
    cases = {
        "bytes=100-": (100, size - 1),
        "bytes=0-9": (0, 9),
        f"bytes={size - 5}-{size + 100}": (size - 5, size - 1),
        "bytes=-20": (size - 20, size - 1),
    }
    for header, (first, last) in cases.items():
        answer = httpx.get(url, headers={"Range": header})
        assert answer.status_code == 206, header
        assert answer.headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert answer.content == full[first : last + 1]
    answer = httpx.get(url, headers={"Range": f"bytes={size}-"})
    assert answer.status_code == 416
    assert answer.headers["content-range"] == f"bytes */{size}"
    assert httpx.get(url, headers={"Range": "bytes=0-1,5-6"}).content == full  # ignored


def test_head_gives_the_length_without_a_body(sim: Simulator) -> None:
    with client(sim) as http:
        url = result_url(http)
    answer = httpx.head(url)
    assert answer.status_code == 200 and answer.content == b""
    assert int(answer.headers["content-length"]) == len(media("landscape.mp4"))
    assert sim.stats()["file_downloads"] == 0  # a HEAD is not a download


def test_unknown_file_is_404(sim: Simulator) -> None:
    answer = httpx.get(f"{sim.base_url}/files/{'a' * 32}/{'b' * 32}.mp4")
    assert answer.status_code == 404 and b"NoSuchKey" in answer.content


def test_result_urls_expire_and_download_url_refreshes_them(make_sim: MakeSim) -> None:
    # 50 s and 100 s at time scale 0.01: 0.5 s and 1 s.
    sim = make_sim(url_ttl=50.0, download_url_ttl=100.0)
    with client(sim) as http:
        url = result_url(http)

        def expired(link: str) -> bool | None:
            return True if httpx.get(link).status_code == 403 else None

        wait_for(lambda: expired(url), timeout=10)
        answer = httpx.get(url)
        assert answer.status_code == 403 and b"AccessDenied" in answer.content
        fresh = http.post(DOWNLOAD_URL, json={"url": url}).json()["data"]
        assert httpx.get(fresh).content == media("landscape.mp4")
        wait_for(lambda: expired(fresh), timeout=10)
        again = http.post(DOWNLOAD_URL, json={"url": fresh}).json()["data"]
        assert httpx.get(again).status_code == 200
