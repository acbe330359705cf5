"""The state store alone: each writer commits and returns the row as it now is."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import StateError
from pipeline.state.store import StateStore, StoredResult


def test_writers_return_the_committed_row(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with StateStore.open(path, "http://kie") as store:
        intent = store.record_intent("hero", "fp1", 1, "kling-2.6/text-to-video")
        assert (intent.phase, intent.creates, intent.task_id) == ("intent", 1, None)
        again = store.record_create_try(intent.id, ambiguous=True)
        assert (again.creates, again.possible_duplicate) == (2, True)
        task = store.record_task(intent.id, "task-1")
        assert (task.phase, task.task_id) == ("submitted", "task-1")
        assert task.submitted_at is not None
        done, changed = store.record_success(intent.id, ["https://f/1.png", "https://f/2.png"], 8)
        assert (done.phase, done.credits, changed) == ("succeeded", 8, False)
        assert [(r.index, r.url, r.file) for r in done.results] == [
            (1, "https://f/1.png", None),
            (2, "https://f/2.png", None),
        ]
        assert done.completed_at is not None and not done.downloaded
        fresh = store.set_result_url(intent.id, 2, "https://f/2b.png")
        assert fresh.results[1].url == "https://f/2b.png"
        store.record_download_error(intent.id, "disk full")
        one = store.record_result_file(
            intent.id, 1, StoredResult(1, None, "media/hero.png", "ab" * 32, 10, "image/png")
        )
        assert one.results[0].url == "https://f/1.png" and one.error_code == "download"
        kept = store.record_result_file(
            intent.id, 2, StoredResult(2, None, "media/hero-2.png", "cd" * 32, 12, "image/png")
        )
        assert kept.downloaded and kept.error_code is None  # the last file clears the error
        again, changed = store.record_success(intent.id, ["https://f/other.png"], None)
        assert changed and again.results == kept.results and again.credits == 8
    # What the writers returned is what a new reader sees.
    with StateStore.open(path, readonly=True) as store:
        assert store.attempts_by_job()["hero"] == [again] and again == kept


def test_discarded_intents_leave_no_row(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state.sqlite") as store:
        intent = store.record_intent("hero", "fp1", 1, "m")
        store.discard_intent(intent.id)
        assert store.attempts_by_job() == {}


def test_holders_of_a_name_and_moving_their_files(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state.sqlite") as store:
        old = store.record_intent("hero", "fp1", 1, "m", '{"prompt": "a lamp"}')
        store.record_success(old.id, ["u1", "u2"], None)
        store.record_result_file(old.id, 1, StoredResult(1, None, "media/hero.png", "a", 5))
        other = store.record_intent("hero.b", "fp9", 1, "m")
        store.record_success(other.id, ["u3"], None)
        store.record_result_file(other.id, 1, StoredResult(1, None, "media/hero.b.png", "b", 5))
        new = store.record_intent("hero", "fp2", 1, "m")
        assert [a.id for a in store.holders("media/hero", new.id)] == [old.id]  # not hero.b's
        assert store.holders("media/hero", old.id) == []  # an attempt never holds against itself
        moved = store.move_result_file(old.id, 1, "media/takes/hero/x.png")
        assert moved.results[0] == StoredResult(1, "u1", "media/takes/hero/x.png", "a", 5)
        assert moved.shown_inputs == {"prompt": "a lamp"}
        gone = store.move_result_file(old.id, 1, None)
        assert gone.results[0] == StoredResult(1, "u1") and not gone.downloaded


def test_another_endpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    StateStore.open(path, "http://one").close()
    with pytest.raises(StateError, match="belongs to endpoint http://one"):
        StateStore.open(path, "http://two")


def test_reported_credits_keep_their_fraction(tmp_path: Path) -> None:
    """attempts.credits is REAL: Kie's fractional creditsConsumed needs no migration."""
    path = tmp_path / "state.sqlite"
    with StateStore.open(path, "http://kie") as store:
        intent = store.record_intent("hero", "fp1", 1, "bytedance/seedance-2-fast")
        store.record_task(intent.id, "task-1")
        done, _ = store.record_success(intent.id, ["https://f/1.mp4"], 77.5)
        assert done.credits == 77.5
    with StateStore.open(path, readonly=True) as store:
        assert store.attempts_by_job()["hero"][0].credits == 77.5
