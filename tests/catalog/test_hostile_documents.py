"""Hostile catalog documents (issue 26), served by the simulator's catalog over loopback to
`models pull`: an expansion bomb, a chain of 3,000 $refs, 440 nested objects, a `pattern` that
backtracks exponentially, a `$dynamicRef`. Each ends in a catalog error (exit 3) or in a model
file that validation evaluates safely; none in exit 70 or a run without end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli.main import main
from pipeline.simulator import SimConfig, Simulator, running_simulator

KEY = "sim-key"
MODEL = "nano-banana-pro"
ROOT = Path(__file__).resolve().parents[2]
CREATE = "/api/v1/jobs/createTask"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with running_simulator(SimConfig(time_scale=0.01)) as simulator:
        yield simulator


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KIE_API_KEY", KEY)
    return tmp_path


def document(input_schema: Any, components: dict[str, Any] | None = None) -> dict[str, Any]:
    """An OpenAPI document of a createTask model whose `input` is `input_schema`."""
    body = {
        "type": "object",
        "properties": {"model": {"type": "string"}, "input": input_schema},
        "required": ["model", "input"],
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": MODEL, "version": "1"},
        "paths": {
            CREATE: {"post": {"requestBody": {"content": {"application/json": {"schema": body}}}}}
        },
        "components": {"schemas": components or {}},
    }


def serve(sim: Simulator, doc: dict[str, Any]) -> None:
    with sim.service.lock:
        sim.service.catalog.documents[MODEL] = doc


def bomb(levels: int = 32, fan: int = 2) -> dict[str, Any]:
    """`levels` components, each an object whose `fan` fields are the next: fan^levels
    nodes once inlined, from a few KB (the red team's: 32 levels, 2 fields, 8 KB)."""
    ref = "#/components/schemas/C{}".format
    components: dict[str, Any] = {
        f"C{i}": {
            "type": "object",
            "properties": {f"f{j}": {"$ref": ref(i + 1)} for j in range(fan)},
        }
        for i in range(levels)
    }
    components[f"C{levels}"] = {"type": "string"}
    return document({"$ref": ref(0)}, components)


def wide_bomb() -> dict[str, Any]:
    """Shallow enough for the depth cap (12 levels), 4^12 nodes: the size cap stops it."""
    return bomb(12, 4)


def chain(length: int = 3000) -> dict[str, Any]:
    ref = "#/components/schemas/C{}".format
    components: dict[str, Any] = {f"C{i}": {"$ref": ref(i + 1)} for i in range(length)}
    components[f"C{length}"] = {"type": "object", "properties": {"prompt": {"type": "string"}}}
    return document({"$ref": ref(0)}, components)


def nested(depth: int = 440) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        node = {"type": "object", "properties": {"x": node}}
    return document(node)


def pull(sim: Simulator) -> int:
    return main(["models", "pull", MODEL, "--base-url", sim.base_url])


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (bomb, "nests deeper than 48 levels"),
        (wide_bomb, "expands to more than 20,000 nodes"),
        (chain, "nests deeper than 48 levels"),
        (nested, "nests deeper than 48 levels"),
    ],
)
def test_a_document_that_grows_without_bound_is_a_catalog_error(
    sim: Simulator, here: Path, capsys: pytest.CaptureFixture[str], make: Any, why: str
) -> None:
    serve(sim, make())
    assert pull(sim) == 3
    err = capsys.readouterr().err
    assert "unexpected catalog answer, nothing written" in err and why in err
    assert not (here / "kie-models").exists()


def test_the_expansion_bomb_is_refused_in_little_memory(sim: Simulator, here: Path) -> None:
    """The 32-component document, pulled by a separate process: its peak memory is printed
    for the report (`pytest -s`); the process ends on its own with exit 3."""
    serve(sim, bomb())
    size = len(json.dumps(bomb()))
    err = here / "stderr.txt"
    with err.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "models", "pull", MODEL, "--base-url", sim.base_url],
            cwd=here,
            env={**os.environ, "KIE_API_KEY": KEY, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage, not pytest's
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 3, err.read_text()
    print(
        f"\npeak memory pulling the {size:,}-byte expansion bomb: {usage.ru_maxrss / 1024:.0f} MB"
    )


def _validate(here: Path, prompt: str) -> int:
    manifest = here / "batch.yaml"
    manifest.write_text(f"version: 1\njobs:\n  - id: a\n    model: {MODEL}\n    prompt: {prompt}\n")
    return main(["validate", str(manifest)])


def test_a_backtracking_pattern_is_dropped_and_validate_ends(
    sim: Simulator, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(
        sim,
        document(
            {
                "type": "object",
                "properties": {
                    "prompt": {"type": "string", "pattern": "^(a+)+$"},
                    "style": {"type": "string", "pattern": "^(https?|oss)://"},
                },
                "required": ["prompt"],
            }
        ),
    )
    assert pull(sim) == 0
    pulled = json.loads((here / "kie-models" / f"{MODEL}.json").read_text())
    prompt = pulled["input"]["properties"]["prompt"]
    assert "pattern" not in prompt and "pattern dropped" in prompt["$comment"]
    assert pulled["input"]["properties"]["style"]["pattern"] == "^(https?|oss)://"
    capsys.readouterr()
    assert _validate(here, "a" * 35 + "!") == 0


def test_a_model_file_with_a_backtracking_pattern_is_refused_at_load(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model file written by hand (or by an older pull) is checked the same way."""
    folder = here / "kie-models"
    folder.mkdir()
    schema = {
        "type": "object",
        "properties": {"prompt": {"type": "string", "pattern": "^(a+)+$"}},
    }
    (folder / f"{MODEL}.json").write_text(
        json.dumps({"model": MODEL, "output": {"media": "image"}, "input": schema})
    )
    assert _validate(here, "a" * 35 + "!") == 2
    assert "could make validation backtrack" in capsys.readouterr().out


def test_a_dynamic_ref_is_dropped_not_an_internal_error(
    sim: Simulator, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(
        sim,
        document(
            {
                "type": "object",
                "properties": {"prompt": {"$dynamicRef": "#meta", "type": "string"}},
                "$defs": {"x": {"$dynamicAnchor": "meta", "type": "integer"}},
            }
        ),
    )
    assert pull(sim) == 0
    text = (here / "kie-models" / f"{MODEL}.json").read_text()
    assert "$dynamicRef" not in text and "$defs" not in text
    assert _validate(here, "A lighthouse at dusk") == 0
