"""Each injected fault at rate 1.0, task-level failures, and seeded determinism."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from pipeline.simulator import SimConfig, Simulator, running_simulator
from tests.support.sim import (
    CREATE,
    CREDIT,
    QUERY,
    MakeSim,
    body,
    client,
    create,
    record,
    wait_end,
)


def test_reset_drops_the_connection_before_any_effect(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"reset": 1.0})
    with client(sim) as http, pytest.raises(httpx.TransportError):
        http.post(CREATE, json=body())
    assert sim.tasks() == []
    assert sim.stats()["faults"] == {"reset": 1}
    assert sim.requests()[0]["fault"] == "reset" and sim.requests()[0]["code"] is None


def test_lost_answer_creates_and_charges_the_task_but_answers_nothing(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"lost_answer": 1.0}, credits=100)
    with client(sim) as http:
        with pytest.raises(httpx.TransportError):
            http.post(CREATE, json=body())
        assert http.get(CREDIT).json()["data"] == 70  # charged; queries are not affected
    (task,) = sim.tasks()
    assert task["lost_answer"] is True
    stats = sim.stats()
    assert stats["lost_answers"] == 1 and stats["lost_answer_task_ids"] == [task["taskId"]]
    assert stats["faults"] == {"lost_answer": 1}
    assert list(stats["creates_by_fingerprint"].values()) == [1]


def test_malformed_json_on_create_is_a_lost_answer_too(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"malformed_json": 1.0})
    with client(sim) as http:
        answer = http.post(CREATE, json=body())
        assert answer.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(answer.text)
        query = http.get(QUERY, params={"taskId": "x"})
        with pytest.raises(json.JSONDecodeError):
            json.loads(query.text)
    (task,) = sim.tasks()
    assert task["lost_answer"] is True
    assert sim.stats()["lost_answer_task_ids"] == [task["taskId"]]
    assert sim.stats()["faults"] == {"malformed_json": 2}


def test_slow_answers_arrive_late_after_the_effect(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"slow": 1.0}, slow_delay=50.0)  # 0.5 s at this time scale
    with client(sim, timeout=0.05) as impatient, pytest.raises(httpx.TimeoutException):
        impatient.post(CREATE, json=body())
    assert len(sim.tasks()) == 1  # the timed-out create did happen
    with client(sim) as patient:
        started = time.monotonic()
        envelope = patient.get(CREDIT).json()
        assert time.monotonic() - started >= 0.5
    assert envelope["code"] == 200
    assert sim.stats()["faults"] == {"slow": 2}


def test_truncated_download_sends_less_than_its_content_length(sim: Simulator) -> None:
    with client(sim) as http:
        data = wait_end(http, create(http))
    url = json.loads(data["resultJson"])["resultUrls"][0]
    sim.control(faults={"truncated_download": 1.0})
    received = bytearray()
    with httpx.stream("GET", url) as answer:
        promised = int(answer.headers["content-length"])
        with pytest.raises(httpx.TransportError):
            for chunk in answer.iter_bytes():
                received += chunk
    assert 0 < len(received) < promised
    assert sim.stats()["faults"] == {"truncated_download": 1}


def test_generation_failure_ends_fail_501_and_refunds(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"generation_failure": 1.0}, credits=100)
    with client(sim) as http:
        data = wait_end(http, create(http))
        assert data["state"] == "fail"
        assert (data["failCode"], data["failMsg"]) == ("501", "Generation failed")
        assert data["resultJson"] == "" and data["completeTime"] is not None
        assert http.get(CREDIT).json()["data"] == 100


def test_stuck_tasks_never_finish(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"stuck": 1.0}, latency_min=1.0, latency_median=1.0, latency_max=1.0)
    with client(sim) as http:
        task_id = create(http)
        time.sleep(0.3)  # thirty times its planned latency
        data = record(http, task_id)
    assert data["state"] == "generating" and data["completeTime"] is None
    (task,) = sim.tasks()
    assert task["finished_at"] is None and task["state"] == "generating"


def test_moderated_prompts_are_accepted_then_fail_422(make_sim: MakeSim) -> None:
    sim = make_sim(moderation_words=("Forbidden",), credits=100)
    with client(sim) as http:
        task_id = create(http, "a FORBIDDEN dance")
        data = wait_end(http, task_id)
        assert data["state"] == "fail" and data["failCode"] == "422"
        assert data["failMsg"] == "Invalid prompt: prompt contains prohibited content"
        assert wait_end(http, create(http, "a permitted dance"))["state"] == "success"
        assert http.get(CREDIT).json()["data"] == 70  # the failed task was refunded


def _drive(config: SimConfig) -> dict[str, Any]:
    """A fixed sequence of requests; what a client saw, and what the simulator decided."""
    seen: list[object] = []
    with running_simulator(config) as sim, client(sim) as http:
        for i in range(12):
            try:
                answer = http.post(CREATE, json=body(f"scene {i}"))
                seen.append((answer.status_code, answer.text[:60]))
            except httpx.TransportError as exc:
                seen.append(type(exc).__name__)
        # Task ids: the first half comes from the seed, the second is unique per process.
        tasks = [(t["taskId"][:16], t["duration"], t["failCode"]) for t in sim.tasks()]
        faults = [r["fault"] for r in sim.requests()]
    return {"seen": seen, "tasks": tasks, "faults": faults}


def test_the_same_seed_replays_the_same_run() -> None:
    rates = {
        "http_500": 0.2,
        "reset": 0.1,
        "lost_answer": 0.2,
        "malformed_json": 0.1,
        "generation_failure": 0.3,
        "stuck": 0.2,
    }
    config = SimConfig(seed=7, faults=rates, time_scale=0.01)
    first, second = _drive(config), _drive(config)
    assert first == second
    assert len(first["tasks"]) >= 3 and any(first["faults"])  # the run did exercise faults
    other = _drive(SimConfig(seed=8, faults=rates, time_scale=0.01))
    assert other["tasks"] != first["tasks"]


def test_control_over_http_changes_fault_rates_and_rejects_bad_input(sim: Simulator) -> None:
    control = f"{sim.base_url}/__sim/control"
    assert httpx.post(control, json={"faults": {"http_500": 1.0}}).status_code == 200
    with client(sim) as http:
        assert http.get(CREDIT).status_code == 500
        assert (
            httpx.post(control, json={"faults": {"http_500": 0}}).json()["faults"]["http_500"] == 0
        )
        assert http.get(CREDIT).status_code == 200
    for bad in ({"faults": {"http_500": 2}}, {"faults": {"nope": 1}}, {"seed": 3}, [1]):
        answer = httpx.post(control, json=bad)
        assert answer.status_code == 400 and answer.json()["error"]


def test_http_500_counts_as_a_fault_and_an_error_code(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"http_500": 1.0})
    with client(sim) as http:
        for _ in range(3):
            http.get(CREDIT)
    stats = sim.stats()
    assert stats["faults"] == {"http_500": 3} and stats["errors_by_code"] == {"500": 3}
