"""End-to-end fixtures: a simulator on loopback and a batch that runs the CLI against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.simulator import SimConfig
from tests.support.batch import KEY, SCALE, Batch, MakeBatch, batch_factory


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(api_keys=(KEY,), time_scale=SCALE, seed=7)


@pytest.fixture
def make_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeBatch]:
    yield from batch_factory(tmp_path, monkeypatch)


@pytest.fixture
def batch(make_batch: MakeBatch, sim_config: SimConfig) -> Batch:
    """A batch on a simulator made from the test's `sim_config` fixture."""
    config = {f: getattr(sim_config, f) for f in sim_config.__dataclass_fields__}
    scale = config.pop("time_scale")
    return make_batch(scale=scale, **config)
