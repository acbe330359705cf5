"""Issue 25: the editor schema (`run-pipeline schema`) never rejects a valid manifest: model
input fields are left to `validate`, which checks them per model."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from pipeline.cli.main import main
from pipeline.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]


def _editor_schema() -> Draft202012Validator:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["schema"]) == 0
    schema: dict[str, Any] = json.loads(out.getvalue())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _readme_manifests() -> list[str]:
    """Every manifest of the README: whole ones, and the job lists of its Pipelines and
    file sections made whole."""
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    made = {"version: 1": "", "jobs:": "version: 1\n", "  - id:": "version: 1\njobs:\n"}
    return [head + b for b in blocks for start, head in made.items() if b.startswith(start)]


def test_the_readme_has_manifests_to_check() -> None:
    assert len(_readme_manifests()) >= 3


@pytest.mark.parametrize("text", _readme_manifests(), ids=lambda t: t.splitlines()[1][:30])
def test_each_readme_manifest_validates_against_the_editor_schema(text: str) -> None:
    errors = [e.message for e in _editor_schema().iter_errors(yaml.safe_load(text))]
    assert errors == []


def test_the_shipped_manifests_validate_against_the_editor_schema() -> None:
    validator = _editor_schema()
    paths = [*ROOT.glob("manifests/**/*.yaml"), *ROOT.glob("examples/**/*.yaml")]
    assert paths
    for path in paths:
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert errors == [], path


def test_a_kling_ratio_is_no_error_in_the_editor_and_validate_still_checks_it(
    tmp_path: Path,
) -> None:
    text = (
        "version: 1\njobs:\n  - id: film\n    model: kling-2.6/text-to-video\n"
        '    prompt: A lamp\n    sound: false\n    aspect_ratio: "16:9"\n'
    )
    assert list(_editor_schema().iter_errors(yaml.safe_load(text))) == []
    path = tmp_path / "m.yaml"
    path.write_text(text)
    assert load_manifest(path).jobs[0].input["aspect_ratio"] == "16:9"
