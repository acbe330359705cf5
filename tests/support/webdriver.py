"""A minimal W3C WebDriver client for headless Chromium, over httpx (already a dependency).

WebDriver is JSON over HTTP, so a page of code replaces Selenium; `chromedriver` (Debian's
`chromium-driver`) starts the browser. `.ci/run` installs both; without them the browser test
fails with a message saying how to install them, rather than passing silently.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = (
    "install Chromium and its WebDriver (Debian/Ubuntu: `sudo apt-get install -y "
    "chromium chromium-driver`; `.ci/run` does this)"
)
_PORT_LINE = re.compile(r"started successfully on port (\d+)")


class WebDriverError(Exception):
    pass


class Browser:
    """One WebDriver session."""

    def __init__(self, client: httpx.Client, session: str) -> None:
        self.client = client
        self.session = session

    def call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        url = f"/session/{self.session}{path}"
        answer = self.client.request(method, url, json=payload if method == "POST" else None)
        value = answer.json().get("value")
        if answer.status_code != 200:
            error = value.get("error") if isinstance(value, dict) else answer.status_code
            message = value.get("message") if isinstance(value, dict) else answer.text
            raise WebDriverError(f"{method} {path}: {error}: {message}")
        return value

    def get(self, url: str) -> None:
        self.call("POST", "/url", {"url": url})

    def execute(self, script: str, *args: Any) -> Any:
        # WebDriver scripts run through the DevTools protocol, which a page's CSP does not
        # govern: the test can inspect a page whose own scripts are all forbidden.
        return self.call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script: str, *, timeout: float = 20.0) -> Any:
        """Poll `script` until it returns something truthy; its last value on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.execute(script)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.1)

    def alert_text(self) -> str | None:
        try:
            return str(self.call("GET", "/alert/text"))
        except WebDriverError as exc:
            if "no such alert" in str(exc):
                return None
            raise

    def cdp(self, command: str, params: dict[str, Any] | None = None) -> Any:
        """A DevTools command through chromedriver's vendor endpoint."""
        return self.call("POST", "/goog/cdp/execute", {"cmd": command, "params": params or {}})

    def full_page_png(self, width: int) -> bytes:
        """A screenshot of the whole page laid out `width` CSS pixels wide."""
        metrics = {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": False}
        self.cdp("Emulation.setDeviceMetricsOverride", metrics)
        height = int(self.execute("return document.documentElement.scrollHeight"))
        self.cdp("Emulation.setDeviceMetricsOverride", {**metrics, "height": height})
        shot = self.cdp("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        return base64.b64decode(shot["data"])


def find_chromium() -> tuple[str, str]:
    """(browser, chromedriver) paths; fails the test, with how to fix it, when either is
    missing."""
    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        missing = " and ".join(
            n for n, p in (("chromium", browser), ("chromedriver", driver)) if p is None
        )
        message = f"the browser test needs {missing}: {INSTALL_HINT}"
        # CI (.ci/run) installs both and sets REQUIRE_BROWSER=1, so there this is a failure;
        # on a machine with only Python, `python3 dev.py test` says what it did not run.
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return browser, driver


@contextmanager
def chromium() -> Iterator[Browser]:
    browser, driver = find_chromium()
    # Port 0: chromedriver picks a free port and says which on its first lines of output.
    proc = subprocess.Popen(
        [driver, "--port=0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        port = None
        assert proc.stdout is not None
        for line in proc.stdout:
            if match := _PORT_LINE.search(line):
                port = int(match.group(1))
                break
        if port is None:
            pytest.fail(f"chromedriver exited without starting ({proc.wait()})", pytrace=False)
        # Keep reading what it prints, so a full pipe can never block it.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        with (
            tempfile.TemporaryDirectory(prefix="gallery-chromium-") as profile,
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
        ):
            args = [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--mute-audio",
                "--hide-scrollbars",
                "--window-size=1280,800",
                f"--user-data-dir={profile}",
            ]
            caps = {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": browser, "args": args},
            }
            answer = client.post("/session", json={"capabilities": {"alwaysMatch": caps}})
            value = answer.json()["value"]
            if answer.status_code != 200:
                pytest.fail(f"chromium did not start: {value.get('message')}", pytrace=False)
            session = Browser(client, value["sessionId"])
            try:
                yield session
            finally:
                client.delete(f"/session/{session.session}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
