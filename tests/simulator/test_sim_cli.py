"""`python -m pipeline.simulator` / `run-pipeline simulate`: first line, keys, signals, options."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from pipeline.cli.simargs import add_arguments, config_from_args
from pipeline.simulator import FaultRates
from tests.support.sim import CREDIT


@contextmanager
def simulate(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The simulator as a child process, and the base URL from its first stdout line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.simulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert process.stdout is not None
        yield process, process.stdout.readline().strip()
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def credit(url: str, key: str) -> int:
    envelope = httpx.get(url + CREDIT, headers={"Authorization": f"Bearer {key}"}).json()
    code = envelope["code"]
    assert isinstance(code, int)
    return code


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_first_line_is_the_base_url_and_a_signal_exits_0(sig: signal.Signals) -> None:
    with simulate("--api-key", "k1", "--api-key", "k2", "--time-scale", "0.01") as (proc, url):
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), url
        assert credit(url, "k1") == 200 and credit(url, "k2") == 200
        assert credit(url, "sim-key") == 401
        proc.send_signal(sig)
        assert proc.wait(timeout=20) == 0
        assert proc.stdout is not None and proc.stdout.read() == ""  # only the URL on stdout


def test_kie_api_key_is_the_default_key() -> None:
    with simulate(env={"KIE_API_KEY": "from-env"}) as (proc, url):
        assert credit(url, "from-env") == 200 and credit(url, "sim-key") == 401
        proc.terminate()
        assert proc.wait(timeout=20) == 0


def test_without_any_key_sim_key_is_accepted() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KIE_API_KEY"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.simulator", "--port", "0", "--maintenance"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert credit(url, "sim-key") == 455  # --maintenance, and the key got that far
        httpx.post(url + "/__sim/control", json={"maintenance": False})
        assert credit(url, "sim-key") == 200
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_options_map_onto_the_config() -> None:
    config = config_from_args(
        parse(
            "--api-key",
            "a",
            "--time-scale",
            "0.5",
            "--seed",
            "3",
            "--credits",
            "90",
            "--create-limit",
            "5/2",
            "--query-limit",
            "7/0.5",
            "--http-429",
            "--latency-median",
            "60",
            "--url-ttl",
            "100",
            "--moderate",
            "Dragons",
            "--disable-model",
            "m1",
            "--webhook-hmac-key",
            "s3cret",
            "--fault-500",
            "0.1",
            "--fault-reset",
            "0.2",
            "--fault-lost-answer",
            "0.3",
            "--fault-slow",
            "0.4",
            "--fault-malformed",
            "0.5",
            "--fault-truncate",
            "0.6",
            "--fault-gen-fail",
            "0.7",
            "--fault-stuck",
            "0.8",
        )
    )
    assert config.api_keys == ("a",) and config.time_scale == 0.5 and config.seed == 3
    assert config.credits == 90 and config.create_limit == (5, 2.0)
    assert config.query_limit == (7, 0.5) and config.http_429
    assert config.latency_median == 60 and config.url_ttl == 100
    assert config.moderation_words == ("Dragons",) and config.disabled_models == ("m1",)
    assert config.webhook_hmac_key == "s3cret"
    assert config.faults == FaultRates(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def test_defaults_match_kie() -> None:
    config = config_from_args(parse())
    assert config.create_limit == (20, 10.0) and config.query_limit == (10, 1.0)
    assert config.moderation_words == ("gore", "nsfw") and config.faults == FaultRates()
    assert not config.http_429 and not config.maintenance


@pytest.mark.parametrize(
    "argv", [["--fault-500", "1.5"], ["--create-limit", "20"], ["--time-scale", "0"]]
)
def test_bad_option_values_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        parse(*argv)
    assert stop.value.code == 2 and argv[0] in capsys.readouterr().err


def test_the_2026_options_map_onto_the_config(tmp_path: Path) -> None:
    config = config_from_args(
        parse(
            "--credits",
            "50000000",
            "--state-dir",
            str(tmp_path),
            "--no-pause-models",
            "--validation-500",
            "--unknown-task-422",
            "--model-dir",
            "kie-models",
            "--default-price",
            "7",
            "--upload-ttl",
            "60",
            "--drip-interval",
            "2",
            "--fault-gateway",
            "0.1",
            "--fault-slow-drip",
            "0.2",
            "--fault-bad-range",
            "0.3",
            "--fault-deep-json",
            "0.4",
            "--fault-gzip-bomb",
            "0.5",
            "--fault-redirect-loop",
            "0.6",
        )
    )
    assert config.credits == 50_000_000 and config.state_dir == str(tmp_path)
    assert not config.model_pauses and config.validation_500 and config.unknown_task_422
    assert config.model_dirs == ("kie-models",) and config.default_price == 7
    assert config.upload_ttl == 60 and config.drip_interval == 2
    rates = config.rates
    assert (rates.gateway_error, rates.slow_drip, rates.bad_range) == (0.1, 0.2, 0.3)
    assert (rates.deep_json, rates.gzip_bomb, rates.redirect_loop) == (0.4, 0.5, 0.6)


def test_the_command_pauses_models_like_kie_today() -> None:
    assert config_from_args(parse()).model_pauses  # SimConfig's own default is off, for now
    with simulate("--time-scale", "0.01") as (proc, url):
        answer = httpx.post(
            url + "/api/v1/jobs/createTask",
            headers={"Authorization": "Bearer sim-key"},
            json={"model": "sora-2-text-to-video", "input": {"prompt": "a kite"}},
        ).json()
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    assert answer["code"] == 500 and answer["msg"] == "This interface is temporarily paused"


def test_help_documents_the_new_options() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    text = parser.format_help()
    for option in (
        "--state-dir",
        "--pause-models",
        "--unknown-task-422",
        "--upload-ttl",
        "--fault-gateway",
        "--fault-gzip-bomb",
        "--fault-redirect-loop",
    ):
        assert option in text
