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


# Kie's two hosts; the API key goes to these (or to what --base-url / --upload-url name) only.
DEFAULT_BASE_URL = "https://api.kie.ai"
DEFAULT_UPLOAD_URL = "https://kieai.redpandaai.co"

# The output folder's own files (see README, "Output folder").
STATE_FILE = "state.sqlite"
RUN_LOG = "run.log"
LEDGER_JSONL = "ledger.jsonl"
LEDGER_CSV = "ledger.csv"
GALLERY_FILE = "index.html"
MEDIA_DIR = "media"

# Model files a project pins or adds (`models pull` writes here; the lookup reads it).
KIE_MODELS = "kie-models"


def output_folder(manifest: Path, out: Path | None, simulate: bool) -> Path:
    """`--out`, else outputs/<manifest stem>/ (with -simulated for simulator runs)."""
    if out is not None:
        return out
    return Path("outputs") / (manifest.stem + ("-simulated" if simulate else ""))
