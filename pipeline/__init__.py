"""run-pipeline: a declarative, resumable batch runner for Kie AI's job API."""

from __future__ import annotations

__version__ = "0.1.0"
