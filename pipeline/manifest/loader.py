"""From a manifest file to a `Manifest`: read, parse, validate, expand, fingerprint.

All problems are collected and raised together as one ManifestError, so a user fixes a
broken manifest in one pass; nothing is half-loaded.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.manifest.errors import Issue, ManifestError, short
from pipeline.manifest.expander import Expander
from pipeline.manifest.graph import link
from pipeline.manifest.model import Manifest, Rate, Settings
from pipeline.manifest.schema import kind, manifest_validator, schema_issues
from pipeline.manifest.yamlsource import Located, check_size, load_yaml, read_text
from pipeline.models.pricing import as_credits
from pipeline.models.registry import ModelRegistry

_INT_SETTINGS = frozenset({"concurrency", "max_attempts", "max_download_mb"})
_FLOAT_SETTINGS = frozenset({"poll_interval", "poll_max_interval", "max_wait", "upload_max_age"})


def load_manifest(path: str | Path, registry: ModelRegistry | None = None) -> Manifest:
    """Load and validate a manifest; raise ManifestError listing every problem.

    Models are looked up in `registry`, by default the manifest's: the `kie-models/`
    folders from the manifest's folder up, then the catalog bundled with run-pipeline.
    """
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
        return _build(located, file, registry or ModelRegistry.for_manifest(file))
    finally:
        if collecting:
            gc.enable()


def _build(located: Located, file: Path, registry: ModelRegistry) -> Manifest:
    data = located.data
    warnings = located.warnings
    if not isinstance(data, dict):
        raise ManifestError(
            [
                located.issue(
                    (),
                    "the manifest must be a mapping with "
                    f"'version: 1' and 'jobs', not {kind(data)}",
                ),
                *located.issues,
            ],
            warnings,
        )
    issues = located.issues + schema_issues(
        located, manifest_validator(), data, skip_model_fields=True
    )
    settings = data.get("settings")
    if isinstance(settings, dict):
        issues += _rate_issues(located, settings)
    jobs_raw, defaults = data.get("jobs"), data.get("defaults")
    if not isinstance(jobs_raw, list) or not isinstance(defaults, dict | None):
        raise ManifestError(issues, warnings)
    for key in sorted({"id", "matrix"} & set(defaults or {})):
        issues.append(
            located.issue(
                ("defaults", key), f"defaults cannot set {key!r}: put it on each job", key=True
            )
        )
    expander = Expander(located, file.parent, registry, defaults or {})
    drafts = expander.expand_all(jobs_raw)
    issues += expander.issues
    warnings = warnings + expander.warnings
    jobs, problems = link(located, drafts, expander.seen)
    issues += problems
    if issues:
        raise ManifestError(issues, warnings)
    name = data.get("name") or file.stem
    return Manifest(
        path=file,
        name=str(name),
        settings=_settings(settings or {}),
        jobs=tuple(jobs),
        warnings=tuple(sorted(set(warnings))),
    )


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
    if "max_credits" in values:  # 1500.5 stays 1500.5: a float's shortest form, exactly
        values["max_credits"] = as_credits(values["max_credits"])
    return Settings().override(**values)
