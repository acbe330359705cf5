"""Answers that look valid but are wrong never become a job's result (issue 26): a poll
answered with another task's record (a caching proxy), an upstream result of the wrong type
or on a host the downloader refuses."""

from __future__ import annotations

import pytest

from pipeline.kie import client as kie
from tests.hostile.server import json_answer
from tests.hostile.test_api_answers import against
from tests.support.batch import MakeBatch
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
