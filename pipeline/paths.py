"""Where things are: the files run-pipeline ships and the files it writes.

Shared by the command line, the engine, the state and the simulator, so that each name is
decided once.
"""

from __future__ import annotations

from pathlib import Path


def schemas_dir() -> Path:
    """The folder holding manifest.schema.json and models/: inside the installed package
    (the wheel ships `schemas/` as `pipeline/_schemas`), else the repository's `schemas/`."""
    here = Path(__file__).resolve().parent
    packaged = here / "_schemas"
    if packaged.is_dir():
        return packaged
    return here.parent / "schemas"
