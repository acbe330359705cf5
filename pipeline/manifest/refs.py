"""Inputs that are not written in the manifest: a local file, another job's result or task.

A job's `input` keeps these as typed references, in place of the string they stand for
(`image_urls: [FileRef(...)]`), until the runner knows what to put there: the upload's URL,
the upstream job's result URL or its task id. `render` does that substitution; the
fingerprint uses `identity` instead, which names a file by its content and an upstream by
its own fingerprint, so that the job's identity does not depend on URLs that change.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FileRef:
    """`{file: PATH}`: a local file, checked and hashed when the manifest was loaded."""

    name: str  # PATH as written in the manifest (relative to its folder)
    path: Path  # the resolved absolute path, inside the manifest's folder
    sha256: str  # hex digest of the content the fingerprint was computed from
    media: str  # "image" | "video" | "audio", from the file's magic bytes
    extension: str  # the true extension (from the magic bytes), without the dot: "png"
    size: int  # bytes
    line: int
    col: int


@dataclass(frozen=True)
class OutputRef:
    """`{output: JOB, index: N}`: the URL of result N (1-based) of job JOB."""

    job: str
    index: int = 1
    line: int = 0
    col: int = 0


@dataclass(frozen=True)
class TaskRef:
    """`{task: JOB}`: the task id of JOB's successful task."""

    job: str
    line: int = 0
    col: int = 0


Ref = FileRef | OutputRef | TaskRef
REF_TYPES = (FileRef, OutputRef, TaskRef)
# file -> uploaded URL; output -> the upstream result's URL; task -> the upstream task id.
Resolver = Callable[[Ref], str]


class UnresolvedReference(Exception):
    """A job with references was asked for its request without a resolver."""


def refs_in(value: Any) -> Iterator[Ref]:
    """Every reference in an input value, in order (top level, or inside a list)."""
    if isinstance(value, REF_TYPES):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from refs_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs_in(item)


def render(value: Any, resolve: Resolver) -> Any:
    """`value` with each reference replaced by the string `resolve` gives for it."""
    if isinstance(value, REF_TYPES):
        return resolve(value)
    if isinstance(value, Mapping):
        return {k: render(v, resolve) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, resolve) for v in value]
    return value


def describe(ref: Ref) -> str:
    """A reference as a person reads it: where the value sent to Kie comes from."""
    if isinstance(ref, FileRef):
        return f"file {ref.name}"
    if isinstance(ref, OutputRef):
        return f"result {ref.index} of {ref.job}" if ref.index != 1 else f"result of {ref.job}"
    return f"task of {ref.job}"


def as_text(value: Any) -> str:
    """An input value as a person reads it: strings as written, anything else as in the
    JSON body sent to Kie (true, 10, null), a reference as where its value comes from."""
    value = render(value, describe)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def shown(model: str, input: Mapping[str, Any]) -> dict[str, str]:
    """A job version as the gallery shows it (model, then each input field as text): kept
    with each submission, so that an earlier take can say what it was made from."""
    return {"model": model, **{key: as_text(value) for key, value in input.items()}}


def identity(value: Any, fingerprints: Mapping[str, str]) -> Any:
    """`value` as the fingerprint sees it: a file is its sha256, an upstream its fingerprint.

    The markers are mappings, which no string field can hold, so a reference can never
    fingerprint like a literal value.
    """
    if isinstance(value, FileRef):
        return {"file": {"sha256": value.sha256}}
    if isinstance(value, OutputRef):
        return {"output": {"fingerprint": fingerprints[value.job], "index": value.index}}
    if isinstance(value, TaskRef):
        return {"task": {"fingerprint": fingerprints[value.job]}}
    if isinstance(value, Mapping):
        return {k: identity(v, fingerprints) for k, v in value.items()}
    if isinstance(value, list):
        return [identity(v, fingerprints) for v in value]
    return value
