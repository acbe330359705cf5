"""recordInfo's answers beyond `code 200` + `resultUrls` (issue 23), end to end over loopback:
body codes 501 and 408 end a task as failed, an audio model's `data[].audio_url` and a
result without files are successes, and a task unknown right after its create is waited
out by time, not resubmitted."""

from __future__ import annotations

import httpx

from pipeline.engine.timing import UNKNOWN_GRACE
from tests.support.batch import MakeBatch

IMAGE_JOBS = """\
version: 1
settings:
  max_attempts: {attempts}
jobs:
  - id: still
    model: nano-banana-2
    prompt: A lighthouse at dawn
"""


def test_a_501_answer_fails_the_task_with_kies_message_and_attempts_follow_max_attempts(
    make_batch: MakeBatch,
) -> None:
    batch = make_batch(faults={"failed_answer": 1.0})
    batch.write(IMAGE_JOBS.format(attempts=2))
    assert batch.run() == 1
    (row,) = batch.rows()
    assert row["status"] == "failed" and row["error_code"] == "501"
    assert "generation failed" in row["error_message"].lower()
    assert row["attempts"] == 2 and batch.stats()["creates"] == 2  # max_attempts, no more


def test_a_408_answer_fails_the_task_long_before_max_wait(make_batch: MakeBatch) -> None:
    batch = make_batch(faults={"expired_answer": 1.0})
    # max_wait is an hour: the task ends at Kie's 408 (10 minutes), not by timing out.
    batch.write(IMAGE_JOBS.format(attempts=1).replace("settings:", "settings:\n  max_wait: 3600"))
    assert batch.run() == 1
    (row,) = batch.rows()
    assert row["status"] == "failed" and row["error_code"] == "408"
    assert "no result for over 10 minutes" in row["error_message"]
    assert batch.stats()["creates"] == 1


def test_an_audio_models_data_audio_url_is_a_result_that_is_downloaded(
    make_batch: MakeBatch,
) -> None:
    batch = make_batch(audio_data=True)
    batch.write(
        "version: 1\njobs:\n  - id: voice\n    model: elevenlabs/text-to-speech-turbo-2-5\n"
        "    text: Welcome aboard\n"
    )
    assert batch.run() == 0
    (task,) = batch.sim.tasks()
    (row,) = batch.rows()
    assert row["status"] == "succeeded" and row["media_type"] == "audio/mpeg"
    assert row["result_url"].endswith(".mp3") and (batch.folder / row["file"]).is_file()
    assert task["results"] == 1 and batch.stats()["creates"] == 1
    answer = httpx.get(
        batch.sim.base_url + "/api/v1/jobs/recordInfo",
        params={"taskId": task["taskId"]},
        headers={"Authorization": f"Bearer {batch.key}"},
    ).json()["data"]["response"]
    assert "resultUrls" not in answer and answer["data"][0]["audio_url"] == row["result_url"]


def test_a_task_unknown_for_a_while_after_its_create_is_waited_out_and_created_once(
    make_batch: MakeBatch,
) -> None:
    # Unknown for 60 s (scaled) after the create: less than the 90 s the runner waits.
    assert UNKNOWN_GRACE > 60
    batch = make_batch(unknown_after_create=60.0, latency_min=5.0, latency_median=10.0)
    batch.write(IMAGE_JOBS.format(attempts=3))
    assert batch.run() == 0
    (row,) = batch.rows()
    assert row["status"] == "succeeded" and row["attempts"] == 1
    assert batch.stats()["creates"] == 1
    polls = [r for r in batch.sim.requests() if r["path"].endswith("/recordInfo")]
    assert any(r["code"] == 404 for r in polls) and polls[-1]["code"] == 200


def test_a_task_that_stays_unknown_is_given_up_once_the_grace_has_passed(
    make_batch: MakeBatch,
) -> None:
    batch = make_batch(unknown_after_create=10_000.0)
    batch.write(IMAGE_JOBS.format(attempts=1))
    assert batch.run() == 1
    (row,) = batch.rows()
    assert row["status"] == "failed" and row["error_code"] == "404"
    requests = batch.sim.requests()
    create = next(r["time"] for r in requests if r["path"].endswith("/createTask"))
    assert requests[-1]["time"] - create >= UNKNOWN_GRACE * batch.scale  # by time since the create
    assert batch.stats()["creates"] == 1
