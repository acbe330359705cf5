"""Reading Kie's catalog under its budget, and writing pulled models to kie-models/.

All catalog calls (list, schema, price) share one budget of 1 per second per account, so
they go through one `CatalogSession` whose limiter holds each call's slot until a second
after its answer (see pacing.py for why that, and not the send time, keeps us under).
A 429 anyway (someone else uses the account) backs off and retries a few times.

A model's file is written only once its document converted completely, and atomically, so a
surprising answer never leaves a half-written or wrong file; a re-pull that would write the
same thing (the fetch date aside) writes nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pipeline.errors import EXIT_OK, EXIT_STOPPED, EXIT_USAGE
from pipeline.kie.client import KieClient, KieError, RateLimited
from pipeline.kie.pacing import SlidingWindowLimiter
from pipeline.manifest import Rate
from pipeline.models import openapi
from pipeline.models.registry import MAX_MODEL_FILE
from pipeline.safefiles import odd_entry, read_bounded

CATALOG_RATE = Rate(1, 1.0)
RETRIES_ON_429 = 5
T = TypeVar("T")


class CatalogSession:
    """A KieClient's catalog calls, paced under one shared budget."""

    def __init__(self, client: KieClient, rate: Rate | None = None) -> None:
        self.client = client
        # Read when the session starts (not bound at import), so a test can run the budget
        # on a compressed clock: the shape of the pacing is the same at any scale.
        self.limiter = SlidingWindowLimiter(rate or CATALOG_RATE)

    async def _paced(self, call: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(1, RETRIES_ON_429 + 1):
            async with self.limiter.slot():
                try:
                    result = await call()
                except RateLimited:
                    self.limiter.rejected()
                    if attempt == RETRIES_ON_429:
                        raise
                    continue
            self.limiter.succeeded()
            return result
        raise AssertionError("unreachable")

    async def list_models(
        self, task_type: str | None = None, search: str | None = None
    ) -> list[dict[str, Any]]:
        return await self._paced(lambda: self.client.list_models(task_type, search))

    async def model_schema(self, model: str) -> Any:
        return await self._paced(lambda: self.client.model_schema(model))

    async def model_price(self, model: str) -> str | None:
        return await self._paced(lambda: self.client.model_price(model))


def file_for(folder: Path, model: str) -> Path:
    return folder / f"{model}.json"


def dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


class UnsafePath(Exception):
    """Where a model file would go is a link, a file where a folder is due, or a special
    file: nothing is written there."""


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(read_bounded(path, MAX_MODEL_FILE).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _folders(dest: Path, folder: Path) -> None:
    """Make `folder` (inside `dest`) and every folder between, refusing a link or a file
    where a folder is due: a link would send the model file elsewhere."""
    for part in [dest, *reversed(folder.relative_to(dest).parents[:-1]), folder]:
        where = part if part == dest else dest / part
        what = odd_entry(where, folder=True)
        if what is not None:
            raise UnsafePath(f"{where} is {what}, not a folder; nothing written there")
        where.mkdir(exist_ok=True)


def write_model(path: Path, new: dict[str, Any], dest: Path | None = None) -> tuple[str, list[str]]:
    """Write `new` unless the file already says the same (its fetch date aside).
    Returns ("new" | "updated" | "unchanged", the changes for "updated"). The folders on
    the way (from `dest`) must be real folders and the file a regular file or absent; the
    temporary file is made new and exclusive (a planted link under its name is never
    written through). UnsafePath or OSError when it cannot be written."""
    what = odd_entry(path)
    if what is not None:
        raise UnsafePath(f"{path} is {what}; nothing written there")
    old = _read(path)
    if old is not None:
        same = {**new, "source": {**new["source"], "fetched": old.get("source", {}).get("fetched")}}
        if same == old:
            return "unchanged", []
    _folders(dest or path.parent, path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a model file is not
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(dump(new))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ("new", []) if old is None else ("updated", openapi.changes(old, new))


@dataclass
class PullReport:
    lines: list[str] = field(default_factory=list)  # for stdout
    errors: list[str] = field(default_factory=list)  # for stderr
    exit_code: int = EXIT_OK

    def fail(self, message: str, code: int) -> None:
        self.errors.append(message)
        self.exit_code = max(self.exit_code, code)


async def pull(
    session: CatalogSession,
    models: Sequence[str],
    dest: Path,
    *,
    base_url: str,
    fetched: str,
    previous: Callable[[str], dict[str, Any] | None],
) -> PullReport:
    """Pull each model into `dest`. One list call (titles and task types are only there),
    then the schema and the price of each model. `previous(name)` is the model file we had
    (for the price rule and a paused status the catalog does not carry)."""
    report = PullReport()
    listing = {m.get("model"): m for m in await session.list_models()}
    for name in models:
        try:
            document = await session.model_schema(name)
            openapi.input_schema(name, document)  # refuse before spending a price call
            prose = await session.model_price(name)
            data = openapi.model_file(
                name,
                document,
                listing=listing.get(name),
                pricing_desc=prose,
                source_url=f"{base_url}/api/v1/models/{name}/schema",
                fetched=fetched,
                previous=previous(name),
            )
        except openapi.Refused as exc:
            report.fail(str(exc), EXIT_USAGE)
            continue
        except (openapi.CatalogError, KieError) as exc:
            report.fail(f"{name}: unexpected catalog answer, nothing written: {exc}", EXIT_STOPPED)
            continue
        path = file_for(dest, name)
        try:
            state, changed = write_model(path, data, dest)
        except UnsafePath as exc:
            report.fail(f"{name}: {exc}", EXIT_STOPPED)
            continue
        except OSError as exc:
            report.fail(f"{name}: cannot write {path}: {exc.strerror or exc}", EXIT_STOPPED)
            continue
        if state == "unchanged":
            report.lines.append(f"{path}: unchanged, not rewritten")
        elif state == "new":
            report.lines.append(str(path))
        else:
            report.lines.append(f"{path} (updated)")
            report.lines.extend(f"  {line}" for line in changed)
    return report
