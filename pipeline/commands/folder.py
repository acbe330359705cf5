"""Reading an output folder's state for the commands that do not run anything."""

from __future__ import annotations

from pathlib import Path

from pipeline.engine.planner import Decision, PlanOptions, plan
from pipeline.errors import StateError
from pipeline.manifest import Manifest
from pipeline.paths import STATE_FILE
from pipeline.state.folder import earlier_work
from pipeline.state.store import StateStore


def require_state(folder: Path, manifest: Manifest | None = None) -> None:
    """No state file usually means the wrong folder: say where we looked (a relative
    folder, from where), and create nothing. A folder with earlier work but no state lost
    its state: point to rebuild-state."""
    if (folder / STATE_FILE).exists():
        return
    where = f"{folder}" if folder.is_absolute() else f"{folder} (from {Path.cwd()})"
    evidence = earlier_work(folder) if folder.is_dir() else None
    if evidence is not None:
        name = manifest.path if manifest is not None else "MANIFEST"
        raise StateError(
            f"no state file in {where}, but {evidence}: the state was lost. Rebuild it from "
            f"the ledger and log with `run-pipeline rebuild-state {name} --out {folder}`"
        )
    raise StateError(
        f"no state file in {where}: this manifest has not run into that folder. A run "
        "with --simulate keeps its state in outputs/<name>-simulated/ (pass --simulate), "
        "and a run with --out DIR in DIR (pass the same --out)"
    )


def read_decisions(
    manifest: Manifest,
    folder: Path,
    options: PlanOptions,
    *,
    missing_ok: bool,
    readonly: bool = True,
    rebind: bool = False,
) -> tuple[list[Decision], bool]:
    """The decisions from the folder's state file, read-only (a file of an older schema is
    then read through a copy migrated in memory; `readonly=False` migrates the file itself,
    for a caller holding the folder's lock). Without a state file every job is new when
    `missing_ok` (a dry run before the first run), else see `require_state`. `rebind`: read
    a folder bound to another manifest path (--rebind; the run itself records the new one)."""
    state_path = folder / STATE_FILE
    if not state_path.exists():
        if missing_ok:
            return plan(manifest, {}, options), False
        require_state(folder, manifest)
    bound_to = str(manifest.path.resolve())
    with StateStore.open(state_path, readonly=readonly, manifest=bound_to, rebind=rebind) as store:
        return plan(manifest, store.attempts_by_job(), options), True
