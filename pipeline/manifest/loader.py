"""From a manifest file to a `Manifest`: read, parse, validate, expand, fingerprint.

All problems are collected and raised together as one ManifestError, so a user fixes a
broken manifest in one pass; nothing is half-loaded.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.fingerprint import fingerprint
from pipeline.manifest.errors import Issue, ManifestError
from pipeline.manifest.model import Job, Manifest, Rate, Settings
from pipeline.manifest.schema import (
    RUNNER_KEYS,
    did_you_mean,
    kind,
    label,
    manifest_validator,
    schema_issues,
)
from pipeline.manifest.yamlsource import Located, Path_, check_size, load_yaml, read_text
from pipeline.models import DEFAULT_MODEL, ModelRegistry

MAX_PROMPT_FILE_BYTES = 1024 * 1024
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def load_manifest(path: str | Path, registry: ModelRegistry | None = None) -> Manifest:
    """Load and validate a manifest; raise ManifestError listing every problem."""
    source = str(path)
    file = Path(path)
    try:
        # Check the size before reading: a 5 GB file must not be read to be refused.
        check_size(source, file.stat().st_size)
        raw = file.read_bytes()
    except IsADirectoryError:
        raise ManifestError([Issue(source, 1, 1, "is a directory, not a manifest file")]) from None
    except OSError as exc:
        raise ManifestError([Issue(source, 1, 1, f"cannot read: {exc.strerror}")]) from None
    located = load_yaml(source, read_text(source, raw))
    return _build(located, file, registry or ModelRegistry())


def _build(located: Located, file: Path, registry: ModelRegistry) -> Manifest:
    data = located.data
    if not isinstance(data, dict):
        raise ManifestError([located.issue((), "the manifest must be a mapping with "
                                           f"'version: 1' and 'jobs', not {kind(data)}")])
    issues = schema_issues(located, manifest_validator(), data, skip_model_fields=True)
    jobs_raw, defaults = data.get("jobs"), data.get("defaults")
    if not isinstance(jobs_raw, list) or not isinstance(defaults, dict | None):
        raise ManifestError(issues)
    expander = _Expander(located, file.parent, registry, defaults or {})
    jobs = expander.expand_all(jobs_raw)
    issues += expander.issues
    if issues:
        raise ManifestError(issues)
    name = data.get("name") or file.stem
    return Manifest(path=file, name=str(name), settings=_settings(data.get("settings") or {}),
                    jobs=tuple(jobs))


def _settings(raw: Mapping[str, Any]) -> Settings:
    values = dict(raw)
    for key in ("create_rate", "query_rate"):
        if key in values:
            values[key] = Rate.parse(str(values[key]))
    return Settings().override(**values)


def _slug(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return key.replace("_", "-") if value else "no-" + key.replace("_", "-")
    return re.sub(r"[^a-z0-9._]+", "-", str(value).lower()).strip("-") or "x"


class _Expander:
    """Turns raw job mappings into Jobs, collecting issues instead of stopping at the first."""

    def __init__(self, located: Located, folder: Path, registry: ModelRegistry,
                 defaults: Mapping[str, Any]) -> None:
        self.located = located
        self.folder = folder.resolve()
        self.registry = registry
        self.defaults = defaults
        self.issues: list[Issue] = []
        self.seen: dict[str, int] = {}

    def add(self, path: Path_, message: str, *, key: bool = False) -> None:
        self.issues.append(self.located.issue(path, message, key=key))

    def expand_all(self, jobs_raw: list[Any]) -> list[Job]:
        jobs: list[Job] = []
        for index, raw in enumerate(jobs_raw):
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                continue  # the manifest schema already reported it
            matrix = raw.get("matrix") or {}
            if not isinstance(matrix, dict) or not all(
                isinstance(v, list) and v for v in matrix.values()
            ):
                continue
            for bad in sorted(set(matrix) & {"id", "matrix", "prompt_file", "callback_url"}):
                self.add(("jobs", index, "matrix", bad), f"matrix cannot vary {bad!r}", key=True)
            keys = [k for k in matrix if k not in {"id", "matrix", "prompt_file", "callback_url"}]
            for combo in itertools.product(*(matrix[k] for k in keys)):
                variant = dict(zip(keys, combo, strict=True))
                job = self.job(index, raw, variant)
                if job is not None:
                    jobs.append(job)
        return jobs

    def job(self, index: int, raw: Mapping[str, Any], variant: Mapping[str, Any]) -> Job | None:
        base: Path_ = ("jobs", index)
        job_id = "-".join([raw["id"], *(_slug(k, v) for k, v in variant.items())])
        id_at: Path_ = (*base, "matrix") if variant else (*base, "id")
        if variant and not _ID.match(job_id):
            self.add(id_at, f"matrix makes job id {job_id!r}, which is not a safe file name "
                     "(lowercase letters, digits, '.', '_', '-', at most 64 characters)")
            return None
        line = self.located.where(base)[0]
        if job_id in self.seen:
            self.add(id_at, f"duplicate job id {job_id!r} (also at line {self.seen[job_id]})")
            return None
        self.seen[job_id] = line

        def source(field: str) -> Path_:
            """The node that set `field` for this job: matrix, job, then defaults."""
            if field in variant:
                return (*base, "matrix", field)
            if field in raw:
                return (*base, field)
            if field in self.defaults:
                return ("defaults", field)
            return base

        merged = {**self.defaults, **{k: v for k, v in raw.items() if k != "matrix"}, **variant}
        count = len(self.issues)
        model_name = merged.get("model", DEFAULT_MODEL)
        model = self.registry.get(model_name) if isinstance(model_name, str) else None
        if model is None:
            self.add(source("model"), f"unknown model {model_name!r}"
                     + did_you_mean(str(model_name), self.registry.names())
                     + f" (known: {', '.join(self.registry.names())})")
        prompt = self.prompt(raw, source)
        if model is None or prompt is None:
            return None
        task_input = {**model.defaults(),
                      **{k: v for k, v in merged.items() if k not in RUNNER_KEYS},
                      "prompt": prompt}

        def where(path: Path_) -> Path_:
            # Model schema paths are relative to the input: map the field to its source.
            return source(str(path[2])) if len(path) > 2 else base

        self.issues += schema_issues(self.located, model.validator, task_input, base,
                                     where=where)
        if len(self.issues) > count:
            return None
        callback = merged.get("callback_url")
        return Job(id=job_id, model=model.name, input=task_input,
                   callback_url=callback if isinstance(callback, str) else None,
                   fingerprint=fingerprint(model.name, task_input), line=line)

    def prompt(self, raw: Mapping[str, Any], source: Any) -> str | None:
        """The job's prompt: its own prompt or prompt_file, else the defaults' (exactly one)."""
        own = [k for k in ("prompt", "prompt_file") if k in raw]
        from_defaults = [k for k in ("prompt", "prompt_file") if k in self.defaults]
        chosen = own or from_defaults
        where = source(chosen[0]) if chosen else source("id")[:-1]
        if len(chosen) != 1:
            what = "both 'prompt' and 'prompt_file'" if chosen else "neither 'prompt' nor " \
                "'prompt_file'"
            self.add(where, f"job has {what}: give exactly one")
            return None
        value = (raw if own else self.defaults)[chosen[0]]
        if not isinstance(value, str):
            return None  # type error already reported by the manifest schema
        if chosen[0] == "prompt":
            return value
        return self.read_prompt_file(value, where)

    def read_prompt_file(self, rel: str, where: Path_) -> str | None:
        if Path(rel).is_absolute() or rel.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", rel):
            self.add(where, f"prompt_file {rel!r} must be a path relative to the manifest")
            return None
        target = (self.folder / rel).resolve()
        if not target.is_relative_to(self.folder):
            self.add(where, f"prompt_file {rel!r} points outside the manifest's folder "
                     "(through '..' or a symbolic link); refused")
            return None
        if not target.is_file():
            self.add(where, f"prompt_file {rel!r} not found (looked in {self.folder})")
            return None
        if target.stat().st_size > MAX_PROMPT_FILE_BYTES:
            self.add(where, f"prompt_file {rel!r} is larger than 1 MB")
            return None
        try:
            return target.read_text(encoding="utf-8-sig").strip()
        except UnicodeDecodeError:
            self.add(where, f"prompt_file {rel!r} is not valid UTF-8 text")
        except OSError as exc:
            self.add(where, f"prompt_file {rel!r} cannot be read: {exc.strerror}")
        return None


__all__ = ["label", "load_manifest"]
