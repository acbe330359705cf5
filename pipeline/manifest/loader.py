"""From a manifest file to a `Manifest`: read, parse, validate, expand, fingerprint.

All problems are collected and raised together as one ManifestError, so a user fixes a
broken manifest in one pass; nothing is half-loaded.
"""

from __future__ import annotations

import gc
import itertools
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.fingerprint import fingerprint
from pipeline.manifest.errors import Issue, ManifestError, short
from pipeline.manifest.model import Job, Manifest, Rate, Settings
from pipeline.manifest.prompts import PromptFiles
from pipeline.manifest.schema import (
    RUNNER_KEYS,
    did_you_mean,
    kind,
    manifest_validator,
    schema_issues,
    unsafe_id,
)
from pipeline.manifest.yamlsource import Located, Path_, check_size, load_yaml, read_text
from pipeline.models import DEFAULT_MODEL, Model, ModelRegistry

# Job fields a matrix may not vary: identity, where the prompt comes from, and where the
# result is announced (the prompt would make unreadable ids; write one job per prompt).
NOT_IN_MATRIX = frozenset({"id", "matrix", "prompt", "prompt_file", "callback_url"})
# Bounds on expansion, so a few lines of matrix cannot ask for billions of jobs.
MAX_VARIANTS = 1000
MAX_JOBS = 100_000
# A model name becomes a file name under schemas/models/: only plain names are looked up.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_INT_SETTINGS = frozenset({"concurrency", "max_attempts", "max_credits"})
_FLOAT_SETTINGS = frozenset({"poll_interval", "poll_max_interval", "max_wait"})
PROMPT_KEYS = ("prompt", "prompt_file")


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
    # Loading makes hundreds of thousands of long-lived, acyclic objects; the cyclic garbage
    # collector would rescan them again and again (a quarter of the time at 10,000 jobs).
    collecting = gc.isenabled()
    gc.disable()
    try:
        located = load_yaml(source, read_text(source, raw))
        return _build(located, file, registry or ModelRegistry())
    finally:
        if collecting:
            gc.enable()


def _build(located: Located, file: Path, registry: ModelRegistry) -> Manifest:
    data = located.data
    if not isinstance(data, dict):
        raise ManifestError(
            [
                located.issue(
                    (),
                    "the manifest must be a mapping with "
                    f"'version: 1' and 'jobs', not {kind(data)}",
                )
            ]
        )
    issues = schema_issues(located, manifest_validator(), data, skip_model_fields=True)
    settings = data.get("settings")
    if isinstance(settings, dict):
        issues += _rate_issues(located, settings)
    jobs_raw, defaults = data.get("jobs"), data.get("defaults")
    if not isinstance(jobs_raw, list) or not isinstance(defaults, dict | None):
        raise ManifestError(issues)
    for key in sorted({"id", "matrix"} & set(defaults or {})):
        issues.append(
            located.issue(
                ("defaults", key), f"defaults cannot set {key!r}: put it on each job", key=True
            )
        )
    expander = _Expander(located, file.parent, registry, defaults or {})
    jobs = expander.expand_all(jobs_raw)
    issues += expander.issues
    if issues:
        raise ManifestError(issues)
    name = data.get("name") or file.stem
    return Manifest(path=file, name=str(name), settings=_settings(settings or {}), jobs=tuple(jobs))


def _rate_issues(located: Located, settings: Mapping[str, Any]) -> list[Issue]:
    """Rates the schema's pattern lets through but that mean nothing, like "10/0"."""
    schema: Any = manifest_validator().schema
    pattern = re.compile(schema["$defs"]["rate"]["pattern"])
    issues = []
    for key in ("create_rate", "query_rate"):
        value = settings.get(key)
        if isinstance(value, str) and pattern.search(value):
            try:
                Rate.parse(value)
            except ValueError:
                issues.append(
                    located.issue(
                        ("settings", key),
                        f"settings.{key} {short(value)} is not a rate: SECONDS must be more than 0",
                    )
                )
    return issues


def _settings(raw: Mapping[str, Any]) -> Settings:
    values = dict(raw)
    for key in ("create_rate", "query_rate"):
        if key in values:
            values[key] = Rate.parse(str(values[key]))
    for key in _INT_SETTINGS & set(values):
        values[key] = int(values[key])  # JSON Schema counts 5.0 as an integer
    for key in _FLOAT_SETTINGS & set(values):
        values[key] = float(values[key])
    return Settings().override(**values)


def _slug(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return key.replace("_", "-") if value else "no-" + key.replace("_", "-")
    return re.sub(r"[^a-z0-9._]+", "-", str(value).lower()).strip("-") or "x"


class _Expander:
    """Turns raw job mappings into Jobs, collecting issues instead of stopping at the first."""

    def __init__(
        self, located: Located, folder: Path, registry: ModelRegistry, defaults: Mapping[str, Any]
    ) -> None:
        self.located = located
        self.registry = registry
        self.defaults = defaults
        self.issues: list[Issue] = []
        self.prompt_files = PromptFiles(folder)
        # job id -> (line of the job that made it, index of that job in `jobs`)
        self.seen: dict[str, tuple[int, int]] = {}
        self.count = 0

    def add(self, path: Path_, message: str, *, key: bool = False) -> None:
        self.issues.append(self.located.issue(path, message, key=key))

    def expand_all(self, jobs_raw: list[Any]) -> list[Job]:
        jobs: list[Job] = []
        for index, raw in enumerate(jobs_raw):
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                continue  # the manifest schema already reported it
            for variant in self.variants(index, raw):
                self.count += 1
                if self.count > MAX_JOBS:
                    self.add(
                        ("jobs", index),
                        f"the manifest makes more than {MAX_JOBS:,} "
                        "jobs; split it into several manifests",
                    )
                    return jobs
                job = self.job(index, raw, variant)
                if job is not None:
                    jobs.append(job)
        return jobs

    def variants(self, index: int, raw: Mapping[str, Any]) -> list[dict[str, tuple[int, Any]]]:
        """The job's matrix combinations as {field: (position in its list, value)}."""
        matrix = raw.get("matrix") or {}
        if not isinstance(matrix, dict) or not all(
            isinstance(v, list) and v for v in matrix.values()
        ):
            return []  # the manifest schema already reported it
        for bad in sorted(set(matrix) & NOT_IN_MATRIX):
            self.add(
                ("jobs", index, "matrix", bad),
                f"matrix cannot vary {bad!r}"
                + (": write one job per prompt" if bad.startswith("prompt") else ""),
                key=True,
            )
        keys = [k for k in matrix if k not in NOT_IN_MATRIX]
        total = math.prod(len(matrix[k]) for k in keys)
        if total > MAX_VARIANTS:
            self.add(
                ("jobs", index, "matrix"),
                f"matrix makes {total:,} variants, over the limit of {MAX_VARIANTS:,} per job",
                key=True,
            )
            return []
        lists = [list(enumerate(matrix[k])) for k in keys]
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*lists)]

    def job(
        self, index: int, raw: Mapping[str, Any], variant: Mapping[str, tuple[int, Any]]
    ) -> Job | None:
        base: Path_ = ("jobs", index)
        values = {k: v for k, (_, v) in variant.items()}
        job_id = "-".join([raw["id"], *(_slug(k, v) for k, v in values.items())])
        id_at: Path_ = (*base, "matrix") if variant else (*base, "id")
        if (why := unsafe_id(job_id)) is not None:
            # Same words as the schema's message for a plain id, so the two merge into one.
            self.add(id_at, f"matrix makes {why}" if variant else why, key=bool(variant))
            return None
        line = self.located.where(base)[0]
        if job_id in self.seen:
            first_line, first_index = self.seen[job_id]
            self.add(
                id_at,
                f"matrix makes job id {job_id!r} more than once (repeated values?)"
                if first_index == index
                else f"duplicate job id {job_id!r} (also at line {first_line})",
                key=bool(variant),
            )
            return None
        self.seen[job_id] = (line, index)

        prompt_at = self.prompt_source(base, raw)

        def source(field: str) -> Path_:
            """The node that set `field` for this job: matrix, job, then defaults."""
            if field in variant:
                return (*base, "matrix", field, variant[field][0])
            if field == "prompt":
                return prompt_at or base
            if field in raw:
                return (*base, field)
            if field in self.defaults:
                return ("defaults", field)
            return base

        merged = {**self.defaults, **{k: v for k, v in raw.items() if k != "matrix"}, **values}
        count = len(self.issues)
        model = self.model(merged.get("model", DEFAULT_MODEL), source("model"))
        prompt = self.prompt(prompt_at, raw)
        if model is None or prompt is None:
            return None
        task_input = {
            **model.defaults(),
            **{k: v for k, v in merged.items() if k not in RUNNER_KEYS},
            "prompt": prompt,
        }

        def where(path: Path_) -> Path_:
            # Model schema paths are relative to the input: map the field to its source.
            return source(str(path[2])) if len(path) > 2 else base

        self.issues += schema_issues(
            self.located, model.validator, task_input, base, where=where, model=model.name
        )
        if len(self.issues) > count:
            return None
        callback = merged.get("callback_url")
        return Job(
            id=job_id,
            model=model.name,
            input=task_input,
            callback_url=callback if isinstance(callback, str) else None,
            fingerprint=fingerprint(model.name, task_input),
            line=line,
        )

    def model(self, name: Any, at: Path_) -> Model | None:
        """The job's Model, or None (reported) when unknown."""
        if not isinstance(name, str):
            return None  # type error already reported by the manifest schema
        model = self.registry.get(name) if _MODEL_NAME.fullmatch(name) else None
        if model is None:
            known = self.registry.names()
            self.add(
                at,
                f"unknown model {short(name)}"
                + did_you_mean(name, known)
                + f" (known: {', '.join(known)})",
            )
        return model

    def prompt_source(self, base: Path_, raw: Mapping[str, Any]) -> Path_ | None:
        """Where the job's prompt is set: its own prompt or prompt_file, else the defaults'.

        Exactly one of the two must be given; otherwise report it and return None.
        """
        own = [k for k in PROMPT_KEYS if k in raw]
        chosen = own or [k for k in PROMPT_KEYS if k in self.defaults]
        at: Path_ = (*base, chosen[0]) if own else ("defaults", chosen[0]) if chosen else base
        if len(chosen) != 1:
            what = (
                "both 'prompt' and 'prompt_file'"
                if chosen
                else "neither 'prompt' nor 'prompt_file'"
            )
            self.add(at, f"job has {what}: give exactly one")
            return None
        return at

    def prompt(self, at: Path_ | None, raw: Mapping[str, Any]) -> str | None:
        """The job's prompt text, read from the node `prompt_source` found."""
        if at is None:
            return None
        value = (self.defaults if at[0] == "defaults" else raw)[str(at[-1])]
        if not isinstance(value, str):
            return None  # type error already reported by the manifest schema
        if at[-1] == "prompt":
            # Outer whitespace is YAML layout (a `|` block ends with a newline), not meaning:
            # strip it, as for prompt files, so the request and fingerprint do not depend on
            # the scalar style. A blank prompt stays as written, for the schema to refuse.
            return value.strip() or value
        if not value:
            return None  # an empty prompt_file is reported by the manifest schema
        text, problem = self.prompt_files.read(value)
        if problem is not None:
            self.add(at, problem)
        return text
