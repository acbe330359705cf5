"""Earlier takes, over HTTP against the simulator: an edited job's new result does not
overwrite the old one; the old one is kept under media/takes/ and folded under the current
card in the gallery; reverting the edit brings it back without a create or a download."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.engine.journal import Journal
from pipeline.engine.takes import Takes
from pipeline.results.names import is_take, take_stem
from pipeline.state.store import StateStore, StoredResult
from tests.support.batch import Batch, MakeBatch

POSTER = """\
version: 1
jobs:
  - id: poster
    model: bytedance/seedream-v4-text-to-image
    prompt: {prompt}
    max_images: 2
  - id: photo
    model: nano-banana-2
    prompt: A photo of a paper boat
"""
FIRST, SECOND, THIRD = "Posters of a paper boat", "Posters of a red boat", "Posters of a kayak"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def takes_on_disk(batch: Batch, job_id: str) -> list[str]:
    folder = batch.out / "media" / "takes" / job_id
    names = (p.relative_to(batch.out).as_posix() for p in folder.iterdir())
    return sorted(names, key=lambda name: (len(name), name))  # x.png before x-2.png


def run(batch: Batch, prompt: str) -> dict[str, Any]:
    batch.write(POSTER.format(prompt=prompt))
    assert batch.run() == 0
    return batch.ledger()


def test_an_edit_keeps_the_earlier_take_whole(
    make_batch: MakeBatch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = make_batch()
    first = run(batch, FIRST)["poster"]
    old = {o["file"]: o["sha256"] for o in first["outputs"]}
    assert list(old) == ["media/poster.png", "media/poster-2.png"]
    photo = run(batch, FIRST)["photo"]["file"]
    photo_sha = digest(batch.out / photo)

    creates = batch.stats()["creates"]
    batch.write(POSTER.format(prompt=SECOND))
    assert batch.run("--dry-run") == 0
    plan = capsys.readouterr().out
    assert "submit: edited since its last run; the last result stays, as an earlier take" in plan
    second = run(batch, SECOND)["poster"]
    assert batch.stats()["creates"] == creates + 1  # the edited job only
    # The current take has the plain names, with the new images in them...
    assert [o["file"] for o in second["outputs"]] == list(old)
    new = {o["file"]: digest(batch.out / o["file"]) for o in second["outputs"]}
    assert new == {o["file"]: o["sha256"] for o in second["outputs"]}
    assert not set(new.values()) & set(old.values())
    # ...and the earlier one, both its images, moved under media/takes/, unchanged.
    kept = takes_on_disk(batch, "poster")
    assert len(kept) == 2 and all(is_take(f) for f in kept)
    assert re.fullmatch(r"media/takes/poster/\d{8}-\d{6}-[0-9a-f]{8}\.png", kept[0]), kept
    assert kept[1] == kept[0].removesuffix(".png") + "-2.png"
    assert [digest(batch.out / f) for f in kept] == list(old.values())
    assert digest(batch.out / photo) == photo_sha  # untouched

    # The gallery folds it under the current card, saying what differed.
    page = (batch.out / "index.html").read_text()
    card = page[page.index('id="job-poster"') : page.index('id="job-photo"')]
    assert '<details class="takes"><summary>1 earlier take</summary>' in card
    assert f'src="{kept[0]}"' in card
    assert f"<dt>prompt</dt><dd>{FIRST}</dd>" in card
    assert f"version {first['fingerprint'][:8]}" in card
    assert "earlier take" not in page[page.index('id="job-photo"') :]


def test_reverting_an_edit_brings_the_take_back(make_batch: MakeBatch) -> None:
    batch = make_batch()
    first = run(batch, FIRST)["poster"]
    second = run(batch, SECOND)["poster"]
    before = batch.stats()
    again = run(batch, FIRST)["poster"]
    after = batch.stats()
    # No create and no download: the first take was on disk, it only moves back.
    assert (after["creates"], after["file_downloads"]) == (
        before["creates"],
        before["file_downloads"],
    )
    assert again["task_id"] == first["task_id"]
    assert [(o["file"], o["sha256"]) for o in again["outputs"]] == [
        (o["file"], o["sha256"]) for o in first["outputs"]
    ]
    for output in again["outputs"]:
        assert digest(batch.out / output["file"]) == output["sha256"]
    # The second version is now the earlier take.
    kept = takes_on_disk(batch, "poster")
    assert [digest(batch.out / f) for f in kept] == [o["sha256"] for o in second["outputs"]]
    assert all(second["fingerprint"][:8] in f for f in kept)
    page = (batch.out / "index.html").read_text()
    assert f"<dt>prompt</dt><dd>{SECOND}</dd>" in page
    assert page.count("earlier take</summary>") == 1


def test_takes_pile_up_newest_first(make_batch: MakeBatch) -> None:
    batch = make_batch()
    versions = [run(batch, p)["poster"] for p in (FIRST, SECOND, THIRD)]
    assert len(takes_on_disk(batch, "poster")) == 4  # two takes of two images each
    page = (batch.out / "index.html").read_text()
    assert "<summary>2 earlier takes</summary>" in page
    assert page.index(f"<dd>{SECOND}</dd>") < page.index(f"<dd>{FIRST}</dd>")
    current = [o["sha256"] for o in versions[-1]["outputs"]]
    assert [digest(batch.out / f"media/poster{s}.png") for s in ("", "-2")] == current
    # Takes are the user's to delete: a deleted one leaves the gallery.
    for name in takes_on_disk(batch, "poster"):
        if versions[0]["fingerprint"][:8] in name:
            (batch.out / name).unlink()
    assert batch.run("--quiet") == 0
    page = (batch.out / "index.html").read_text()
    assert "<summary>1 earlier take</summary>" in page and f"<dd>{FIRST}</dd>" not in page


def test_a_move_cut_off_before_it_was_recorded_is_finished(tmp_path: Path) -> None:
    """Killed between moving a file and recording the move: the next run finds the file at
    its take name and records it, instead of losing the take."""
    out = tmp_path / "out"
    (out / "media").mkdir(parents=True)
    data = b"\x89PNG old"
    (out / "media/hero.png").write_bytes(data)
    with StateStore.open(out / "state.sqlite") as store:
        old = store.record_intent("hero", "a1b2c3d4e5", 1, "m")
        store.record_success(old.id, ["u1"], None)
        old = store.record_result_file(
            old.id, 1, StoredResult(1, "u1", "media/hero.png", "x", len(data))
        )
        new = store.record_intent("hero", "f0f0f0f0f0", 1, "m")
        target = take_stem("hero", old.fingerprint, old.finished_at, 1) + ".png"
        (out / target).parent.mkdir(parents=True)
        (out / "media/hero.png").rename(out / target)  # the move made it; the record did not
        Takes(Journal(store, lambda event: None), out).make_way("media/hero", new)
        assert store.get(old.id).results[0].file == target
        assert (out / target).read_bytes() == data
        # A take that is neither here nor there is let go, as before takes were kept.
        other = store.record_intent("hero", "9999999999", 1, "m")
        store.record_success(other.id, ["u2"], None)
        store.record_result_file(other.id, 1, StoredResult(1, "u2", "media/hero.jpg", "y", 3))
        Takes(Journal(store, lambda event: None), out).make_way("media/hero", new)
        assert store.get(other.id).results[0].file is None


def test_a_move_the_folder_refuses_stops_the_run_and_loses_nothing(
    make_batch: MakeBatch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = make_batch()
    first = run(batch, FIRST)["poster"]
    batch.write(POSTER.format(prompt=SECOND))
    blocker = batch.out / "media" / "takes"
    blocker.write_text("a file where the takes folder goes\n")
    assert batch.run() == 3
    assert "cannot write media/poster.*" in capsys.readouterr().err
    # The earlier take is still whole at its name, and the new task is kept for the rerun.
    for output in first["outputs"]:
        assert digest(batch.out / output["file"]) == output["sha256"]
    blocker.unlink()
    creates = batch.stats()["creates"]
    second = run(batch, SECOND)["poster"]
    assert batch.stats()["creates"] == creates  # no new create: the task was kept
    assert [digest(batch.out / f) for f in takes_on_disk(batch, "poster")] == [
        o["sha256"] for o in first["outputs"]
    ]
    assert second["status"] == "succeeded"
