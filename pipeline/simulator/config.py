"""Simulator settings: one frozen dataclass, plus the run-time changes `/__sim/control` accepts.

Durations are given in *real Kie* seconds and multiplied by `time_scale` where they are used,
so a test can run the realistic distribution a hundred times faster without re-tuning it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pipeline.models.pricing import as_credits


class ConfigError(ValueError):
    """A setting (from the CLI, Python or /__sim/control) that cannot be used."""


@dataclass(frozen=True)
class FaultRates:
    """Probability in [0, 1] of each injected fault, drawn per request (or per task)."""

    http_500: float = 0.0  # HTML 500 page, before any effect
    reset: float = 0.0  # connection reset without an answer, before any effect
    lost_answer: float = 0.0  # createTask: task created and charged, then no answer
    slow: float = 0.0  # answer held back for `slow_delay` seconds (after the effect)
    malformed_json: float = 0.0  # HTTP 200 with a broken JSON body (after the effect)
    truncated_download: float = 0.0  # file body cut short of its Content-Length
    generation_failure: float = 0.0  # task ends `fail` with failCode "501"
    stuck: float = 0.0  # task never finishes
    # Hostile servers (issue 18); drawn from their own seeded stream, so adding them leaves
    # the draws of the faults above, and so every seeded replay, unchanged.
    gateway_error: float = 0.0  # HTTP 502/503/504 with an HTML page (after the effect)
    slow_drip: float = 0.0  # the whole answer sent one byte every `drip_interval` seconds
    bad_range: float = 0.0  # ranged download: 206 whose Content-Range starts elsewhere
    deep_json: float = 0.0  # HTTP 200 with 100,000 nested `[` (after the effect)
    gzip_bomb: float = 0.0  # gzip-encoded answer inflating to `gzip_bomb_bytes`
    redirect_loop: float = 0.0  # result files: an endless chain of 302 redirects
    # recordInfo's other answers (issue 23, simulator/records.py); drawn per task at its
    # create from a stream of their own, so older seeded replays stay as they were.
    failed_answer: float = 0.0  # the task fails; recordInfo answers body code 501
    expired_answer: float = 0.0  # the task never ends; after 10 minutes, body code 408
    # Answers that look valid but are wrong (issue 26), from a stream of their own as well.
    gateway_json: float = 0.0  # HTTP 502/503/504 with a JSON body {"code": 504, ...} (after)
    error_500_body: float = 0.0  # HTTP 200 {"code": 500, "msg": "Internal server error"} (after)
    foreign_record: float = 0.0  # recordInfo answered with another task's record (a cache)
    wrong_media: float = 0.0  # a task's results are not its model's media (a video for an image)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            rate = getattr(self, f.name)
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise ConfigError(f"fault rate {f.name} must be a number in [0, 1], got {rate!r}")

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)}


FAULT_KINDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FaultRates))
HOSTILE_KINDS = (
    "gateway_error",
    "slow_drip",
    "bad_range",
    "deep_json",
    "gzip_bomb",
    "redirect_loop",
)
ANSWER_KINDS = ("gateway_json", "error_500_body", "foreign_record", "wrong_media")


@dataclass(frozen=True)
class SimConfig:
    api_keys: tuple[str, ...] = ("sim-key",)
    credits: int = 100_000  # starting balance of every account
    time_scale: float = 1.0  # multiplies every duration below
    seed: int = 0
    create_limit: tuple[int, float] = (20, 10.0)  # creates per sliding window (s), per account
    query_limit: tuple[int, float] = (10, 1.0)  # recordInfo/download-url/credit, per key
    http_429: bool = False  # rate limiting as a real HTTP 429 instead of HTTP 200 + code 429
    # Generation latency: lognormal around the median, clamped. sigma 0.45 puts ~95% of tasks
    # between about 50 s and 290 s, which matches Kie's "1-5 minutes" guidance.
    latency_median: float = 120.0
    latency_sigma: float = 0.45
    latency_min: float = 20.0
    latency_max: float = 900.0
    # The four numbers above are the profile of a video model. Other media, and long videos,
    # have their own (median, min, max), with the same sigma:
    image_latency: tuple[float, float, float] = (15.0, 5.0, 60.0)
    audio_latency: tuple[float, float, float] = (60.0, 20.0, 240.0)
    long_video_factor: float = 2.0  # upscales and videos of 15 s or more take this much longer
    # Share of a task's life spent `waiting` and then `queuing`; the rest is `generating`.
    phase_fractions: tuple[float, float] = (0.05, 0.15)
    moderation_delay: float = 5.0  # moderated prompts fail this soon after creation
    url_ttl: float = 86_400.0  # result URLs, counted from the task's end
    download_url_ttl: float = 1_200.0  # links handed out by /common/download-url
    moderation_words: tuple[str, ...] = ("gore", "nsfw")
    maintenance: bool = False
    disabled_models: tuple[str, ...] = ()
    webhook_hmac_key: str | None = None
    callback_attempts: int = 3
    callback_backoff: float = 5.0  # first retry delay; doubles per attempt
    callback_timeout: float = 10.0  # per delivery attempt, real seconds (not scaled)
    slow_delay: float = 20.0
    drip_interval: float = 5.0  # the `slow_drip` fault: seconds per byte (scaled)
    gzip_bomb_bytes: int = 1 << 30  # what a `gzip_bomb` answer inflates to
    # Kie today (late 2026): models marked paused in their file (and the old-format Sora
    # files) answer createTask with code 500 "temporarily paused". Off by default until the
    # runner treats that answer as final; `run-pipeline simulate` turns it on.
    model_pauses: bool = False
    # Kie answers some invalid inputs with body code 500 ("This field is required", "... is
    # not within the range of allowed options"); off: every validation failure is 422.
    validation_500: bool = False
    # Kie answers recordInfo of an unknown task with code 422 "recordInfo is null"; off: the
    # older documented 404 "Task not found".
    unknown_task_422: bool = False
    # Audio models answer their results as `response.data[].audio_url` (as Kie's do); off:
    # `resultUrls` like every other model. `run-pipeline simulate` and --simulate turn it on.
    audio_data: bool = False
    # Seconds (real Kie, scaled) a new task stays "not found" to recordInfo after its create.
    unknown_after_create: float = 0.0
    default_price: int = 20  # credits of a task whose model states no price rule
    model_dirs: tuple[str, ...] = ()  # extra model-file folders, searched before the bundle
    # Uploads (the file host): lifetime of an uploaded file, in real seconds (scaled), and
    # the largest file accepted.
    upload_ttl: float = 86_400.0
    upload_max_bytes: int = 200 << 20
    # Keep tasks, uploads and balances in a SQLite file in this folder between processes.
    state_dir: str | None = None
    # A FaultRates, or a mapping {kind: rate} for short (turned into FaultRates).
    faults: FaultRates | Mapping[str, float] = field(default_factory=FaultRates)

    def __post_init__(self) -> None:
        if not isinstance(self.faults, FaultRates):
            if not isinstance(self.faults, Mapping) or not set(self.faults) <= set(FAULT_KINDS):
                raise ConfigError(f"faults must be FaultRates or a mapping with keys {FAULT_KINDS}")
            object.__setattr__(self, "faults", FaultRates(**self.faults))
        if not self.api_keys or any(not isinstance(k, str) or not k for k in self.api_keys):
            raise ConfigError("api_keys must be a non-empty tuple of non-empty strings")
        if not self.time_scale > 0:
            raise ConfigError(f"time_scale must be > 0, got {self.time_scale!r}")
        for name in ("create_limit", "query_limit"):
            count, window = getattr(self, name)
            if count < 1 or not window > 0:
                raise ConfigError(f"{name} must be (count >= 1, seconds > 0)")
        if not 0 < self.latency_min <= self.latency_median <= self.latency_max:
            raise ConfigError("latency must satisfy 0 < latency_min <= median <= latency_max")
        if self.credits < 0:
            raise ConfigError(f"credits must be >= 0, got {self.credits}")
        if self.latency_sigma < 0 or self.callback_attempts < 1:
            raise ConfigError("latency_sigma must be >= 0 and callback_attempts >= 1")
        waiting, queuing = self.phase_fractions
        if waiting < 0 or queuing < 0 or waiting + queuing >= 1:
            raise ConfigError("phase_fractions must be two shares >= 0 summing to < 1")
        names = ("moderation_delay", "url_ttl", "download_url_ttl", "slow_delay", "upload_ttl")
        for name in (
            *names,
            "unknown_after_create",
            "drip_interval",
            "default_price",
            "gzip_bomb_bytes",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        for name in ("image_latency", "audio_latency"):
            median, low, high = getattr(self, name)
            if not 0 < low <= median <= high:
                raise ConfigError(
                    f"{name} must be (median, min, max) with 0 < min <= median <= max"
                )
        if not self.long_video_factor >= 1:
            raise ConfigError("long_video_factor must be >= 1")
        if self.upload_max_bytes < 1:
            raise ConfigError("upload_max_bytes must be >= 1")

    @property
    def rates(self) -> FaultRates:
        """`faults`, typed: always a FaultRates once constructed."""
        assert isinstance(self.faults, FaultRates)
        return self.faults

    def scaled(self, seconds: float) -> float:
        """Real-Kie seconds to simulator seconds."""
        return seconds * self.time_scale

    def public(self) -> dict[str, Any]:
        """The settings as JSON, without secrets (keys and the webhook key are never shown)."""
        out = dataclasses.asdict(self)
        out["api_keys"] = len(self.api_keys)
        out["webhook_hmac_key"] = self.webhook_hmac_key is not None
        return out


# Fields /__sim/control may change at run time, with the JSON type each expects.
_BOOLS = {
    "maintenance",
    "http_429",
    "model_pauses",
    "validation_500",
    "unknown_task_422",
    "audio_data",
}
_WORDS = {"disabled_models", "moderation_words"}
_LIMITS = {"create_limit", "query_limit"}
_NUMBERS = {
    "latency_median",
    "latency_sigma",
    "latency_min",
    "latency_max",
    "moderation_delay",
    "url_ttl",
    "download_url_ttl",
    "callback_backoff",
    "callback_timeout",
    "slow_delay",
    "drip_interval",
    "upload_ttl",
    "unknown_after_create",
}
CONTROLLABLE = frozenset(_BOOLS | _WORDS | _LIMITS | _NUMBERS | {"callback_attempts", "faults"})


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    return float(value)


def apply_changes(config: SimConfig, changes: Mapping[str, Any]) -> SimConfig:
    """A new config with JSON-shaped `changes` applied; ConfigError names the bad field.

    `credits` and other per-account state are not config; the service handles them first.
    """
    updates: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in CONTROLLABLE:
            raise ConfigError(f"cannot change {name!r} at run time")
        if name in _BOOLS:
            if not isinstance(value, bool):
                raise ConfigError(f"{name} must be true or false")
            updates[name] = value
        elif name in _WORDS:
            if not isinstance(value, list | tuple) or not all(isinstance(w, str) for w in value):
                raise ConfigError(f"{name} must be a list of strings")
            updates[name] = tuple(value)
        elif name in _LIMITS:
            if not isinstance(value, list | tuple) or len(value) != 2:
                raise ConfigError(f"{name} must be [count, seconds]")
            updates[name] = (int(_number(name, value[0])), _number(name, value[1]))
        elif name in _NUMBERS:
            updates[name] = _number(name, value)
        elif name == "callback_attempts":
            updates[name] = int(_number(name, value))
        else:  # faults
            if not isinstance(value, Mapping) or not set(value) <= set(FAULT_KINDS):
                raise ConfigError(f"faults must be an object with keys among {FAULT_KINDS}")
            rates = {k: _number(f"faults.{k}", v) for k, v in value.items()}
            updates[name] = dataclasses.replace(config.rates, **rates)
    return dataclasses.replace(config, **updates)


def _balance(value: Any) -> Decimal | None:
    """A balance from JSON: an integer, or a decimal such as 99875.2; None when neither."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return as_credits(value) if math.isfinite(value) else None


def new_balances(
    balances: list[Decimal], accounts: Mapping[str, int], credits: Any
) -> list[Decimal]:
    """The balances after a /__sim/control `credits` change (a number for every account, or
    {api key or account index: number}); ConfigError when invalid."""
    out = list(balances)
    if credits is None:
        return out
    if (every := _balance(credits)) is not None:
        return [every] * len(out)
    if not isinstance(credits, Mapping):
        raise ConfigError("credits must be a number or an object {api key: number}")
    for key, value in credits.items():
        # Accept the key itself or an account index; never echo a key back in the error.
        account = accounts.get(key)
        if account is None and str(key).isdigit() and int(key) < len(out):
            account = int(key)
        balance = _balance(value)
        if account is None or balance is None:
            raise ConfigError("credits: unknown API key or account, or not a number")
        out[account] = balance
    return out
