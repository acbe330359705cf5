"""A built-in Kie AI simulator: a real HTTP server on loopback that behaves like Kie's job API,
faults included, for tests, demos and the `run-pipeline simulate` command.

    with running_simulator(SimConfig(time_scale=0.01)) as sim:
        httpx.post(sim.base_url + "/api/v1/jobs/createTask", ...)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.simulator.config import FAULT_KINDS, ConfigError, FaultRates, SimConfig

if TYPE_CHECKING:
    from pipeline.simulator.simulator import Simulator, running_simulator


def __getattr__(name: str) -> Any:
    # The server is loaded on first use, so `run-pipeline validate` or `--dry-run` (which
    # import the simulator's CLI options) do not pay for it.
    if name in {"Simulator", "running_simulator"}:
        from pipeline.simulator import simulator

        return getattr(simulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FAULT_KINDS",
    "ConfigError",
    "FaultRates",
    "SimConfig",
    "Simulator",
    "running_simulator",
]
