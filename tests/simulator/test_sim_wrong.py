"""Issue 26's valid-looking wrong answers, as simulator faults: a gateway's JSON error or
Kie's HTTP 200 code 500 after the create, a poll answered with another task's record, and
results of another media than the model's. Each is off by default."""

from __future__ import annotations

import argparse

import pytest

from pipeline.cli.simargs import add_arguments, config_from_args
from pipeline.simulator import FaultRates
from tests.support.sim import CREATE, CREDIT, QUERY, MakeSim, body, client, create, wait_end

WRONG = ("gateway_json", "error_500_body", "foreign_record", "wrong_media")


def test_every_wrong_answer_is_off_by_default_and_has_a_flag() -> None:
    rates = FaultRates().as_dict()
    assert all(rates[kind] == 0.0 for kind in WRONG)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = ("--fault-gateway-json", "--fault-error-500", "--fault-foreign-record")
    argv = [arg for i, flag in enumerate(flags) for arg in (flag, str((i + 1) / 10))]
    config = config_from_args(parser.parse_args([*argv, "--fault-wrong-media", "0.4"]))
    assert [config.rates.as_dict()[kind] for kind in WRONG] == [0.1, 0.2, 0.3, 0.4]


@pytest.mark.parametrize("fault", ["gateway_json", "error_500_body"])
def test_a_5xx_after_the_create_charges_and_hides_the_task(make_sim: MakeSim, fault: str) -> None:
    sim = make_sim(faults={fault: 1.0}, credits=100)
    with client(sim) as http:
        answer = http.post(CREATE, json=body())
        envelope = answer.json()
        if fault == "gateway_json":
            assert answer.status_code in (502, 503, 504)
            assert envelope["code"] == answer.status_code and envelope["msg"]
        else:
            assert answer.status_code == 200
            assert envelope == {"code": 500, "msg": "Internal server error", "data": None}
        sim.control(faults={fault: 0.0})
        assert http.get(CREDIT).json()["data"] == 70  # created and charged
    (task,) = sim.tasks()
    assert task["lost_answer"] is True


def test_a_poll_is_answered_with_another_tasks_record(make_sim: MakeSim) -> None:
    sim = make_sim()
    with client(sim) as http:
        first, second = create(http, "a kite"), create(http, "a boat")
        sim.control(faults={"foreign_record": 1.0})
        data = http.get(QUERY, params={"taskId": first}).json()["data"]
        assert data["taskId"] == second
    assert sim.stats()["faults"]["foreign_record"] == 1


def test_results_of_the_wrong_media(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"wrong_media": 1.0})
    with client(sim) as http:
        data = wait_end(http, create(http))  # a video model: its result is a PNG
    assert data["response"]["resultUrls"][0].endswith(".png")
