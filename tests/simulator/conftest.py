"""Fixtures for the simulator tests: simulators on ephemeral loopback ports, sped up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from sim_helpers import FAST, MakeSim

from pipeline.simulator import SimConfig, Simulator, running_simulator


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
