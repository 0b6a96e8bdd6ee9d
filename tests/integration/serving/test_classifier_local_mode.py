"""``foresight run -f examples/classifierservice.yaml --local``: the real CLI as a subprocess.

The example's DashScope backend is pointed at the local stand-in with ``--dashscope-base-url``;
the API key comes from ``DASHSCOPE_API_KEY``, as local mode documents. One image is classified
twice over HTTP on 127.0.0.1: a miss that calls the stand-in, then a hit that does not.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from classifier_testdata import API_KEY, make_image

from tests.polling import wait_for
from tests.servers.dashscope_standin import DashScopeStandIn

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
FORESIGHT = Path(sys.executable).with_name("foresight")  # the console script of this environment


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _classify(url: str, image: bytes) -> dict[str, Any]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="photo.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    req = urllib.request.Request(
        f"{url}api/v1/classify",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        result: dict[str, Any] = json.loads(resp.read())
    return result


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"foresight exited with {proc.returncode}:\n{log.read_text()}")
        with urllib.request.urlopen(f"{url}api/v1/health", timeout=2) as resp:
            return resp.status == 200

    # OSError: not listening yet.
    wait_for(healthy, lambda: f"foresight to serve {url}; its log:\n{log.read_text()}", timeout=timeout,
             ignoring=(OSError,))  # fmt: skip


def test_run_local_serves_the_example_and_caches(standin: DashScopeStandIn, tmp_path: Path) -> None:
    port = _free_port()
    state = tmp_path / "state"
    log = tmp_path / "foresight.log"
    env = {**os.environ, "DASHSCOPE_API_KEY": API_KEY}
    command = [
        str(FORESIGHT),
        "run",
        "-f",
        "examples/classifierservice.yaml",
        "--local",
        "--port",
        str(port),
        "--state-dir",
        str(state),
        "--dashscope-base-url",
        standin.base_url,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_healthy(url, proc, log)
        image = make_image(21)
        first = _classify(url, image)
        assert (first["category"], first["cached"]) == ("pets", False)
        assert standin.calls == 1
        sent = standin.requests[0]
        assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
        assert sent.body["model"] == "qwen-vl-plus"  # the example's model
        second = _classify(url, image)
        assert (second["category"], second["cached"], second["sha256"]) == ("pets", True, first["sha256"])
        assert standin.calls == 1  # the hit did not call the backend
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C, as the banner says
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise
    assert proc.returncode == 0, log.read_text()
    text = log.read_text()
    assert f"serving ClassifierService photos/photo-classifier on {url}" in text
    assert f"backend dashscope at {standin.base_url}" in text
    assert (state / "classifier" / "photos" / "photo-classifier" / "classifier.db").is_file()
    assert API_KEY not in text
