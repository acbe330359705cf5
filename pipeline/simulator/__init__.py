"""A built-in Kie AI simulator: a real HTTP server on loopback that behaves like Kie's job API,
faults included, for tests, demos and the `run-pipeline simulate` command.

    with running_simulator(SimConfig(time_scale=0.01)) as sim:
        httpx.post(sim.base_url + "/api/v1/jobs/createTask", ...)
"""

from __future__ import annotations

from pipeline.simulator.config import FAULT_KINDS, ConfigError, FaultRates, SimConfig
from pipeline.simulator.simulator import Simulator, running_simulator

__all__ = [
    "FAULT_KINDS",
    "ConfigError",
    "FaultRates",
    "SimConfig",
    "Simulator",
    "running_simulator",
]
