"""Issue 17: task ids unique across simulator processes, and `state_dir`, which lets a
restarted simulator know the tasks, uploads and balances of the one before it."""

from __future__ import annotations

from pathlib import Path

import httpx

from pipeline.simulator import SimConfig, running_simulator
from pipeline.simulator.persist import FILE_NAME
from pipeline.simulator.results import result_bytes
from tests.support.sim import (
    CREDIT,
    DOWNLOAD_URL,
    FAST,
    KEY,
    QUERY,
    body,
    client,
    create,
    record,
    wait_end,
)


def test_two_simulators_with_one_seed_hand_out_different_task_ids() -> None:
    ids = []
    for _ in range(2):
        with running_simulator(SimConfig(**FAST, seed=5)) as sim, client(sim) as http:
            ids.append([create(http, f"scene {i}") for i in range(3)])
    assert not set(ids[0]) & set(ids[1])
    assert [i[:16] for i in ids[0]] == [i[:16] for i in ids[1]]  # the seeded half replays


def test_a_restarted_simulator_knows_its_tasks_balances_and_uploads(tmp_path: Path) -> None:
    # Real time scale: the task is still running when the first simulator stops.
    config = SimConfig(**{**FAST, "time_scale": 0.02}, state_dir=str(tmp_path), credits=1000)
    with running_simulator(config) as first, client(first) as http:
        task_id = create(http)
        upload = http.post(
            "/api/file-stream-upload",
            files={"file": ("a.png", result_bytes("png", "p", "landscape"))},
            data={"uploadPath": "kept"},
        ).json()["data"]
        assert record(http, task_id)["state"] != "success"
        first_url = first.base_url
    with running_simulator(config) as second, client(second) as http:
        # The old port was free again: the same URLs lead to the same files.
        assert second.base_url == first_url
        assert http.get(CREDIT).json()["data"] == 1000 - 30  # not the configured 1000
        done = wait_end(http, task_id)  # ends as planned, after the restart
        assert done["state"] == "success" and done["createTime"] > 0
        url = done["response"]["resultUrls"][0]
        assert httpx.get(url).status_code == 200
        fresh = http.post(DOWNLOAD_URL, json={"url": url}).json()["data"]
        kept = httpx.get(upload["downloadUrl"])
        assert kept.status_code == 200 and kept.content.startswith(b"\x89PNG")
        assert http.post("/api/v1/jobs/createTask", json=body("new")).json()["code"] == 200
    assert [e["filePath"] for e in second.service.uploads_view()] == ["kept/a.png"]
    with running_simulator(config) as third, client(third) as http:
        # A link from download-url survives too; and the tasks of both earlier processes.
        assert httpx.get(fresh).status_code == 200
        assert len(third.tasks()) == 2 and http.get(CREDIT).json()["data"] == 1000 - 60


def test_a_failure_that_ends_after_a_restart_is_still_refunded(tmp_path: Path) -> None:
    config = SimConfig(
        **{**FAST, "time_scale": 0.02},
        state_dir=str(tmp_path),
        credits=100,
        faults={"generation_failure": 1.0},
    )
    with running_simulator(config) as first, client(first) as http:
        task_id = create(http)
        assert http.get(CREDIT).json()["data"] == 70
    with running_simulator(config) as second, client(second) as http:
        assert wait_end(http, task_id)["state"] == "fail"
        assert http.get(CREDIT).json()["data"] == 100


def test_without_state_dir_a_new_simulator_knows_nothing(tmp_path: Path) -> None:
    with running_simulator(SimConfig(**FAST)) as sim, client(sim) as http:
        task_id = create(http)
    with running_simulator(SimConfig(**FAST)) as sim, client(sim) as http:
        assert http.get(QUERY, params={"taskId": task_id}).json()["code"] == 404
    assert list(tmp_path.iterdir()) == []


def test_the_state_file_never_holds_the_api_key(tmp_path: Path) -> None:
    config = SimConfig(**FAST, state_dir=str(tmp_path), api_keys=(KEY, "second-key"))
    with running_simulator(config) as sim, client(sim) as http:
        create(http)
        sim.control(credits={"second-key": 5})
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert (tmp_path / FILE_NAME).is_file()
    assert KEY.encode() not in data and b"second-key" not in data
    with running_simulator(config) as sim:
        assert sim.service.balances == [100_000 - 30, 5]


def test_large_balances_are_allowed() -> None:
    with running_simulator(SimConfig(**FAST, credits=10**12)) as sim, client(sim) as http:
        assert http.get(CREDIT).json()["data"] == 10**12


def test_fractional_balances_survive_a_restart(tmp_path: Path) -> None:
    """A task may cost 24.8 credits: the balance keeps its fraction, on disk too."""
    config = SimConfig(**FAST, state_dir=str(tmp_path))
    with running_simulator(config) as sim, client(sim) as http:
        sim.control(credits=99_875.2)
        assert http.get(CREDIT).json()["data"] == 99_875.2
    with running_simulator(config) as sim, client(sim) as http:
        assert http.get(CREDIT).json()["data"] == 99_875.2
        create(http)  # 30 credits
        assert http.get(CREDIT).json()["data"] == 99_845.2  # exactly: no float drift
