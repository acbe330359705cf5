"""Fixtures of the reliability tests: simulators and batches wired to them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from pipeline.simulator import SimConfig, running_simulator
from tests.reliability.harness import Batch

KEY = "reliability-key"
SCALE = 0.005

MakeBatch = Callable[..., Batch]


@pytest.fixture
def make_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeBatch]:
    """`make_batch(**SimConfig fields)`: a Batch on its own simulator and folder; the key is
    set in the environment for in-process runs."""
    monkeypatch.setenv("KIE_API_KEY", KEY)
    with ExitStack() as stack:
        count = 0

        def make(key: str = KEY, scale: float = SCALE, **config: Any) -> Batch:
            nonlocal count
            count += 1
            config.setdefault("api_keys", (key,))
            sim = stack.enter_context(
                running_simulator(
                    SimConfig(time_scale=scale, seed=config.pop("seed", count), **config)
                )
            )
            folder = tmp_path / f"batch{count}"
            folder.mkdir()
            return Batch(sim, folder / "batch.yaml", folder / "out", key, scale)

        yield make
