"""The state store alone: each writer commits and returns the row as it now is."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import StateError
from pipeline.state import StateStore


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
        done = store.record_outcome(intent.id, "succeeded", video_url="https://f/1.mp4")
        assert (done.phase, done.video_url) == ("succeeded", "https://f/1.mp4")
        assert done.completed_at is not None
        fresh = store.set_video_url(intent.id, "https://f/2.mp4")
        assert fresh.video_url == "https://f/2.mp4"
        kept = store.record_download(intent.id, "videos/hero.mp4", "ab" * 32, 10)
        assert (kept.file, kept.bytes) == ("videos/hero.mp4", 10)
    # What the writers returned is what a new reader sees.
    with StateStore.open(path, readonly=True) as store:
        assert store.attempts_by_job()["hero"] == [kept]


def test_discarded_intents_leave_no_row(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state.sqlite") as store:
        intent = store.record_intent("hero", "fp1", 1, "m")
        store.discard_intent(intent.id)
        assert store.attempts_by_job() == {}


def test_release_file_returns_the_rows_that_let_go(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state.sqlite") as store:
        old = store.record_intent("hero", "fp1", 1, "m")
        store.record_download(old.id, "videos/hero.mp4", "aa" * 32, 5)
        new = store.record_intent("hero", "fp2", 1, "m")
        released = store.release_file("videos/hero.mp4", new.id)
        assert [r.id for r in released] == [old.id] and released[0].file is None


def test_another_endpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    StateStore.open(path, "http://one").close()
    with pytest.raises(StateError, match="belongs to endpoint http://one"):
        StateStore.open(path, "http://two")
