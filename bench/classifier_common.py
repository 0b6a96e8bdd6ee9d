"""Shared pieces of the classifier benchmarks: serve the app with uvicorn, load it with wrk, parse wrk.

Run from the repository root (``python bench/classifier_cached.py``); needs ``wrk`` (Debian package).
Both the service and wrk run under ``nice`` because the machine is shared. With two or more CPUs
and ``taskset`` (util-linux), the service is pinned to CPU 0 and wrk (one thread) with the LLM
stand-in to CPU 1, so the load generator does not steal the service's core (on these machines
that cut the check-cache p99 from ~160 ms to ~40 ms at the same throughput); the JSON records
whether that was the case.

:func:`floor` serves the physical floor of this stack: a minimal ASGI app answering a constant JSON
body under the same server (uvicorn, same loop and HTTP implementation, access log off) on the
same pinned core. The classifier's cached paths are measured against it in the same run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
PINNED = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
"""Service on CPU 0; wrk and the stand-in on CPU 1 (see the module docstring)."""


def _on_cpu(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if PINNED else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@contextmanager
def standin(delay: float, answer: str = "pets", fail: int | None = None) -> Iterator[str]:
    """The DashScope stand-in in its own process (``fail``: every call answers that status); yields
    its base URL. ``standin_calls(base)`` reads how many calls it has had."""
    port = free_port()
    proc = subprocess.Popen(
        [
            *_on_cpu(1),  # beside wrk: the service keeps CPU 0 to itself
            PY,
            "-m",
            "tests.servers.dashscope_standin",
            "--port",
            str(port),
            "--delay",
            str(delay),
            "--answer",
            answer,
            *(["--fail", str(fail)] if fail is not None else []),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        _wait_http(f"http://127.0.0.1:{port}/")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


FLOOR_APP = """
import sys
import uvicorn

BODY = (
    b'{"hit":true,"result":{"category":"pets","label_zh":"\\u5ba0\\u7269","label_en":"Pets",'
    b'"confidence":1.0,"sha256":"' + b"0" * 64 + b'"},"variant":null,'
    b'"request_id":"0123456789abcdef0123456789abcdef"}'
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


PORT = int(sys.argv[1])
uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False, lifespan="off")
"""


@contextmanager
def floor() -> Iterator[str]:
    """The floor app (see the module docstring) on CPU 0 under nice; yields its URL."""
    port = free_port()
    proc = subprocess.Popen([*_on_cpu(0), "nice", "-n", "5", PY, "-c", FLOOR_APP, str(port)], cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@contextmanager
def service(
    base_url: str,
    *,
    concurrency: int = 64,
    workers: int = 1,
    retries: int = 0,
    deadline: float = 20.0,
    timeout: float = 10.0,
    cpu: int | None = 0,
) -> Iterator[str]:
    """The classifier (sqlite store, dashscope backend at ``base_url``) under nice; yields its URL.

    ``cpu``: the core it is pinned to (None: not pinned, e.g. several workers)."""
    with tempfile.TemporaryDirectory(prefix="classifier-bench-") as tmp:
        port = free_port()
        cfg = {
            "host": "127.0.0.1",
            "port": port,
            "workers": workers,
            "deadline_seconds": deadline,
            "backend": {
                "type": "dashscope",
                "concurrency": concurrency,
                "dashscope": {
                    "base_url": base_url,
                    "max_retries": retries,
                    "timeout_seconds": timeout,
                    "backoff_seconds": 0.05,
                },
            },
            "cache": {"store": "sqlite", "sqlite_path": f"{tmp}/bench.db"},
        }
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        code = (
            "import sys; from foresight.serving.classifier import load_config, run; "
            "run(load_config(sys.argv[1]), log_level='warning')"
        )
        env = {**os.environ, "DASHSCOPE_API_KEY": "sk-bench"}
        pin = _on_cpu(cpu) if cpu is not None else []
        cmd = [*pin, "nice", "-n", "5", PY, "-c", code, str(path)]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_http(f"{url}/api/v1/health")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def standin_calls(base_url: str) -> int:
    """How many generation calls the stand-in at ``base_url`` has answered."""
    return int(requests.get(base_url.removesuffix("/api/v1") + "/calls", timeout=10).json()["calls"])


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def _to_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot parse wrk latency {text!r}")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(
    url: str, script: str, *, connections: int = 64, threads: int | None = None, seconds: int = 10
) -> dict[str, Any]:
    """Run wrk with a Lua script; returns rps, p50/p90/p99 (ms), requests, non-2xx and socket errors."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y --no-install-recommends wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    threads = threads or (1 if PINNED else 2)
    try:
        out = subprocess.run(
            [
                *_on_cpu(1),
                "nice",
                "-n",
                "5",
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                f.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    finally:
        os.unlink(f.name)
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.MULTILINE))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _to_ms(lat["50"]),
        "p90_ms": _to_ms(lat["90"]),
        "p99_ms": _to_ms(lat["99"]),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
        "connections": connections,
        "seconds": seconds,
        "wrk_threads": threads,
        "pinned": PINNED,
    }


def lua_string(data: bytes) -> str:
    """A Lua string literal holding arbitrary bytes."""
    return '"' + "".join(f"\\{b}" for b in data) + '"'


def report(name: str, rows: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    print(f"{'case':<28}{'rps':>10}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'non-2xx':>9}{'errors':>8}")
    for r in rows:
        print(
            f"{r['case']:<28}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p90_ms']:>10.2f}{r['p99_ms']:>10.2f}"
            f"{r['non_2xx']:>9}{r['socket_errors']:>8}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": name,
                "rows": rows,
                **extra,
                "cpus": os.cpu_count(),
                "load_after": os.getloadavg(),
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"wrote {out}")
