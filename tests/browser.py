"""Headless Chromium driven through ChromeDriver's W3C WebDriver protocol (plain HTTP and JSON), for tests
that read what a user sees in a browser. Debian's chromium and chromium-driver packages; no Python
dependency beyond the standard library."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# as root, with no network beyond loopback: no sandbox, and none of Chromium's background connections
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update", "--window-size=1400,1800",
]  # fmt: skip

SCROLL_TO_END = """
window.scrollTo(0, document.body.scrollHeight);
document.querySelectorAll("*").forEach(e => {
    if (e.scrollHeight > e.clientHeight + 10) e.scrollTop = e.scrollHeight;
});
"""


def missing() -> str | None:
    """Why no browser test can run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            return f"{path} is not installed (Debian packages chromium and chromium-driver; .ci/run installs them)"
    return None


class Browser:
    """One headless Chromium session."""

    def __init__(self, profile: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._base = f"http://127.0.0.1:{port}"
        options = {"binary": CHROMIUM, "args": [*CHROMIUM_ARGS, f"--user-data-dir={profile}"]}
        capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
        self._session = ""
        deadline = time.monotonic() + 30
        while True:
            try:
                self._session = self._call("POST", "/session", {"capabilities": capabilities})["sessionId"]
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise
                time.sleep(0.2)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        prefix = f"/session/{self._session}" if self._session else ""
        request = urllib.request.Request(
            f"{self._base}{prefix}{path}",
            data=json.dumps(body or {}).encode() if method == "POST" else None,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)["value"]

    def open(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def text(self) -> str:
        return str(self._call("POST", "/execute/sync", {"script": "return document.body.innerText;", "args": []}))

    def scroll_to_end(self) -> None:
        """Scroll the window and every scrollable element to its end (a list that loads more as it is read)."""
        self._call("POST", "/execute/sync", {"script": SCROLL_TO_END, "args": []})

    def wait_for_text(self, *wanted: str, timeout: float = 60, scrolling: bool = False) -> str:
        """The page's text once every one of ``wanted`` is on it (the UI renders after its API calls), or
        as it is at ``timeout``; ``scrolling`` scrolls to the end between looks."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if all(piece in text for piece in wanted) or time.monotonic() > deadline:
                return text
            if scrolling:
                self.scroll_to_end()
            time.sleep(0.5)

    def click(self, label: str) -> None:
        """Click the innermost element whose own text is ``label`` (a tab, a link)."""
        found = self._call(
            "POST", "/element", {"using": "xpath", "value": f"(//*[normalize-space(.)={json.dumps(label)}])[last()]"}
        )
        element = next(iter(found.values()))
        self._call("POST", f"/element/{element}/click", {})

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))

    def close(self) -> None:
        if self._session:
            with contextlib.suppress(OSError):
                self._call("DELETE", "")
        self._driver.terminate()
        self._driver.wait(timeout=30)
