"""What a loaded manifest is: frozen dataclasses, no raw dicts beyond this package."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pipeline.manifest.errors import Issue
from pipeline.manifest.refs import FileRef, Ref, Resolver, UnresolvedReference, refs_in, render

OnAmbiguous = Literal["resubmit", "skip"]

_RATE = re.compile(r"^\s*([1-9][0-9]*)\s*/\s*([0-9]*\.?[0-9]+)\s*s?\s*$")


@dataclass(frozen=True)
class Rate:
    """`count` calls per `seconds`."""

    count: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Parse COUNT/SECONDS ("20/10", "10/1s"); ValueError with a readable reason."""
        match = _RATE.match(text)
        if not match or float(match.group(2)) <= 0:
            raise ValueError(f"invalid rate {text!r}: expected COUNT/SECONDS, e.g. 20/10")
        return cls(int(match.group(1)), float(match.group(2)))

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds:g}"


@dataclass(frozen=True)
class Settings:
    """Runner knobs (manifest `settings`, each overridable from the command line)."""

    concurrency: int = 1800  # create_rate x max_wait: never the limit (see README)
    create_rate: Rate = Rate(20, 10.0)
    query_rate: Rate = Rate(10, 1.0)
    poll_interval: float = 2.0
    poll_max_interval: float = 30.0
    max_wait: float = 900.0
    max_attempts: int = 3
    download: bool = True
    max_credits: Decimal | None = None  # credits are decimals (Kie bills 24.8 per second)
    on_ambiguous: OnAmbiguous = "resubmit"
    upload_max_age: float = 72_000.0  # reuse an upload this long (Kie keeps files 24 h)
    max_download_mb: int | None = None  # cap per result; None: per media kind (results/caps)

    def override(self, **changes: Any) -> Settings:
        """A copy with every change that is not None applied."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class Job:
    """One createTask call the manifest asks for.

    `input` holds the request's input as written, with any `{file: ...}`, `{output: ...}`
    or `{task: ...}` kept as a FileRef, OutputRef or TaskRef in place (see refs.py);
    `render` or `body(resolve=...)` turns them into the strings Kie needs.
    """

    id: str
    model: str
    input: Mapping[str, Any] = field(repr=False)
    callback_url: str | None
    fingerprint: str
    line: int  # where the job starts in the manifest, for messages
    credits: Decimal | None = None  # estimated credits per task; None: price unknown
    media: str | None = None  # the model's output media: "image" | "video" | "audio"
    paused: str | None = None  # the model's "paused" message, when Kie paused it
    files: tuple[FileRef, ...] = ()  # local files the input names, in input order
    upstream: tuple[str, ...] = ()  # ids of the jobs whose output or task it takes
    family: str = "createTask"  # the model's endpoint family; the client's business alone
    # (input field, model of the job whose task id it holds): a follow-up's source, which
    # some families need to shape the request (Veo's extend quality follows its source's)
    sources: tuple[tuple[str, str], ...] = ()
    download_mb: int | None = None  # the model file's cap on one result, if it states one

    def __post_init__(self) -> None:
        object.__setattr__(self, "input", MappingProxyType(dict(self.input)))

    @property
    def prompt(self) -> str:
        return str(self.input.get("prompt", ""))

    @property
    def refs(self) -> tuple[Ref, ...]:
        """Every reference of the input, in input order."""
        return tuple(refs_in(self.input))

    def render(self, resolve: Resolver | None = None) -> dict[str, Any]:
        """The createTask `input`, each reference replaced by what `resolve` gives for it.

        Raises UnresolvedReference for a job with references and no resolver: sending a
        placeholder to Kie would bill a task that cannot succeed.
        """
        if resolve is None:
            if self.files or self.upstream:
                raise UnresolvedReference(
                    f"job {self.id!r} takes files or other jobs' results: give a resolver"
                )
            return dict(self.input)
        rendered: dict[str, Any] = render(dict(self.input), resolve)
        return rendered

    def body(
        self, callback_url: str | None = None, resolve: Resolver | None = None
    ) -> dict[str, Any]:
        """The exact JSON body of the createTask call (a fresh dict each time)."""
        body: dict[str, Any] = {"model": self.model}
        url = callback_url or self.callback_url
        if url:
            body["callBackUrl"] = url
        body["input"] = self.render(resolve)
        return body


@dataclass(frozen=True)
class Manifest:
    path: Path
    name: str
    settings: Settings
    jobs: tuple[Job, ...]
    # Problems that do not stop a run (a paused model, a prompt cut by a YAML comment...).
    warnings: tuple[Issue, ...] = ()

    def job(self, job_id: str) -> Job | None:
        return next((j for j in self.jobs if j.id == job_id), None)
