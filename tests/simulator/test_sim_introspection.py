"""/__sim/ endpoints, their shapes, and the pure parts (ranges, windows, latency, config)."""

from __future__ import annotations

import random
import statistics

import httpx
import pytest

from pipeline.manifest.fingerprint import fingerprint
from pipeline.simulator import ConfigError, SimConfig, Simulator
from pipeline.simulator.files import RangeNotSatisfiable, parse_range
from pipeline.simulator.ratelimit import SlidingWindow
from pipeline.simulator.tasks import plan_task
from tests.support.sim import CREATE, CREDIT, QUERY, MakeSim, body, client, create, wait_end


def test_stats_tasks_and_requests_over_http(make_sim: MakeSim) -> None:
    sim = make_sim(api_keys=("secret-key-1", "secret-key-2"), faults={"lost_answer": 1.0})
    with client(sim, "secret-key-2") as http:
        with pytest.raises(httpx.TransportError):
            http.post(CREATE, json=body("a lighthouse", n_frames="15"))
        sim.control(faults={"lost_answer": 0.0})
        task_id = create(http, "a lighthouse", n_frames="15")
        wait_end(http, task_id)
        http.get(CREDIT)
    stats = httpx.get(f"{sim.base_url}/__sim/stats").json()
    expected = fingerprint(
        "sora-2-text-to-video",
        {"prompt": "a lighthouse", "n_frames": "15", "aspect_ratio": "landscape"},
    )
    assert stats["creates"] == 2 and stats["creates_by_fingerprint"] == {expected: 2}
    assert stats["lost_answers"] == 1 and len(stats["lost_answer_task_ids"]) == 1
    assert stats["rate_limited"] == {"create": 0, "query": 0}
    assert stats["queries"] >= 1 and stats["credit_calls"] == 1
    assert stats["accounts"][1] == {"index": 1, "credits": 100_000 - 70, "tasks": 2}
    assert set(stats) >= {
        "download_url_calls",
        "file_downloads",
        "file_download_bytes",
        "callbacks",
        "faults",
        "errors_by_code",
        "tasks_by_state",
    }

    tasks = httpx.get(f"{sim.base_url}/__sim/tasks").json()
    assert {t["taskId"] for t in tasks} == {task_id, stats["lost_answer_task_ids"][0]}
    done = next(t for t in tasks if t["taskId"] == task_id)
    assert done["fingerprint"] == expected and done["model"] == "sora-2-text-to-video"
    assert done["state"] == "success" and done["lost_answer"] is False
    assert done["created_at"] < done["finished_at"]

    log = httpx.get(f"{sim.base_url}/__sim/requests").json()
    assert [r["path"] for r in log][:2] == [CREATE, CREATE]
    assert log[0]["code"] is None and log[0]["fault"] == "lost_answer"
    assert log[1]["code"] == 200 and log[-1]["path"] == CREDIT
    since = httpx.get(f"{sim.base_url}/__sim/requests", params={"since": log[-1]["time"]}).json()
    assert since == log[-1:]

    for page in ("stats", "tasks", "requests", "control"):  # keys are never shown
        text = httpx.get(f"{sim.base_url}/__sim/{page}").text
        assert "secret-key" not in text, page


def test_the_request_log_measures_query_rates(sim: Simulator) -> None:
    with client(sim) as http:
        task_id = create(http)
        for _ in range(5):
            http.get(QUERY, params={"taskId": task_id})
    times = [r["time"] for r in sim.requests() if r["path"] == QUERY]
    assert len(times) == 5 and times == sorted(times)
    assert sim.stats()["queries"] == 5


def test_unknown_sim_endpoint_is_404(sim: Simulator) -> None:
    assert httpx.get(f"{sim.base_url}/__sim/nothing").status_code == 404
    assert httpx.get(f"{sim.base_url}/elsewhere").status_code == 404


def test_parse_range() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-", 100) == (0, 99)
    assert parse_range("bytes=10-20", 100) == (10, 20)
    assert parse_range("bytes=90-200", 100) == (90, 99)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=-500", 100) == (0, 99)
    assert parse_range("bytes=5-1", 100) is None
    assert parse_range("items=0-1", 100) is None
    for unsatisfiable in ("bytes=100-", "bytes=-0"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(unsatisfiable, 100)


def test_sliding_window() -> None:
    window = SlidingWindow()
    assert all(window.try_acquire(t, 3, 10.0) for t in (0.0, 1.0, 2.0))
    assert not window.try_acquire(9.0, 3, 10.0)  # rejected, and not counted
    assert window.try_acquire(10.0, 3, 10.0)  # the first slot slid out
    assert not window.try_acquire(10.5, 3, 10.0)


def test_default_latency_is_realistic_and_seeded() -> None:
    config = SimConfig()
    rng = random.Random(1)
    latencies = [plan_task(config, rng, moderated=False).latency for _ in range(4000)]
    assert 100 < statistics.median(latencies) < 140
    assert sum(60 <= x <= 240 for x in latencies) / len(latencies) > 0.85
    assert min(latencies) >= config.latency_min and max(latencies) <= config.latency_max
    again = random.Random(1)
    assert [plan_task(config, again, False).latency for _ in range(10)] == latencies[:10]


def test_time_scale_scales_the_latency() -> None:
    fast, real = SimConfig(time_scale=0.01), SimConfig()
    assert plan_task(fast, random.Random(2), False).latency == pytest.approx(
        plan_task(real, random.Random(2), False).latency * 0.01
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"api_keys": ()},
        {"time_scale": 0},
        {"create_limit": (0, 10.0)},
        {"latency_median": 1000.0},
        {"faults": {"http_500": 1.5}},
        {"faults": {"unknown": 0.1}},
        {"phase_fractions": (0.6, 0.5)},
    ],
)
def test_invalid_config_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SimConfig(**bad)  # type: ignore[arg-type]
