"""Property tests: whatever the input, the loader answers a Manifest or a ManifestError.

Nothing else may escape (no KeyError, ValueError, RecursionError, UnicodeError...), every
issue is one located line, and every loaded job is a valid request with the right
fingerprint. Inputs tried are counted (see conftest.py) and printed after the run.
"""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.manifest import Manifest, ManifestError, load_manifest
from pipeline.manifest.fingerprint import fingerprint
from pipeline.manifest.schema import SAFE_ID
from pipeline.models.registry import ModelRegistry

# MANIFEST_EXAMPLES=5000 for a longer hunt; 200 keeps the suite quick.
SETTINGS = settings(
    max_examples=int(os.environ.get("MANIFEST_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
REGISTRY = ModelRegistry()
MODELS = ("sora-2-text-to-video", "sora-2-pro-text-to-video")
PROMPTS = st.text(min_size=1, max_size=60).filter(lambda s: bool(s.strip()))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A manifest folder with prompt files of every kind a job may name."""
    (tmp_path / "p.txt").write_text("A crane folds its wings.\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "q.txt").write_text("Steam rises from a bowl of noodles.", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9")
    (tmp_path / "blank.txt").write_text(" \n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("outside\n")
    (tmp_path / "link-out.txt").symlink_to(outside)
    return tmp_path


def check(path: Path) -> Manifest | None:
    """Load `path`; assert the outcome is well-formed either way."""
    try:
        manifest = load_manifest(path)
    except ManifestError as exc:
        assert exc.issues, "a ManifestError must carry at least one issue"
        text = path.read_bytes().decode("utf-8", errors="replace")
        lines = len(re.findall("\r\n|[\r\n\x85\u2028\u2029]", text)) + 1
        for issue in exc.issues:
            assert issue.path == str(path)
            assert 1 <= issue.line <= lines and issue.column >= 1, issue
            assert issue.message and "\n" not in issue.message and "\r" not in issue.message
            assert len(issue.message) <= 400
        return None
    ids = [job.id for job in manifest.jobs]
    assert len(ids) == len(set(ids)) and manifest.jobs
    for job in manifest.jobs:
        assert SAFE_ID.fullmatch(job.id), job.id
        model = REGISTRY.get(job.model)
        assert model is not None and model.validator.is_valid(dict(job.input))
        assert job.prompt.strip()
        assert job.fingerprint == fingerprint(job.model, job.input)
    return manifest


# --- arbitrary text and bytes -------------------------------------------------------------

YAML_BITS = [
    "version: 1\n",
    "jobs:\n",
    "  - id: a\n",
    "    prompt: hi\n",
    "defaults:\n",
    "settings:\n",
    "  concurrency: 3\n",
    "    matrix: {aspect_ratio: [portrait]}\n",
    "&a ",
    "*a",
    "<<: ",
    "<<: *a\n",
    "[",
    "]",
    "{",
    "}",
    ", ",
    ": ",
    "- ",
    "? ",
    "\t",
    "\n",
    "  ",
    "    ",
    "'",
    '"',
    "!!str ",
    "!!python/object:os.system ",
    "!x ",
    "---\n",
    "...\n",
    "#c",
    "|\n",
    ">-\n",
    "~",
    ".nan",
    ".inf",
    "1e999",
    "0x1F",
    "%YAML 1.1\n",
    "%TAG !e! tag:e.com,2000:\n",
    "\x07",
    "\ufeff",
    "\\u",
    "\\ud800",
    "n_frames: 10\n",
    "prompt_file: ../x\n",
    "é",
    "😀",
    "\r\n",
    "=",
    "=: 1\n",
]


@SETTINGS
@given(
    text=st.one_of(
        st.text(max_size=300), st.lists(st.sampled_from(YAML_BITS), max_size=40).map("".join)
    )
)
def test_arbitrary_text(folder: Path, tried: Counter[str], text: str) -> None:
    tried["arbitrary YAML text"] += 1
    path = folder / "m.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check(path)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes(folder: Path, tried: Counter[str], data: bytes) -> None:
    tried["arbitrary bytes"] += 1
    path = folder / "m.yaml"
    path.write_bytes(data)
    check(path)


# --- arbitrary YAML documents -------------------------------------------------------------

VOCABULARY = [
    "version",
    "jobs",
    "defaults",
    "settings",
    "name",
    "id",
    "prompt",
    "prompt_file",
    "model",
    "aspect_ratio",
    "n_frames",
    "remove_watermark",
    "size",
    "matrix",
    "callback_url",
    "concurrency",
    "create_rate",
    "query_rate",
    "max_attempts",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["1", "10", "portrait", "20/10", "a"])
)
KEYS = st.sampled_from(VOCABULARY) | st.text(max_size=8) | st.integers(-3, 3)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=40,
)


def dump(document: Any, flow: bool | None, unicode: bool) -> str:
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=flow, allow_unicode=unicode)


@SETTINGS
@given(
    document=DOCUMENTS | st.fixed_dictionaries({"version": st.just(1), "jobs": DOCUMENTS}),
    flow=st.sampled_from([None, True, False]),
    unicode=st.booleans(),
)
def test_arbitrary_documents(
    folder: Path, tried: Counter[str], document: Any, flow: bool | None, unicode: bool
) -> None:
    tried["arbitrary YAML documents"] += 1
    path = folder / "m.yaml"
    path.write_text(dump(document, flow, unicode), encoding="utf-8")
    check(path)


# --- arbitrary jobs: each field valid or not ----------------------------------------------


def values(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    """Mostly valid values, so that whole manifests load often enough to test that path."""
    return st.one_of(
        st.sampled_from(good), st.sampled_from(good), st.sampled_from(good), st.sampled_from(bad)
    )


FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "prompt": values(
        ["A heron.", "  padded  ", "Une grue.\nDeux lignes."],
        ["", "   ", "x" * 10001, 5, None, ["a"], {"a": 1}],
    )
    | st.text(max_size=40),
    "prompt_file": values(
        ["p.txt", "sub/q.txt", "./p.txt", "sub/../p.txt"],
        [
            "missing.txt",
            "../x.txt",
            "/etc/hostname",
            "",
            "sub",
            "bad.txt",
            "blank.txt",
            "link-out.txt",
            "a\0b",
            "x" * 300,
            3,
            None,
        ],
    ),
    "model": values(
        list(MODELS),
        [
            "sora-2",
            "../models/sora-2-text-to-video",
            "",
            "a\0b",
            "m" * 300,
            7,
            None,
            ["sora-2-text-to-video"],
        ],
    ),
    "aspect_ratio": values(["portrait", "landscape"], ["square", "Portrait", 1, None, True]),
    "n_frames": values(["10", "15"], [10, 15, "20", 10.0, None, "10 "]),
    "remove_watermark": values([True, False], ["true", 1, None, "yes"]),
    "size": values(["standard", "high"], ["low", 1, None]),
    "callback_url": values(
        ["https://hooks.example.com/cb", "http://localhost:8080/cb"],
        ["ftp://x.example", "", "example.com", 5, None],
    ),
}
IDS = values(
    ["a", "job-1", "x.y_z", "0start", "a" * 64],
    ["UPPER", "has space", "a/b", ".hidden", "a" * 65, "", "ok\n", 3, None, "é"],
)
MATRIX_VALUES = st.lists(st.one_of(*FIELDS.values()), min_size=0, max_size=3)
MATRIX = (
    st.dictionaries(
        st.sampled_from([*FIELDS, "id", "colour"]),
        st.one_of(*(st.lists(s, min_size=1, max_size=3) for s in FIELDS.values()))
        | MATRIX_VALUES
        | st.text(max_size=3)
        | st.none(),
        max_size=3,
    )
    | st.none()
    | st.text(max_size=3)
    | st.fixed_dictionaries(
        {},
        optional={
            "aspect_ratio": st.lists(FIELDS["aspect_ratio"], min_size=1, max_size=2),
            "n_frames": st.lists(FIELDS["n_frames"], min_size=1, max_size=2),
        },
    )
)
EXTRA: st.SearchStrategy[dict[str, Any]] = (
    st.just({})
    | st.just({})
    | st.just({})
    | st.dictionaries(
        st.sampled_from(["colour", "promt", "aspect_ration", "seed"]), SCALARS, max_size=1
    )
)
JOB = st.fixed_dictionaries({}, optional={"id": IDS, **FIELDS, "matrix": MATRIX}).flatmap(
    lambda job: EXTRA.map(lambda extra: {**job, **extra})
)
DEFAULTS: st.SearchStrategy[Any] = (
    st.fixed_dictionaries({}, optional={**FIELDS, "id": IDS}) | st.none() | st.just([])
)
RUNNER_SETTINGS = st.fixed_dictionaries(
    {},
    optional={
        "concurrency": values([1, 100, 10000], [0, -5, 10001, 2.5, "3", None]),
        "create_rate": values(["20/10", "1/.5", "10/1s"], ["10/0", "fast", "0/1", 20, ""]),
        "query_rate": values(["10/1"], ["x/y", "1/0.0"]),
        "poll_interval": values([2, 0.5], [0, -1, "2"]),
        "max_attempts": values([1, 3, 20], [0, 21, 3.5]),
        "download": values([True, False], ["no", 0]),
        "max_credits": values([0, 1000, 1.5, 1500.5], [-1, -0.5, "100", True]),
        "on_ambiguous": values(["resubmit", "skip"], ["retry", None]),
    },
)
MANIFESTS = st.fixed_dictionaries(
    {"jobs": st.lists(JOB, max_size=5)},
    optional={
        "version": values([1], [2, "1", None]),
        "defaults": DEFAULTS,
        "settings": RUNNER_SETTINGS,
        "name": values(["Launch"], ["", 3]),
    },
)


GOOD: dict[str, list[Any]] = {
    "prompt_file": ["p.txt", "sub/q.txt"],
    "aspect_ratio": ["portrait", "landscape"],
    "n_frames": ["10", "15"],
    "remove_watermark": [True, False],
    "callback_url": ["https://hooks.example.com/cb"],
}


@st.composite
def nearly_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A valid manifest, then (half of the time) one field of one job swapped for anything."""
    ids = draw(
        st.lists(
            st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    jobs: list[dict[str, Any]] = []
    for job_id in ids:
        job: dict[str, Any] = {"id": job_id}
        if draw(st.booleans()):
            job["prompt"] = draw(PROMPTS)
        else:
            job["prompt_file"] = draw(st.sampled_from(GOOD["prompt_file"]))
        if draw(st.booleans()):
            job["model"] = draw(st.sampled_from(MODELS))
            if job["model"] == MODELS[1] and draw(st.booleans()):
                job["size"] = draw(st.sampled_from(["standard", "high"]))
        for name in ("aspect_ratio", "n_frames", "remove_watermark", "callback_url"):
            if draw(st.booleans()):
                job[name] = draw(st.sampled_from(GOOD[name]))
        if draw(st.integers(0, 3)) == 0:
            job["matrix"] = {"aspect_ratio": ["portrait", "landscape"]}
            job.pop("aspect_ratio", None)
        jobs.append(job)
    if draw(st.booleans()):
        victim = draw(st.sampled_from(jobs))
        name = draw(st.sampled_from([*FIELDS, "id", "matrix"]))
        victim[name] = draw(IDS if name == "id" else MATRIX if name == "matrix" else FIELDS[name])
        if name == "prompt_file":
            victim.pop("prompt", None)
        if name == "prompt":
            victim.pop("prompt_file", None)
    return {"version": 1, "jobs": jobs}


@SETTINGS
@given(manifest=MANIFESTS | nearly_valid(), flow=st.sampled_from([None, True, False]))
def test_arbitrary_jobs(
    folder: Path, tried: Counter[str], manifest: dict[str, Any], flow: bool | None
) -> None:
    tried["arbitrary job dictionaries"] += 1
    path = folder / "m.yaml"
    path.write_text(dump(manifest, flow, unicode=True), encoding="utf-8")
    loaded = check(path)
    if loaded is not None:
        tried["arbitrary job dictionaries (loaded)"] += 1


# --- fingerprints -------------------------------------------------------------------------


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A valid request as (model, job fields); the model's defaults may be left out (the
    model may not: there is no default model)."""
    model = draw(st.sampled_from(MODELS))
    fields: dict[str, Any] = {"prompt": draw(PROMPTS), "model": model}
    for name in ("aspect_ratio", "n_frames", "remove_watermark", "size"):
        if name == "size" and model != MODELS[1]:
            continue
        if draw(st.booleans()):
            choices: dict[str, list[Any]] = {
                "aspect_ratio": ["portrait", "landscape"],
                "n_frames": ["10", "15"],
                "remove_watermark": [True, False],
                "size": ["standard", "high"],
            }
            options = choices[name]
            fields[name] = draw(st.sampled_from(options))
    return model, fields


def write(path: Path, defaults: dict[str, Any], jobs: list[dict[str, Any]], flow: bool) -> None:
    document: dict[str, Any] = {"version": 1}
    if defaults:
        document["defaults"] = defaults
    document["jobs"] = jobs
    # Escaped output: PyYAML's emitter writes a raw U+0085 into a quoted scalar, which its
    # own reader then folds into a space (a PyYAML round-trip quirk, not the loader's).
    path.write_text(dump(document, flow, unicode=False), encoding="utf-8")


@SETTINGS
@given(
    request=requests(),
    seed=st.integers(0, 2**32 - 1),
    flow=st.booleans(),
    explicit_defaults=st.booleans(),
)
def test_fingerprint_ignores_layout(
    folder: Path,
    tried: Counter[str],
    request: tuple[str, dict[str, Any]],
    seed: int,
    flow: bool,
    explicit_defaults: bool,
) -> None:
    """Permuting keys, moving fields to `defaults`, or spelling out model defaults: no change."""
    tried["fingerprint: layout"] += 1
    model_name, fields = request
    model = REGISTRY.get(model_name)
    assert model is not None
    path = folder / "m.yaml"
    write(path, {}, [{"id": "job", **fields}], flow=False)
    reference = load_manifest(path).jobs[0]
    expected_input = {**model.defaults(), **{k: v for k, v in fields.items() if k != "model"}}
    expected_input["prompt"] = fields["prompt"].strip()
    assert dict(reference.input) == expected_input
    assert reference.fingerprint == fingerprint(model_name, expected_input)

    rng = random.Random(seed)
    moved = dict(fields)
    if explicit_defaults:
        moved = {**{k: v for k, v in model.defaults().items()}, **moved}
    keys = list(moved)
    rng.shuffle(keys)
    to_defaults = {k for k in keys if rng.random() < 0.5}
    defaults = {k: moved[k] for k in keys if k in to_defaults}
    job = {k: moved[k] for k in keys if k not in to_defaults}
    job_keys = ["id", *job]
    rng.shuffle(job_keys)
    job = {k: ("job" if k == "id" else job[k]) for k in job_keys}
    write(path, defaults, [job], flow=flow)
    assert load_manifest(path).jobs[0].fingerprint == reference.fingerprint


@SETTINGS
@given(request=requests(), other=PROMPTS)
def test_fingerprint_follows_the_prompt(
    folder: Path, tried: Counter[str], request: tuple[str, dict[str, Any]], other: str
) -> None:
    tried["fingerprint: prompt change"] += 1
    _, fields = request
    changed = {**fields, "prompt": other}
    path = folder / "m.yaml"
    write(path, {}, [{"id": "a", **fields}, {"id": "b", **changed}], flow=False)
    first, second = load_manifest(path).jobs
    same = fields["prompt"].strip() == other.strip()
    assert (first.fingerprint == second.fingerprint) == same
