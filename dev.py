#!/usr/bin/env python3
"""One-command set-up and run, on a machine that has only python3.

    python3 dev.py demo   # creates .venv, installs, runs the demo batch on the built-in simulator
    python3 dev.py test   # creates .venv, installs, runs ruff, mypy and the whole test suite
    python3 dev.py catalog  # regenerates schemas/models/ from Kie's docs snapshot + overlay

Extra arguments after the command are passed on (to run-pipeline, or to pytest).
The virtual environment is (re)installed only when pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed-from"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
LINTED = ["pipeline", "tests", "benchmarks", "dev.py"]


def ensure_venv() -> None:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        print(f"dev.py: creating {VENV.relative_to(ROOT)} ...", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("dev.py: installing run-pipeline and its dev tools ...", file=sys.stderr, flush=True)
    pip = [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(digest)


def run(cmd: list[str]) -> int:
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "catalog"}:
        print(__doc__, file=sys.stderr)
        return 2
    ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "demo":
        return run([str(BIN / "run-pipeline"), "manifests/campaign.yaml", "--simulate", *rest])
    if command == "catalog":
        return run([str(PY), "-m", "pipeline.models.generate", *rest])
    for step in (
        [str(BIN / "ruff"), "format", "--check", *LINTED],
        [str(BIN / "ruff"), "check", *LINTED],
        [str(BIN / "mypy")],
    ):
        if code := run(step):
            return code
    return run([str(PY), "-m", "pytest", *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
