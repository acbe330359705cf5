"""What the user asked for, typed: built from argparse by the CLI, read by the commands.

Nothing past `cli.py` sees an `argparse.Namespace`; the commands and the engine read these
frozen objects, so a command can also be driven from Python without faking a parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path

from pipeline.manifest import OnAmbiguous, Rate, Settings

STATE_FILE = "state.sqlite"


def output_folder(manifest: Path, out: Path | None, simulate: bool) -> Path:
    """`--out`, else outputs/<manifest stem>/ (with -simulated for simulator runs)."""
    if out is not None:
        return out
    return Path("outputs") / (manifest.stem + ("-simulated" if simulate else ""))


@dataclass(frozen=True)
class Overrides:
    """Settings given on the command line; None means "as the manifest says"."""

    concurrency: int | None = None
    create_rate: Rate | None = None
    query_rate: Rate | None = None
    poll_interval: float | None = None
    poll_max_interval: float | None = None
    max_wait: float | None = None
    max_attempts: int | None = None
    download: bool | None = None
    max_credits: Decimal | None = None
    on_ambiguous: OnAmbiguous | None = None
    upload_max_age: float | None = None

    def apply(self, settings: Settings) -> Settings:
        return settings.override(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class FolderRequest:
    """A command about one manifest's output folder (status, ledger)."""

    manifest: Path
    out: Path | None = None
    simulate: bool = False
    json: bool = False

    @property
    def folder(self) -> Path:
        return output_folder(self.manifest, self.out, self.simulate)


@dataclass(frozen=True)
class RunRequest:
    """`run-pipeline MANIFEST [options]`, with or without --dry-run."""

    manifest: Path
    out: Path | None = None
    simulate: bool = False
    base_url: str | None = None
    upload_url: str | None = None
    dry_run: bool = False
    overrides: Overrides = field(default_factory=Overrides)
    retry_failed: bool = False
    partial: bool = False
    callback_url: str | None = None
    callback_listen: tuple[str, int] | None = None
    time_scale: float | None = None
    seed: int = 0
    sim_credits: int | None = None  # --credits: the simulated account's balance
    rebind: bool = False  # take over a folder bound to another manifest path
    quiet: bool = False
    verbose: bool = False

    @property
    def folder(self) -> Path:
        return output_folder(self.manifest, self.out, self.simulate)


@dataclass(frozen=True)
class ValidateRequest:
    manifests: tuple[str, ...]
