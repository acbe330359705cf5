"""End-to-end fixtures: a simulator on loopback and a helper that runs the CLI against it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.cli import main
from pipeline.simulator import SimConfig, Simulator, running_simulator

SCALE = 0.005
KEY = "test-key-0123"


@dataclass
class Batch:
    """A manifest, an output folder and a simulator, wired together."""

    sim: Simulator
    folder: Path
    manifest: Path

    def write(self, text: str) -> Path:
        self.manifest.write_text(text)
        return self.manifest

    def run(self, *extra: str) -> int:
        return main(
            [
                str(self.manifest),
                "--base-url",
                self.sim.base_url,
                "--out",
                str(self.folder),
                "--time-scale",
                str(SCALE),
                "--quiet",
                *extra,
            ]
        )

    def ledger(self) -> list[dict[str, Any]]:
        lines = (self.folder / "ledger.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def stats(self) -> dict[str, Any]:
        return self.sim.stats()

    def control(self, **changes: Any) -> None:
        httpx.post(self.sim.base_url + "/__sim/control", json=changes).raise_for_status()


def jobs_yaml(count: int, *, prefix: str = "job", extra: str = "") -> str:
    lines = ["version: 1", "jobs:"]
    for i in range(count):
        lines += [
            f"  - id: {prefix}-{i:03d}",
            f"    prompt: A paper boat number {i} on a pond",
            f"    aspect_ratio: {'portrait' if i % 2 else 'landscape'}",
        ]
        if extra:
            lines.append(f"    {extra}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(api_keys=(KEY,), time_scale=SCALE, seed=7)


@pytest.fixture
def batch(
    tmp_path: Path, sim_config: SimConfig, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Batch]:
    monkeypatch.setenv("KIE_API_KEY", KEY)
    with running_simulator(sim_config) as sim:
        yield Batch(sim, tmp_path / "out", tmp_path / "batch.yaml")
