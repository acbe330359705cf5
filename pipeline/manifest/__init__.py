"""The manifest: YAML + JSON Schema + expansion into frozen dataclasses."""

from __future__ import annotations

from pipeline.manifest.errors import Issue, ManifestError
from pipeline.manifest.loader import load_manifest
from pipeline.manifest.model import Job, Manifest, OnAmbiguous, Rate, Settings
from pipeline.manifest.refs import FileRef, OutputRef, Ref, Resolver, TaskRef, UnresolvedReference

__all__ = [
    "FileRef",
    "Issue",
    "Job",
    "Manifest",
    "ManifestError",
    "OnAmbiguous",
    "OutputRef",
    "Rate",
    "Ref",
    "Resolver",
    "Settings",
    "TaskRef",
    "UnresolvedReference",
    "load_manifest",
]
