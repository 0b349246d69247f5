"""Headless Chromium for tests that check what a page shows once its scripts have run.

Chromium is a system package (Debian: ``chromium``, with ``fonts-noto-cjk`` for Chinese text),
installed by ``.ci/run``. Without it a test is skipped with the reason, except when
``CI=true``, where that is a failure. ``rendered_dom`` reads a page once; ``devtools_page``
drives one over the DevTools protocol (log in, wait, screenshot) with the ``websockets``
client of the dev dependencies.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

# As the machine's notes advise for a closed network: no background connections, no sandbox as root.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    message = "headless Chromium is not installed (Debian: apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; required when CI=true")
    pytest.skip(message)


def rendered_dom(page: Path, budget_ms: int = 5000) -> str:
    """The page's DOM after its scripts ran, as Chromium serialises it."""
    # Chromium's helper processes may still be writing to the profile as the browser ends.
    with tempfile.TemporaryDirectory(prefix="lookback-chromium-", ignore_cleanup_errors=True) as profile:
        result = subprocess.run(
            [
                chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={budget_ms}",
                "--dump-dom",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    return result.stdout


class DevToolsPage:
    """One page of headless Chromium, driven over the DevTools protocol (a websocket).

    Enough for a test that logs in through a form and looks at what a page shows: navigate,
    evaluate JavaScript, type, wait for a condition, take a screenshot.
    """

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self._next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are dropped)."""
        self._next_id += 1
        self._connection.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._connection.recv(timeout=60))
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method}: {message['error']}")
                return dict(message.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript {expression!r} failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def wait_for(self, expression: str, *, timeout: float = 60.0, what: str = "") -> Any:
        """Wait until ``expression`` is truthy in the page; fail with the page's URL and text if it never is.

        Values come back as JSON: an element is ``{}``, falsy here, so test for one with ``!!``.
        """
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(RuntimeError):  # a page being replaced has no context for a moment
                value = self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                seen = self.evaluate("location.href + '\\n' + (document.body ? document.body.innerText : '')")
                raise AssertionError(f"waited {timeout:.0f} s for {what or expression}; the page shows:\n{seen}")
            time.sleep(0.25)

    def type_into(self, selector: str, text: str) -> None:
        """Focus the element and type ``text`` as a person would (input events included)."""
        self.wait_for(f"!!document.querySelector({json.dumps(selector)})", what=selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def screenshot(self, path: Path) -> Path:
        """Save the viewport as a PNG."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


@contextlib.contextmanager
def devtools_page(width: int = 1400, height: int = 900) -> Iterator[DevToolsPage]:
    """A headless Chromium with one blank page to drive; the browser is ended afterwards."""
    from websockets.sync.client import connect

    # Chromium's helper processes may still be writing to the profile as the browser ends.
    with tempfile.TemporaryDirectory(prefix="lookback-chromium-", ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen(
            [
                chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",  # Chromium picks a free port and writes it to DevToolsActivePort
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its helper processes in one group, ended with it
        )
        try:
            port = _devtools_port(Path(profile) / "DevToolsActivePort", browser)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
                targets = json.loads(answer.read())
            page = next(target for target in targets if target["type"] == "page")
            with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as connection:
                driver = DevToolsPage(connection)
                driver.call("Page.enable")
                yield driver
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(browser.pid, signal.SIGTERM)
            try:
                browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(browser.pid, signal.SIGKILL)
                browser.wait()
            if browser.stderr is not None:
                browser.stderr.close()


def _devtools_port(active_port_file: Path, browser: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if browser.poll() is not None:
            error = browser.stderr.read().decode(errors="replace") if browser.stderr else ""
            raise RuntimeError(f"Chromium exited ({browser.returncode}) before opening DevTools: {error[-2000:]}")
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(active_port_file.read_text().splitlines()[0])
        time.sleep(0.1)
    raise RuntimeError(f"Chromium did not write {active_port_file} within {timeout:.0f} s")
