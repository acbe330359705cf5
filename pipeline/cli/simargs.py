"""`run-pipeline simulate`'s grammar: its options, and the simulator's configuration built
from them (`simulate_request`). It reads only the simulator's configuration module (a frozen
dataclass, standard library only), never the server.
"""

from __future__ import annotations

import argparse
import os

from pipeline.cli.argtypes import positive, rate
from pipeline.cli.requests import SimulateRequest
from pipeline.errors import UsageError
from pipeline.simulator.config import ConfigError, FaultRates, SimConfig

_DEFAULTS = SimConfig()

# (option, FaultRates field, what it does)
_FAULT_OPTIONS = (
    ("--fault-500", "http_500", "answer HTTP 500 with an HTML page, before any effect"),
    ("--fault-reset", "reset", "reset the connection without an answer, before any effect"),
    (
        "--fault-lost-answer",
        "lost_answer",
        "createTask: create and charge the task, then close the connection unanswered",
    ),
    ("--fault-slow", "slow", "hold the answer back for --slow-delay seconds (after the effect)"),
    (
        "--fault-malformed",
        "malformed_json",
        "answer HTTP 200 with broken JSON (after the effect; on createTask a lost answer)",
    ),
    (
        "--fault-truncate",
        "truncated_download",
        "video downloads: promise the full Content-Length, send half, close",
    ),
    (
        "--fault-gen-fail",
        "generation_failure",
        "tasks end in state fail, failCode 501 (credits refunded)",
    ),
    ("--fault-stuck", "stuck", "tasks never finish"),
    (
        "--fault-gateway",
        "gateway_error",
        "answer HTTP 502/503/504 with an HTML page after the effect (a create is made and charged)",
    ),
    (
        "--fault-slow-drip",
        "slow_drip",
        "send the whole answer one byte every --drip-interval seconds",
    ),
    (
        "--fault-bad-range",
        "bad_range",
        "ranged downloads: answer 206 from byte 0, whatever offset was asked for",
    ),
    (
        "--fault-deep-json",
        "deep_json",
        "answer HTTP 200 with 100,000 nested '[' (after the effect)",
    ),
    (
        "--fault-gzip-bomb",
        "gzip_bomb",
        "answer gzip-encoded bytes that inflate to 1 GiB of zeros (streamed)",
    ),
    ("--fault-redirect-loop", "redirect_loop", "result files: an endless chain of 302 redirects"),
    (
        "--fault-failed-answer",
        "failed_answer",
        'tasks fail and recordInfo answers body code 501 "generation failed"',
    ),
    (
        "--fault-expired-answer",
        "expired_answer",
        "tasks never finish; 10 minutes after the create recordInfo answers body code 408",
    ),
    (
        "--fault-gateway-json",
        "gateway_json",
        'answer HTTP 502/503/504 with {"code": 504, ...} in JSON after the effect',
    ),
    (
        "--fault-error-500",
        "error_500_body",
        'answer HTTP 200 {"code": 500, "msg": "Internal server error"} after the effect',
    ),
    ("--fault-foreign-record", "foreign_record", "answer recordInfo with another task's record"),
    (
        "--fault-wrong-media",
        "wrong_media",
        "tasks' results are another media (a video for an image)",
    ),
)


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a rate is between 0 and 1, got {text}")
    return value


_positive_float = positive(float)


def _limit(text: str) -> tuple[int, float]:
    parsed = rate(text)
    return parsed.count, parsed.seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Keep a description the caller chose (the `run-pipeline simulate` sub-parser has one).
    parser.description = parser.description or (
        "Run a local Kie AI look-alike (createTask, recordInfo, download-url, credit, the own "
        "endpoints of Veo 3.1, Runway, Flux Kontext, GPT-4o Image and Suno, result files of "
        "every model in the catalog, and the file host's uploads), faults included. "
        "Prints the base URL as the first line on stdout, then runs until SIGINT or SIGTERM. "
        "Introspection for tests: GET /__sim/stats, /__sim/tasks, /__sim/requests, "
        "/__sim/uploads; POST /__sim/control."
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    add(
        "--port",
        type=int,
        default=8787,
        help="port to bind; 0 picks a free one (default: %(default)s)",
    )
    add(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accepted API key, one account each; repeatable (default: $KIE_API_KEY when set, "
        "else sim-key)",
    )
    add(
        "--time-scale",
        type=_positive_float,
        default=1.0,
        metavar="F",
        help="multiply every duration (latency, rate windows, URL lifetimes, delays) by F; 0.01 "
        "makes a 2-minute generation take 1.2 s (default: %(default)s)",
    )
    add(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="seed for task ids, latencies and faults; same seed and requests, same run "
        "(default: %(default)s)",
    )
    add(
        "--credits",
        type=int,
        default=_DEFAULTS.credits,
        metavar="N",
        help="starting credit balance of each account, any size (default: %(default)s; "
        "with --state-dir, only for a new state)",
    )
    add(
        "--state-dir",
        metavar="DIR",
        help="keep tasks, uploads and balances in DIR/kie-simulator.sqlite, so a restarted "
        "simulator still knows them (default: nothing kept)",
    )
    limits = parser.add_argument_group("limits and lifetimes (in real seconds, before scaling)")
    limits.add_argument(
        "--create-limit",
        type=_limit,
        default=_DEFAULTS.create_limit,
        metavar="N/SECONDS",
        help="createTask calls per sliding window, per account (default: 20/10)",
    )
    limits.add_argument(
        "--query-limit",
        type=_limit,
        default=_DEFAULTS.query_limit,
        metavar="N/SECONDS",
        help="recordInfo, download-url and credit calls per window, per key (default: 10/1)",
    )
    limits.add_argument(
        "--http-429",
        action="store_true",
        help="rate limiting as a real HTTP 429 (default: HTTP 200, body code 429)",
    )
    limits.add_argument(
        "--latency-median",
        type=_positive_float,
        default=_DEFAULTS.latency_median,
        metavar="SECONDS",
        help="median generation time, lognormal, capped at --latency-max (default: %(default)s)",
    )
    limits.add_argument(
        "--latency-max",
        type=_positive_float,
        default=_DEFAULTS.latency_max,
        metavar="SECONDS",
        help="longest generation (default: %(default)s)",
    )
    limits.add_argument(
        "--url-ttl",
        type=_positive_float,
        default=_DEFAULTS.url_ttl,
        metavar="SECONDS",
        help="lifetime of result URLs, from the task's end (default: %(default)s)",
    )
    limits.add_argument(
        "--download-url-ttl",
        type=_positive_float,
        default=_DEFAULTS.download_url_ttl,
        metavar="SECONDS",
        help="lifetime of links from /common/download-url (default: %(default)s)",
    )
    behaviour = parser.add_argument_group("account and service behaviour")
    behaviour.add_argument(
        "--moderate",
        action="append",
        metavar="WORD",
        help="prompts containing WORD (any case) end as fail, failCode 422; "
        "repeatable, replaces the default list: gore, nsfw",
    )
    behaviour.add_argument(
        "--maintenance",
        action="store_true",
        help="start in maintenance: every API call answers code 455",
    )
    behaviour.add_argument(
        "--disable-model",
        action="append",
        default=[],
        metavar="MODEL",
        help="createTask for MODEL answers code 505; repeatable",
    )
    behaviour.add_argument(
        "--pause-models",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="models marked paused (the Sora 2 ones) answer createTask with code 500 "
        '"This interface is temporarily paused", as on Kie since 2026-06-11 (default: on)',
    )
    behaviour.add_argument(
        "--validation-500",
        action="store_true",
        help='missing fields and values outside an enum answer code 500 ("This field is '
        'required"), as Kie does (default: code 422)',
    )
    behaviour.add_argument(
        "--unknown-task-422",
        action="store_true",
        help='recordInfo of an unknown task answers code 422 "recordInfo is null", as Kie '
        'does now (default: the older 404 "Task not found")',
    )
    behaviour.add_argument(
        "--audio-data",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="audio models list their results as response.data[].audio_url, as Kie's do "
        "(default: on; off: resultUrls)",
    )
    behaviour.add_argument(
        "--unknown-after-create",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="a new task is 'not found' to recordInfo for SECONDS after its create (scaled)",
    )
    behaviour.add_argument(
        "--model-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="also serve the model files in DIR (searched before the bundled catalog); repeatable",
    )
    behaviour.add_argument(
        "--default-price",
        type=int,
        default=_DEFAULTS.default_price,
        metavar="CREDITS",
        help="credits of a task whose model file states no price rule (default: %(default)s)",
    )
    behaviour.add_argument(
        "--upload-ttl",
        type=_positive_float,
        default=_DEFAULTS.upload_ttl,
        metavar="SECONDS",
        help="how long an uploaded file is served, in real seconds before scaling "
        "(default: %(default)s, Kie's 24 h)",
    )
    behaviour.add_argument(
        "--webhook-hmac-key",
        default=os.environ.get("KIE_WEBHOOK_HMAC_KEY"),
        metavar="KEY",
        help="sign callbacks (X-Webhook-Timestamp, "
        "X-Webhook-Signature); default: $KIE_WEBHOOK_HMAC_KEY",
    )
    behaviour.add_argument(
        "--callback-attempts",
        type=int,
        default=_DEFAULTS.callback_attempts,
        metavar="N",
        help="delivery attempts per callback, with doubling backoff (default: %(default)s)",
    )
    behaviour.add_argument(
        "--slow-delay",
        type=_positive_float,
        default=_DEFAULTS.slow_delay,
        metavar="SECONDS",
        help="how long --fault-slow holds an answer (default: %(default)s)",
    )
    behaviour.add_argument(
        "--drip-interval",
        type=_positive_float,
        default=_DEFAULTS.drip_interval,
        metavar="SECONDS",
        help="seconds per byte of a --fault-slow-drip answer, before scaling "
        "(default: %(default)s)",
    )
    faults = parser.add_argument_group("faults (each a rate between 0 and 1, default 0)")
    for option, _, text in _FAULT_OPTIONS:
        faults.add_argument(option, type=_rate, default=0.0, metavar="RATE", help=text)


def config_from_args(args: argparse.Namespace) -> SimConfig:
    keys = args.api_keys or [os.environ.get("KIE_API_KEY") or "sim-key"]
    moderation = tuple(args.moderate) if args.moderate else _DEFAULTS.moderation_words
    rates = {
        name: getattr(args, option[2:].replace("-", "_")) for option, name, _ in _FAULT_OPTIONS
    }
    return SimConfig(
        api_keys=tuple(keys),
        credits=args.credits,
        time_scale=args.time_scale,
        seed=args.seed,
        create_limit=args.create_limit,
        query_limit=args.query_limit,
        http_429=args.http_429,
        latency_median=args.latency_median,
        latency_min=min(_DEFAULTS.latency_min, args.latency_median),
        latency_max=max(args.latency_max, args.latency_median),
        url_ttl=args.url_ttl,
        download_url_ttl=args.download_url_ttl,
        moderation_words=moderation,
        maintenance=args.maintenance,
        disabled_models=tuple(args.disable_model),
        webhook_hmac_key=args.webhook_hmac_key or None,
        callback_attempts=args.callback_attempts,
        slow_delay=args.slow_delay,
        faults=FaultRates(**rates),
        drip_interval=args.drip_interval,
        model_pauses=args.pause_models,
        validation_500=args.validation_500,
        unknown_task_422=args.unknown_task_422,
        audio_data=args.audio_data,
        unknown_after_create=args.unknown_after_create,
        model_dirs=tuple(args.model_dir),
        default_price=args.default_price,
        upload_ttl=args.upload_ttl,
        state_dir=args.state_dir,
    )


def simulate_request(args: argparse.Namespace) -> SimulateRequest:
    try:
        return SimulateRequest(args.host, args.port, config_from_args(args))
    except ConfigError as exc:
        raise UsageError(f"simulate: {exc}") from None
