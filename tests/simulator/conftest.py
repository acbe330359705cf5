"""Fixtures for the simulator tests: simulators on ephemeral loopback ports, sped up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from pipeline.simulator import SimConfig, Simulator, running_simulator
from tests.support.sim import FAST, MakeSim, write_models


@pytest.fixture
def make_sim() -> Iterator[MakeSim]:
    """Start simulators with FAST settings overridden by keyword; all stopped at teardown."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> Simulator:
            return stack.enter_context(running_simulator(SimConfig(**{**FAST, **overrides})))

        yield make


@pytest.fixture
def sim(make_sim: MakeSim) -> Simulator:
    return make_sim()


@pytest.fixture
def market_sim(make_sim: MakeSim, tmp_path: Path) -> Simulator:
    """A simulator that also serves the test models of tests.support.sim.TEST_MODELS."""
    return make_sim(model_dirs=(write_models(tmp_path / "models"),))
