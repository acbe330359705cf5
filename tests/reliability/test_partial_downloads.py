"""Interrupted downloads: what arrived is kept and resumed, and only ever for the same task."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pipeline.results import download
from pipeline.simulator import FaultRates
from tests.support.batch import MakeBatch
from tests.support.harness import (
    audit,
    video,
)


def _host_goes_away_after_one_transfer(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """The first transfer runs (and is cut short by the simulator); every later one fails
    without progress, so the download gives up and leaves its .part behind."""
    real = download.fetch_once
    calls = 0

    async def first_only(*args: Any, **kwargs: Any) -> download.Downloaded:
        nonlocal calls
        calls += 1
        if calls == 1:
            return await real(*args, **kwargs)
        raise download.DownloadError("the host went away")

    tries = download.DOWNLOAD_TRIES
    monkeypatch.setattr(download, "fetch_once", first_only)
    monkeypatch.setattr(download, "DOWNLOAD_TRIES", 1)

    def host_is_back() -> None:
        monkeypatch.setattr(download, "fetch_once", real)
        monkeypatch.setattr(download, "DOWNLOAD_TRIES", tries)

    return host_is_back


def _job(ratio: str) -> str:
    return (
        "version: 1\ndefaults: {model: sora-2-text-to-video}\n"
        f"jobs:\n  - id: boat\n    prompt: A paper boat\n    aspect_ratio: {ratio}\n"
    )


def test_an_interrupted_download_keeps_what_arrived(
    make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = make_batch(faults=FaultRates(truncated_download=1.0))
    batch.write(_job("landscape"))
    host_is_back = _host_goes_away_after_one_transfer(monkeypatch)
    assert batch.run() == 1
    host_is_back()
    row = batch.ledger()["boat"]
    assert row["status"] == "failed" and row["error_code"] == "download"
    parts = list((batch.out / "media").iterdir())
    assert len(parts) == 1 and parts[0].name.endswith(".part")
    data, full = parts[0].read_bytes(), video("landscape")
    # What arrived (half the file) is kept, in order.
    assert 0 < len(data) < len(full) and full.startswith(data)
    assert len(data) == len(full) // 2
    sent = batch.sim.stats()["file_download_bytes"]
    batch.sim.control(faults={"truncated_download": 0.0})
    assert batch.run() == 0
    # The rerun fetched only the remainder.
    assert batch.sim.stats()["file_download_bytes"] - sent == len(full) - len(data)
    assert (batch.out / "media" / "boat.mp4").read_bytes() == full
    audit(batch.sim, batch.out, batch.manifest)


def test_an_edited_job_never_resumes_the_old_tasks_partial_download(
    make_batch: MakeBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """portrait.mp4 is shorter than landscape.mp4: resuming a portrait .part with a Range
    request for the landscape task gives a file of the right length but spliced content."""
    batch = make_batch(faults=FaultRates(truncated_download=1.0))
    batch.write(_job("portrait"))
    host_is_back = _host_goes_away_after_one_transfer(monkeypatch)
    assert batch.run() == 1
    host_is_back()
    batch.sim.control(faults={"truncated_download": 0.0})
    batch.write(_job("landscape"))  # a new fingerprint: a new task, a new video
    assert batch.run() == 0
    assert (batch.out / "media" / "boat.mp4").read_bytes() == video("landscape")
    assert [p.name for p in (batch.out / "media").iterdir()] == ["boat.mp4"]
    audit(batch.sim, batch.out, batch.manifest)


def test_reverting_an_edit_never_keeps_the_other_versions_video(make_batch: MakeBatch) -> None:
    """v1 downloaded, v2 downloaded where v1 was, back to v1: v1 is done at Kie and its
    video was kept as an earlier take, so it comes back from there (no download), and
    `media/boat.mp4` never holds the other version's video."""
    batch = make_batch()
    downloads = []
    for ratio in ("landscape", "portrait", "landscape"):
        batch.write(_job(ratio))
        assert batch.run() == 0
        assert (batch.out / "media" / "boat.mp4").read_bytes() == video(ratio), ratio
        downloads.append(batch.sim.stats()["file_downloads"])
    assert batch.sim.stats()["creates"] == 2  # v1 was not paid twice
    assert downloads[2] == downloads[1]  # nor downloaded twice
    (take,) = (batch.out / "media" / "takes" / "boat").iterdir()
    assert take.read_bytes() == video("portrait")
    audit(batch.sim, batch.out, batch.manifest)
