"""Kie's request examples as one manifest: `run-pipeline validate` takes every example that
agrees with its own page, and refuses a broken copy of each (an enum value outside the enum,
a required field removed, a wrong type) on the job's line, naming the field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli.main import main
from pipeline.models import docs, examples, openapi
from pipeline.models.registry import ModelRegistry
from tests.catalog.test_snapshot import CONTRADICTIONS, job_pages, renames

LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>\S.*)$")


def bundled_examples() -> list[tuple[str, dict[str, Any]]]:
    """(model, example input) of each page the bundle was made from, self-consistent ones."""
    fixes, registry = renames(), ModelRegistry()
    out = []
    for page in job_pages():
        url = page["source_url"]
        name = fixes.get(url) or docs.declared_model(page)
        model = registry.get(name)
        if model is None or model.source.get("url") != url or url in CONTRADICTIONS:
            continue  # a translation of a page the bundle read, or a page at odds with itself
        post = docs.endpoint_document(page)["paths"][openapi.CREATE_TASK]["post"]
        example = examples.request_example(post)
        if example is not None:
            out.append((name, example["input"]))
    return out


def manifest(path: Path, jobs: list[dict[str, Any]]) -> Path:
    """One job a line (YAML flow style is JSON), so job N sits on line N + 3."""
    lines = ["version: 1", "name: Kie's own examples", "jobs:"]
    lines += [f"  - {json.dumps(job, ensure_ascii=False)}" for job in jobs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def job(index: int, model: str, task_input: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"example-{index}", "model": model, **task_input}


def test_every_self_consistent_example_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = bundled_examples()
    assert len(found) == 115  # 119, less 4 on Chinese pages whose English twin the bundle read
    jobs = [job(i, name, task_input) for i, (name, task_input) in enumerate(found)]
    code = main(["validate", str(manifest(tmp_path / "examples.yaml", jobs))])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"ok ({len(jobs)} jobs)" in out


def broken_copies() -> list[tuple[str, dict[str, Any], str, str]]:
    """(model, broken input, field, what broke) for each example: one break of each kind
    the model's schema allows (an enum, a required field, a typed field)."""
    registry = ModelRegistry()
    out = []
    for name, task_input in bundled_examples():
        model = registry.get(name)
        assert model is not None
        if model.schema.get("oneOf") or model.schema.get("anyOf"):
            continue  # a union's error names the form, not one field (see test_manifest_models)
        props = model.schema.get("properties", {})
        # A required field with a default is filled in (the runner sends the default).
        required = [
            f
            for f in model.schema.get("required", ())
            if f in task_input and "default" not in props.get(f, {})
        ]
        enum = next((f for f in task_input if "enum" in props.get(f, {})), None)
        typed = next(
            (f for f in task_input if props.get(f, {}).get("type") in ("string", "boolean")),
            None,
        )
        if enum:
            out.append((name, {**task_input, enum: "not-an-option"}, enum, "enum"))
        if required and required[-1] != "prompt":  # prompt has its own message (prompt_file)
            gone = required[-1]
            out.append((name, {k: v for k, v in task_input.items() if k != gone}, gone, "required"))
        if typed and typed != enum:
            wrong = 12345 if props[typed]["type"] == "string" else "yes"
            out.append((name, {**task_input, typed: wrong}, typed, "type"))
    return out


def test_a_broken_copy_of_each_example_is_refused_on_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = broken_copies()
    kinds = {kind for *_, kind in broken}
    assert kinds == {"enum", "required", "type"} and len(broken) > 150
    jobs = [job(i, name, task_input) for i, (name, task_input, _, _) in enumerate(broken)]
    path = manifest(tmp_path / "broken.yaml", jobs)
    assert main(["validate", str(path)]) == 2
    problems: dict[int, list[str]] = {}
    for line in capsys.readouterr().out.splitlines():
        match = LINE.match(line)
        if match and ": warning: " not in line:
            problems.setdefault(int(match["line"]), []).append(match["message"])
    missed = []
    for index, (name, _, field, kind) in enumerate(broken):
        messages = problems.get(index + 4, [])
        if not any(f"example-{index}" in m and field in m for m in messages):
            missed.append(f"line {index + 4} ({name}, {kind} of {field}): {messages}")
    assert not missed, "\n".join(missed)
