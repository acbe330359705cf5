"""The manifest: YAML + JSON Schema + expansion into frozen dataclasses."""

from __future__ import annotations

from pipeline.manifest.errors import Issue, ManifestError
from pipeline.manifest.loader import load_manifest
from pipeline.manifest.model import Job, Manifest, OnAmbiguous, Rate, Settings

__all__ = [
    "Issue",
    "Job",
    "Manifest",
    "ManifestError",
    "OnAmbiguous",
    "Rate",
    "Settings",
    "load_manifest",
]
