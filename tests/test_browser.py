"""The report in a real browser: Debian's headless Chromium opens report.html from file:// (no network).

Chromium is driven over the DevTools protocol (``--remote-debugging-port``) with a small websocket client, so
the test sees console messages, exceptions, log entries (failed loads), network requests and dialogs as they
happen, evaluates the page's DOM, and saves a full-page screenshot under the test's tmp dir.

Skipped with a clear reason when the chromium binary (``apt-get install chromium``; ``.ci/run`` installs it) or
the websocket client (``pip install -e .[dev]``) is missing.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    "--hide-scrollbars",
    "--window-size=1280,900",
]


def chromium_binary() -> str | None:
    """Debian's /usr/bin/chromium, or whatever ``chromium`` is on PATH."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws_url: str) -> None:
        import websocket  # websocket-client (dev extra)

        # Chromium refuses websocket clients that send an Origin header unless allowed: send none.
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        for ev in self.events:
            if ev["method"] == event:
                return ev
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == event:
                    return msg
        raise TimeoutError(f"no {event} within {timeout} s")

    def evaluate(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"evaluation failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def close(self) -> None:
        self.ws.close()


@contextmanager
def chromium_page(binary: str, profile_dir: Path):
    """Start headless Chromium on about:blank and yield a DevTools client attached to its page."""
    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = None
    try:
        port_file = profile_dir / "DevToolsActivePort"  # Chromium writes the port it picked here
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().strip()):
            if proc.poll() is not None:
                raise RuntimeError(f"chromium exited with code {proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not open its DevTools port within 30 s")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        page = None
        while page is None and time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as resp:  # local only
                targets = json.load(resp)
            page = next((t for t in targets if t.get("type") == "page"), None)
            if page is None:
                time.sleep(0.05)
        if page is None:
            raise TimeoutError("chromium opened no page target")
        client = DevTools(page["webSocketDebuggerUrl"])
        yield client
    finally:
        if client is not None:
            client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def inspect_report(
    html: Path, screenshot: Path, binary: str | None = None, expand_details: bool = False
) -> dict[str, Any]:
    """Open ``html`` from file:// in headless Chromium; return what the page did and save a full-page PNG.

    Returns console errors, exceptions, error log entries, the URLs requested, dialogs opened, each image's
    natural width, the comparison table's row count, whether the findings section exists, the h1 text, and the
    number of <script> elements.
    """
    binary = binary or chromium_binary()
    if binary is None:
        raise FileNotFoundError("chromium not found")
    with (
        # Chromium's helper processes (crashpad) may still write to the profile after the browser has exited:
        # a profile left in the temporary folder is harmless, a cleanup race failing the test is not.
        tempfile.TemporaryDirectory(prefix="trainlab-chromium-", ignore_cleanup_errors=True) as profile,
        chromium_page(binary, Path(profile)) as cdp,
    ):
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.call(f"{domain}.enable")
        cdp.call("Page.navigate", url=html.resolve().as_uri())
        cdp.wait_for("Page.loadEventFired")
        images = cdp.evaluate(
            "Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth}))"
        )
        info = cdp.evaluate(
            """({
                rows: document.querySelectorAll('table#comparison > tbody > tr').length,
                variants: Array.from(document.querySelectorAll('table#comparison > tbody > tr > td:first-child .vname'))
                               .map(td => td.textContent.trim()),
                findings: !!document.querySelector('section#findings'),
                findingItems: document.querySelectorAll('section#findings li').length,
                h1: document.querySelector('h1') ? document.querySelector('h1').textContent : null,
                scripts: document.scripts.length,
                width: document.documentElement.scrollWidth,
                height: document.documentElement.scrollHeight,
            })"""
        )
        if expand_details:  # open every collapsible block so the screenshot shows the per-run detail too
            cdp.evaluate("document.querySelectorAll('details').forEach(d => d.open = true); true")
        metrics = cdp.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = cdp.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        )
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        time.sleep(0.2)  # let late console/log events arrive
        cdp.call("Runtime.evaluate", expression="1")  # drains pending events into cdp.events
        events = cdp.events
    console_errors = [
        " ".join(str(a.get("value", a.get("description", ""))) for a in e["params"].get("args", []))
        for e in events
        if e["method"] == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert")
    ]
    exceptions = [
        e["params"]["exceptionDetails"].get("text") for e in events if e["method"] == "Runtime.exceptionThrown"
    ]
    log_errors = [
        e["params"]["entry"].get("text")
        for e in events
        if e["method"] == "Log.entryAdded" and e["params"]["entry"].get("level") == "error"
    ]
    requests = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    dialogs = [e["params"].get("message") for e in events if e["method"] == "Page.javascriptDialogOpening"]
    return {
        "console_errors": console_errors,
        "exceptions": exceptions,
        "log_errors": log_errors,
        "requests": requests,
        "dialogs": dialogs,
        "images": images,
        **info,
    }


# ------------------------------------------------------------------------------------------------------
# The test

XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def browser_binary() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
    pytest.importorskip("websocket", reason="websocket-client is not installed (pip install -e .[dev])")
    return binary


def test_report_in_headless_chromium(tmp_path: Path, browser_binary: str) -> None:
    from sample_study import sample_config, write_sample_store

    from trainlab.report import build_report

    variants = [
        {"name": "small", "model.name": "mlp", "model.hidden": [16]},
        {"name": "medium <b>", "model.name": "mlp", "model.hidden": [64]},
        {"name": "large", "model.name": "mlp", "model.hidden": [256]},
        {"name": "broken", "model.name": "mlp", "model.hidden": [8]},
    ]
    cfg = sample_config(name=XSS, description=f"Description with {XSS} & <i>markup</i>", variants=variants, repeats=2)
    write_sample_store(
        tmp_path / "study", cfg, behaviour={"large": "overfit", "broken": "failed"}, classes=["cat", XSS, "dog"]
    )
    paths = build_report(tmp_path / "study")

    shot = tmp_path / "report.png"
    page = inspect_report(paths.html, shot, browser_binary)

    assert page["console_errors"] == [], page["console_errors"]
    assert page["exceptions"] == [], page["exceptions"]
    assert page["log_errors"] == [], page["log_errors"]
    assert page["dialogs"] == [], "a script ran: user text was not escaped"
    # Self-contained: the page itself is the only thing loaded from anywhere but data: URIs.
    assert [u for u in page["requests"] if not u.startswith("data:")] == [paths.html.resolve().as_uri()]
    assert page["images"], "the report has no images"
    assert all(img["complete"] and img["width"] > 0 for img in page["images"]), page["images"]
    assert all(img["alt"] for img in page["images"]), "every image needs alt text"
    assert page["rows"] == len(variants)
    assert page["variants"] == [v["name"] for v in variants]
    assert page["findings"] and page["findingItems"] > 0
    assert page["h1"] == XSS  # the study name shows as text
    assert page["scripts"] == 0
    # A full-page screenshot: taller than one window, and a real PNG.
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    height = int.from_bytes(data[20:24], "big")
    assert height > 900
