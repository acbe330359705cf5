"""What the user asked for, typed: one request per command, built from argparse by
`cli.parser`, read by the commands and (the run request) by the engine's session.

Nothing past `cli.parser` sees an `argparse.Namespace`; the commands and the engine read these
frozen objects, so a command can also be driven from Python without faking a parser. A new
run flag is a field of `RunRequest` (or of `Overrides` when it overrides a manifest setting)
and its argument in the parser; the engine reads it from the request it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pipeline.manifest import Manifest, OnAmbiguous, Rate, Settings
from pipeline.paths import output_folder

if TYPE_CHECKING:
    from pipeline.simulator.config import SimConfig


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
    max_download_mb: int | None = None

    def apply(self, settings: Settings) -> Settings:
        return settings.override(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class FolderRequest:
    """A command about one manifest's output folder (`status`, `ledger`)."""

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

    @property
    def scale(self) -> float:
        """The time scale durations are multiplied by (1 against Kie; see engine.timing)."""
        return self.time_scale or 1.0

    def settings(self, manifest: Manifest) -> Settings:
        """The manifest's settings with the command line's overrides applied."""
        return self.overrides.apply(manifest.settings)


@dataclass(frozen=True)
class StatusRequest(FolderRequest):
    pass


@dataclass(frozen=True)
class LedgerRequest(FolderRequest):
    pass


@dataclass(frozen=True)
class ValidateRequest:
    manifests: tuple[str, ...]


@dataclass(frozen=True)
class SchemaRequest:
    pass


@dataclass(frozen=True)
class RebuildRequest:
    """`run-pipeline rebuild-state MANIFEST`: `base_url` names the endpoint the tasks
    belong to when run.log does not say."""

    manifest: Path
    out: Path | None = None
    simulate: bool = False
    base_url: str | None = None

    @property
    def folder(self) -> Path:
        return output_folder(self.manifest, self.out, self.simulate)

    def endpoint(self, environ: Mapping[str, str]) -> str:
        from pipeline.kie.target import endpoint

        return endpoint(self.base_url, environ, simulate=self.simulate)


@dataclass(frozen=True)
class ModelsRequest:
    """`run-pipeline models list|pull|show`."""

    action: Literal["list", "pull", "show"]
    names: tuple[str, ...] = ()  # pull: the models; show: the one model
    type: str | None = None  # list --type
    search: str | None = None  # list --search
    json: bool = False
    base_url: str | None = None
    dir: Path | None = None  # pull --dir


@dataclass(frozen=True)
class SimulateRequest:
    """`run-pipeline simulate`: where to listen, and the simulator's whole configuration."""

    host: str
    port: int
    config: SimConfig


Request = (
    RunRequest
    | ValidateRequest
    | StatusRequest
    | LedgerRequest
    | RebuildRequest
    | ModelsRequest
    | SimulateRequest
    | SchemaRequest
)
