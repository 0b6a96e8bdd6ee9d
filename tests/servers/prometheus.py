"""Real Prometheus and Pushgateway servers for tests (Debian packages, no Docker).

Reusable outside pytest fixtures too (the end-to-end tests start their own):

- :func:`ensure_installed` installs ``prometheus`` and ``prometheus-pushgateway`` with apt when
  missing. Without apt (or without root) it skips the test, except under ``CI=true`` where a
  missing server fails it: CI must not pass by testing nothing.
- :func:`openmetrics` formats samples as OpenMetrics text; :func:`backfill` turns such text into
  TSDB blocks with ``promtool tsdb create-blocks-from openmetrics`` (one block per 30 days
  instead of hundreds of 2 h blocks).
- :class:`PrometheusServer` / :class:`PushgatewayServer` run the binaries on 127.0.0.1 on a free
  port with all state in a temp directory, wait for ``/-/ready`` and stop on exit.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import requests
import yaml

__all__ = [
    "BINARIES",
    "PrometheusServer",
    "PushgatewayServer",
    "backfill",
    "ensure_installed",
    "free_port",
    "openmetrics",
]

BINARIES = ("prometheus", "promtool", "prometheus-pushgateway")
_APT_PACKAGES = ("prometheus", "prometheus-pushgateway")
_LOCK = Path(tempfile.gettempdir()) / "foresight-apt-prometheus.lock"


def _missing() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None]


def ensure_installed() -> None:
    """Make sure the Prometheus binaries exist, installing the Debian packages if needed.

    Skips the calling test when they cannot be installed here, or fails it under ``CI=true``.
    """
    if not _missing():
        return
    # One installer at a time across pytest-xdist workers.
    with open(_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _missing():
            return
        reason = _apt_install()
    if _missing():
        msg = f"Prometheus binaries {_missing()} are missing and could not be installed: {reason}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " (CI=true: a missing server is a failure, not a skip)")
        pytest.skip(msg)


def _apt_install() -> str:
    apt = shutil.which("apt-get")
    if apt is None:
        return "apt-get is not available (install prometheus and prometheus-pushgateway by hand)"
    if os.geteuid() != 0:
        return "not root, so apt-get cannot install prometheus and prometheus-pushgateway"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = [apt, "install", "-y", "--no-install-recommends", *_APT_PACKAGES]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if first.returncode == 0:
        return ""
    # Usually stale or empty package lists: refresh once and retry.
    subprocess.run([apt, "update"], env=env, capture_output=True, text=True, timeout=600)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    return "" if second.returncode == 0 else f"apt-get install failed: {second.stderr[-500:]}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fmt_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _fmt_labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in sorted(labels.items())
    )
    return "{" + inner + "}"


def openmetrics(
    families: Mapping[str, tuple[str, Sequence[tuple[Mapping[str, str], Iterable[tuple[int, float]]]]]],
) -> str:
    """OpenMetrics text for ``{name: (type, [(labels, [(unix_seconds, value), ...]), ...])}``.

    ``type`` is ``gauge`` or ``counter`` (a counter's samples are written as ``name_total``, as
    OpenMetrics requires). Samples must be in time order per series; the text ends with ``# EOF``.
    """
    lines: list[str] = []
    for name, (mtype, series) in families.items():
        lines.append(f"# TYPE {name} {mtype}")
        sample_name = f"{name}_total" if mtype == "counter" else name
        for labels, samples in series:
            lab = _fmt_labels(labels)
            lines.extend(f"{sample_name}{lab} {_fmt_value(v)} {int(t)}" for t, v in samples)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def backfill(openmetrics_text: str, data_dir: Path) -> list[Path]:
    """Write ``openmetrics_text`` as TSDB blocks into ``data_dir`` (before Prometheus starts).

    Returns the block directories created.
    """
    ensure_installed()
    data_dir.mkdir(parents=True, exist_ok=True)
    before = set(data_dir.iterdir())
    with tempfile.TemporaryDirectory(prefix="om-") as tmp:
        src = Path(tmp) / "history.om"
        src.write_text(openmetrics_text)
        proc = subprocess.run(
            [
                "promtool",
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--max-block-duration=720h",
                str(src),
                str(data_dir),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"promtool backfill failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return sorted(set(data_dir.iterdir()) - before)


class _Process:
    """A server binary on 127.0.0.1 that is ready when ``/-/ready`` answers 200."""

    name = "server"

    def __init__(self, workdir: Path, port: int | None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> None:
        ensure_installed()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self._argv(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} not ready on {self.url} within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> _Process:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class PushgatewayServer(_Process):
    """``prometheus-pushgateway`` with its persistence file inside ``workdir``."""

    name = "pushgateway"

    def _argv(self) -> list[str]:
        return [
            "prometheus-pushgateway",
            f"--web.listen-address=127.0.0.1:{self.port}",
            # Its default is a system path; always keep state inside the test's directory.
            f"--persistence.file={self.workdir / 'pushgateway.data'}",
            "--web.enable-admin-api",
        ]

    def __enter__(self) -> PushgatewayServer:
        self.start()
        return self


class PrometheusServer(_Process):
    """Prometheus with its TSDB in ``data_dir`` (backfill blocks there before :meth:`start`).

    Args:
        data_dir: the TSDB directory; the config and log go next to it.
        config: extra top-level ``prometheus.yml`` content (merged over the defaults).
        port: fixed port, or a free one.
        out_of_order_time_window: e.g. ``"30d"``; needed to accept future-timestamped remote writes
            without breaking later scrapes (see FACTS.md).
        pushgateway: a Pushgateway to scrape every second with ``honor_labels: true``.
        scrape_interval: for the Pushgateway job.
    """

    name = "prometheus"

    def __init__(
        self,
        data_dir: Path,
        config: Mapping[str, Any] | None = None,
        port: int | None = None,
        *,
        out_of_order_time_window: str | None = None,
        pushgateway: PushgatewayServer | None = None,
        scrape_interval: str = "1s",
    ) -> None:
        super().__init__(data_dir.parent / f"{data_dir.name}-run", port)
        self.data_dir = data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cfg: dict[str, Any] = {"global": {"scrape_interval": scrape_interval, "evaluation_interval": "1s"}}
        if pushgateway is not None:
            cfg["scrape_configs"] = [
                {
                    "job_name": "pushgateway",
                    "honor_labels": True,
                    "scrape_interval": scrape_interval,
                    "static_configs": [{"targets": [f"127.0.0.1:{pushgateway.port}"]}],
                }
            ]
        if out_of_order_time_window is not None:
            cfg["storage"] = {"tsdb": {"out_of_order_time_window": out_of_order_time_window}}
        cfg.update(config or {})
        self.config = cfg
        self.config_path = self.workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))

    def _argv(self) -> list[str]:
        return [
            "prometheus",
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            # Backfilled history is old: a short retention would delete it at start.
            "--storage.tsdb.retention.time=3650d",
            "--web.enable-remote-write-receiver",
            "--web.enable-lifecycle",
        ]

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def query(self, expr: str, time: float | None = None) -> list[dict[str, Any]]:
        """The raw ``data.result`` of an instant query (for assertions, independent of the client)."""
        params: dict[str, str] = {"query": expr}
        if time is not None:
            params["time"] = str(time)
        resp = requests.get(self.url + "/api/v1/query", params=params, timeout=10)
        resp.raise_for_status()
        result: list[dict[str, Any]] = resp.json()["data"]["result"]
        return result
