"""Results of every kind, several per task, over HTTP against the simulator: where they go,
what the ledger says, and the faults of a download of four (a cut transfer, an expired link,
a full disk)."""

from __future__ import annotations

import errno
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.outputs.ledger import FIELDS
from pipeline.results.download import part_path
from pipeline.state.store import StateStore
from tests.support.batch import Batch, MakeBatch

MIXED = """\
version: 1
jobs:
  - id: poster
    model: bytedance/seedream-v4-text-to-image
    prompt: Four posters of a paper boat
    max_images: 4
  - id: photo
    model: nano-banana-2
    prompt: A photo of a paper boat
    output_format: jpg
  - id: drawing
    model: nano-banana-pro
    prompt: A drawing of a paper boat
    output_format: png
  - id: clip
    model: grok-imagine/text-to-video
    prompt: A paper boat sails across a pond
"""
FOUR = """\
version: 1
jobs:
  - id: poster
    model: bytedance/seedream-v4-text-to-image
    prompt: Four posters of a paper boat
    max_images: 4
"""
MAGIC = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
    "video/mp4": b"ftyp",
}


def served(url: str) -> bytes:
    answer = httpx.get(url)
    answer.raise_for_status()
    return answer.content


def check_on_disk(batch: Batch, output: dict[str, Any]) -> bytes:
    data: bytes = (batch.out / output["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == output["sha256"]
    assert len(data) == output["bytes"]
    return data


def attempt_of(batch: Batch, job_id: str) -> Any:
    with StateStore.open(batch.out / "state.sqlite", readonly=True) as store:
        return store.attempts_by_job()[job_id][-1]


def test_a_batch_of_jpeg_png_mp4_and_four_images(make_batch: MakeBatch) -> None:
    batch = make_batch()
    batch.write(MIXED)
    assert batch.run() == 0
    rows = batch.ledger()
    poster = rows["poster"]
    assert poster["status"] == "succeeded" and len(poster["outputs"]) == 4
    assert [o["file"] for o in poster["outputs"]] == [
        "media/poster.png",
        "media/poster-2.png",
        "media/poster-3.png",
        "media/poster-4.png",
    ]
    hashes = {check_on_disk(batch, o) and o["sha256"] for o in poster["outputs"]}
    assert len(hashes) == 4  # four different images
    assert (poster["file"], poster["sha256"]) == (
        "media/poster.png",
        poster["outputs"][0]["sha256"],
    )
    assert poster["credits"] == 20  # Kie's creditsConsumed: 5 per image
    expected = {"photo": "image/jpeg", "drawing": "image/png", "clip": "video/mp4"}
    for job_id, media_type in expected.items():
        (output,) = rows[job_id]["outputs"]
        assert rows[job_id]["media_type"] == output["media_type"] == media_type
        data = check_on_disk(batch, output)
        assert MAGIC[media_type] in data[:12]
    assert rows["photo"]["file"] == "media/photo.jpg"
    assert rows["clip"]["file"] == "media/clip.mp4"
    # The CSV has the same columns, with the count of results.
    header, *lines = (batch.out / "ledger.csv").read_text().splitlines()
    assert header.split(",") == list(FIELDS)
    assert lines[0].split(",")[FIELDS.index("outputs")] == "4"
    assert not (batch.out / "videos").exists()
    # status: the number of results of each job.
    assert status_json(batch)["poster"]["outputs"] == 4
    # A rerun has nothing to do.
    before = batch.stats()
    assert batch.run() == 0
    after = batch.stats()
    assert (after["creates"], after["file_downloads"]) == (
        before["creates"],
        before["file_downloads"],
    )


def status_json(batch: Batch) -> dict[str, Any]:
    import io
    from contextlib import redirect_stdout

    from pipeline.cli.main import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["status", str(batch.manifest), "--out", str(batch.out), "--json"]) == 0
    return {job["id"]: job for job in json.loads(out.getvalue())["jobs"]}


def test_a_truncated_second_image_is_resumed(make_batch: MakeBatch) -> None:
    batch = make_batch()
    batch.write(FOUR)
    assert batch.run("--no-download") == 0
    attempt = attempt_of(batch, "poster")
    second = served(attempt.results[1].url)
    # An earlier run was cut off half-way through result 2.
    part = part_path(batch.out / "media" / "poster-2", attempt.task_id)
    part.parent.mkdir(parents=True)
    part.write_bytes(second[: len(second) // 2])
    sent = batch.stats()["file_download_bytes"]
    assert batch.run() == 0
    row = batch.ledger()["poster"]
    assert check_on_disk(batch, row["outputs"][1]) == second
    sizes = sum(o["bytes"] for o in row["outputs"])
    # Only the rest of result 2 was fetched again.
    assert batch.stats()["file_download_bytes"] - sent == sizes - len(second) // 2
    assert not list((batch.out / "media").glob("*.part"))


def test_an_expired_third_url_is_refreshed(make_batch: MakeBatch) -> None:
    # Result URLs expire as soon as the task ends; links from download-url live 20 minutes.
    batch = make_batch(url_ttl=0.001)
    batch.write(FOUR)
    assert batch.run("--no-download") == 0
    attempt = attempt_of(batch, "poster")
    expired = attempt.results[2].url
    with (
        httpx.Client(
            base_url=batch.sim.base_url, headers={"Authorization": f"Bearer {batch.key}"}
        ) as http,
        StateStore.open(batch.out / "state.sqlite") as store,
    ):
        assert http.get(expired).status_code == 403
        for result in attempt.results:  # every link but the third one is fresh
            if result.index != 3:
                fresh = http.post("/api/v1/common/download-url", json={"url": result.url})
                store.set_result_url(attempt.id, result.index, fresh.json()["data"])
    calls = batch.stats()["download_url_calls"]
    assert batch.run() == 0
    assert batch.stats()["download_url_calls"] == calls + 1  # for the third only
    row = batch.ledger()["poster"]
    assert row["status"] == "succeeded" and all(check_on_disk(batch, o) for o in row["outputs"])
    assert row["outputs"][2]["url"] != expired  # the refreshed link is recorded


class _DiskFull:
    """A .part file that takes `budget` bytes, then fails as a full disk does."""

    def __init__(self, handle: Any, budget: int) -> None:
        self.handle, self.budget = handle, budget

    def write(self, data: bytes) -> int:
        if len(data) > self.budget:
            self.handle.write(data[: self.budget])
            self.budget = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.budget -= len(data)
        return int(self.handle.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    def __enter__(self) -> _DiskFull:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


@contextmanager
def disk_full_at(monkeypatch: pytest.MonkeyPatch, stem: str) -> Iterator[None]:
    real_open = Path.open

    def open_(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(self, mode, *args, **kwargs)
        if self.name.startswith(stem + ".") and self.name.endswith(".part"):
            return _DiskFull(handle, 100)
        return handle

    with monkeypatch.context() as patch:
        patch.setattr(Path, "open", open_)
        yield


def test_a_disk_full_at_the_third_of_four_images_stops_and_resumes(
    make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = make_batch()
    batch.write(FOUR)
    with disk_full_at(monkeypatch, "poster-3"):
        assert batch.run() == 3
    assert "No space left on device" in capsys.readouterr().err
    media = batch.out / "media"
    finals = sorted(p.name for p in media.iterdir() if not p.name.endswith(".part"))
    assert finals == ["poster-2.png", "poster.png"]  # nothing partial as a final file
    assert [p.name.split(".")[0] for p in media.glob("*.part")] == ["poster-3"]
    row = batch.ledger()["poster"]
    assert row["status"] == "failed" and row["error_code"] == "download"
    assert [bool(o["file"]) for o in row["outputs"]] == [True, True, False, False]
    creates = batch.stats()["creates"]
    assert batch.run() == 0
    assert batch.stats()["creates"] == creates == 1  # finished without a new create
    row = batch.ledger()["poster"]
    assert row["status"] == "succeeded" and row["error_code"] is None
    assert len({check_on_disk(batch, o) for o in row["outputs"]}) == 4
    assert not list(media.glob("*.part"))
