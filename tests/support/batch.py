"""The one batch helper: a manifest, an output folder and a simulator, wired together.

`run()` calls the CLI in-process; `command()` gives the argv of a separate runner process
(for kill tests).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.simulator import SimConfig, Simulator, running_simulator

KEY = "test-key-0123"
SCALE = 0.005


def runner_command(
    manifest: Path, base_url: str, out: Path, scale: float, *extra: str
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipeline",
        str(manifest),
        "--base-url",
        base_url,
        "--out",
        str(out),
        "--time-scale",
        str(scale),
        "--quiet",
        *extra,
    ]


@dataclass
class Batch:
    sim: Simulator
    manifest: Path
    out: Path
    key: str = KEY
    scale: float = SCALE

    @property
    def folder(self) -> Path:
        return self.out

    def write(self, text: str) -> Path:
        self.manifest.write_text(text)
        return self.manifest

    def command(self, *extra: str) -> list[str]:
        return runner_command(self.manifest, self.sim.base_url, self.out, self.scale, *extra)

    def args(self, *extra: str) -> list[str]:
        return self.command(*extra)[3:]

    def run(self, *extra: str) -> int:
        from pipeline.cli.main import main

        return main(self.args(*extra))

    def rows(self) -> list[dict[str, Any]]:
        """The ledger rows, in manifest order."""
        lines = (self.out / "ledger.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def ledger(self) -> dict[str, dict[str, Any]]:
        """The ledger rows by job id."""
        return {row["id"]: row for row in self.rows()}

    def stats(self) -> dict[str, Any]:
        return self.sim.stats()

    def control(self, **changes: Any) -> None:
        httpx.post(self.sim.base_url + "/__sim/control", json=changes).raise_for_status()


MakeBatch = Callable[..., Batch]


def batch_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str = KEY
) -> Iterator[MakeBatch]:
    """`make(**SimConfig fields)`: a Batch on its own simulator and folder; the key is set
    in the environment for in-process runs. Use from a fixture: `yield from batch_factory`."""
    monkeypatch.setenv("KIE_API_KEY", key)
    with ExitStack() as stack:
        count = 0

        def make(key: str = key, scale: float = SCALE, **config: Any) -> Batch:
            nonlocal count
            count += 1
            config.setdefault("api_keys", (key,))
            config.setdefault("seed", count)
            sim = stack.enter_context(running_simulator(SimConfig(time_scale=scale, **config)))
            folder = tmp_path / f"batch{count}"
            folder.mkdir()
            return Batch(sim, folder / "batch.yaml", folder / "out", key, scale)

        yield make
