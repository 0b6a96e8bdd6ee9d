"""The admin page in headless Chromium, driven over the DevTools Protocol: upload, result, screenshot."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from classifier_testdata import make_image
from foresight.contract.classifier import ClassifierConfig
from foresight.serving.classifier import create_app
from PIL import Image

from tests.polling import wait_for
from tests.servers import unavailable
from tests.servers.dashscope_standin import DashScopeStandIn

pytestmark = pytest.mark.integration
WIDTH, HEIGHT = 1200, 900


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if shutil.which("apt-get") and os.geteuid() == 0:
        for cmd in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
        ):
            subprocess.run(
                cmd,
                capture_output=True,
                timeout=900,
                check=False,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
        path = shutil.which("chromium")
        if path:
            return path
    unavailable("chromium", "apt-get install chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(standin: DashScopeStandIn, dashscope_config: Callable[..., ClassifierConfig]) -> Iterator[str]:
    app = create_app(dashscope_config(), environ={"DASHSCOPE_API_KEY": "sk-admin"})
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "uvicorn to start", timeout=10, interval=0.02)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


class _Cdp:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self._ws = websocket.create_connection(ws_url, timeout=20, suppress_origin=True)
        self._id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg["result"])

    def eval(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20) -> Any:
        return wait_for(lambda: self.eval(expression), expression, timeout=timeout, interval=0.1)

    def close(self) -> None:
        self._ws.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[str]:
    """Headless Chromium; yields the DevTools HTTP endpoint."""
    proc = subprocess.Popen(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
            f"--window-size={WIDTH},{HEIGHT}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        stderr = proc.stderr

        def devtools_endpoint() -> str | None:
            line = stderr.readline()
            if not line and proc.poll() is not None:
                raise AssertionError(f"chromium exited with {proc.returncode} before printing its endpoint")
            m = re.search(r"DevTools listening on ws://([\d.]+:\d+)/", line)
            return f"http://{m.group(1)}" if m else None

        # readline blocks until chromium prints a line: the interval only spaces out the end-of-output case.
        yield wait_for(
            devtools_endpoint, "chromium to print its DevTools endpoint", timeout=30, interval=0.01
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_admin_page_uploads_shows_result_and_renders(
    served: str, browser: str, standin: DashScopeStandIn, tmp_path: Path
) -> None:
    image = tmp_path / "photo.png"
    image.write_bytes(make_image(21, size=(160, 120)))
    page = next(t for t in requests.get(f"{browser}/json/list", timeout=10).json() if t["type"] == "page")
    cdp = _Cdp(page["webSocketDebuggerUrl"])
    try:
        cdp.call("Page.enable")
        # The window size includes browser chrome in new headless mode: pin the viewport itself.
        cdp.call(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
        )
        cdp.call("Page.navigate", url=served)
        cdp.wait_for(
            "document.readyState === 'complete' && document.querySelectorAll('#cats tbody tr').length"
        )
        assert cdp.eval("document.querySelectorAll('#cats tbody tr').length") == 8
        assert "travel_scenery" in cdp.eval("document.getElementById('prompt').textContent")
        root = cdp.call("DOM.getDocument")["root"]["nodeId"]
        node = cdp.call("DOM.querySelector", nodeId=root, selector="#file")["nodeId"]
        cdp.call("DOM.setFileInputFiles", nodeId=node, files=[str(image)])
        category = cdp.wait_for("document.getElementById('result').dataset.category")
        assert category == "pets"
        assert "宠物" in cdp.eval("document.getElementById('result').textContent")
        assert cdp.eval("document.getElementById('preview').style.display") == "block"
        cdp.wait_for("document.getElementById('k-requests').textContent === '1'")  # stats refreshed
        shot = base64.b64decode(cdp.call("Page.captureScreenshot", format="png")["data"])
    finally:
        cdp.close()
    assert standin.calls == 1
    png = Image.open(io.BytesIO(shot))
    assert png.format == "PNG" and png.size == (WIDTH, HEIGHT)
    colors = png.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50  # text, gradient header, preview: not a blank page
