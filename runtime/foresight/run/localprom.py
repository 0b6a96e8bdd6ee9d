"""Real Prometheus and Pushgateway processes on 127.0.0.1, for local mode and ``foresight demo``.

The one implementation of these local servers; the test servers (``tests/servers/prometheus.py``)
are a thin layer over it that adds pytest skip / fail behaviour. The Debian packages' binaries,
installed with apt when missing and allowed (root), history backfilled with ``promtool tsdb
create-blocks-from openmetrics`` before start (:func:`openmetrics` writes such text), every file
in one work directory, free ports, ready when ``/-/ready`` answers. Nothing here raises when the
binaries are unavailable: :func:`install` returns the reason, so the caller can fall back and say
why.
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
from typing import Any, Self

import requests
import yaml

__all__ = [
    "BINARIES",
    "LocalPrometheus",
    "LocalPushgateway",
    "backfill",
    "backfill_file",
    "free_port",
    "install",
    "missing",
    "openmetrics",
]

BINARIES = ("prometheus", "promtool", "prometheus-pushgateway")
APT_PACKAGES = ("prometheus", "prometheus-pushgateway")


def missing() -> list[str]:
    """The Prometheus binaries not on ``PATH``."""
    return [b for b in BINARIES if shutil.which(b) is None]


def install(*, allow_apt: bool = True, timeout: float = 600.0, lock_path: Path | None = None) -> str | None:
    """Make the binaries available; ``None`` when they are, else the reason they are not (which
    names the missing binaries).

    ``lock_path`` (default: a file in the temp directory) serialises installers across processes,
    e.g. pytest-xdist workers: apt-get refuses to run twice at once.
    """
    if not missing():
        return None
    if not allow_apt:
        return f"{missing()} not installed (apt installs disabled)"
    lock = lock_path or Path(tempfile.gettempdir()) / "foresight-apt-prometheus.lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        # Another process may have installed them while this one waited for the lock.
        return None if not missing() else _apt_install(timeout)


def _apt_install(timeout: float) -> str | None:
    apt = shutil.which("apt-get")
    if apt is None:
        return f"{missing()} not installed and apt-get is not available: install prometheus by hand"
    if os.geteuid() != 0:
        return (
            f"{missing()} not installed and not root: run `apt-get install prometheus prometheus-pushgateway`"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = [apt, "install", "-y", "--no-install-recommends", *APT_PACKAGES]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            # Usually stale or empty package lists: refresh once and retry.
            subprocess.run([apt, "update"], env=env, capture_output=True, text=True, timeout=timeout)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{missing()} not installed: apt-get install failed: {exc}"
    if proc.returncode != 0:
        return f"{missing()} not installed: apt-get install failed: {proc.stderr.strip()[-300:]}"
    return None if not missing() else f"{missing()} still missing after apt-get install"


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


def backfill(openmetrics_text: str, data_dir: Path, *, timeout: float = 300.0) -> list[Path]:
    """Write OpenMetrics text as TSDB blocks into ``data_dir`` (before Prometheus starts).

    Returns the block directories created.
    """
    with tempfile.TemporaryDirectory(prefix="om-") as tmp:
        src = Path(tmp) / "history.om"
        src.write_text(openmetrics_text)
        return backfill_file(src, data_dir, timeout=timeout)


def backfill_file(openmetrics_file: Path, data_dir: Path, *, timeout: float = 300.0) -> list[Path]:
    """:func:`backfill` from a file (a history too big to hold as one string, e.g. a benchmark's)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    before = set(data_dir.iterdir())
    # Without --max-block-duration promtool writes hundreds of 2 h blocks (FACTS.md).
    cmd = ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=720h",
           str(openmetrics_file), str(data_dir)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"promtool backfill failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return sorted(set(data_dir.iterdir()) - before)


class _Process:
    """A server binary on 127.0.0.1 that is ready when ``/-/ready`` answers 200."""

    name = "server"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
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

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class LocalPushgateway(_Process):
    """``prometheus-pushgateway`` with its persistence file inside ``workdir``."""

    name = "pushgateway"

    def argv(self) -> list[str]:
        return [
            "prometheus-pushgateway",
            f"--web.listen-address=127.0.0.1:{self.port}",
            # Its default is a system path; keep state inside the work directory.
            f"--persistence.file={self.workdir / 'pushgateway.data'}",
            "--web.enable-admin-api",
        ]


class LocalPrometheus(_Process):
    """Prometheus with its TSDB in ``data_dir`` (backfill blocks there before :meth:`start`).

    Args:
        data_dir: the TSDB directory; the config and log go in ``<data_dir>-run`` next to it.
        port: fixed port, or a free one.
        pushgateway: a Pushgateway to scrape every ``scrape_interval`` with ``honor_labels: true``.
        scrape_interval: the global one and the Pushgateway job's.
        evaluation_interval: for rules.
        out_of_order_time_window: e.g. ``"30d"``; needed to accept future-timestamped remote writes
            without breaking later scrapes (see FACTS.md).
        config: extra top-level ``prometheus.yml`` content (merged over the defaults).
        remote_write_receiver: accept ``/api/v1/write`` (``--web.enable-remote-write-receiver``).
        lifecycle: allow ``/-/reload`` and ``/-/quit`` (``--web.enable-lifecycle``).
    """

    name = "prometheus"

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        pushgateway: LocalPushgateway | None = None,
        scrape_interval: str = "2s",
        evaluation_interval: str = "15s",
        out_of_order_time_window: str | None = None,
        config: Mapping[str, Any] | None = None,
        remote_write_receiver: bool = False,
        lifecycle: bool = False,
    ) -> None:
        super().__init__(data_dir.parent / f"{data_dir.name}-run", port)
        self.data_dir = data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.remote_write_receiver = remote_write_receiver
        self.lifecycle = lifecycle
        cfg: dict[str, Any] = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval}
        }
        if pushgateway is not None:
            cfg["scrape_configs"] = [
                {
                    "job_name": "pushgateway",
                    # Keep the pushed task / namespace labels instead of the scrape's own.
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

    def argv(self) -> list[str]:
        argv = [
            "prometheus",
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            # Backfilled history is old: a short retention would delete it at start.
            "--storage.tsdb.retention.time=3650d",
        ]
        if self.remote_write_receiver:
            argv.append("--web.enable-remote-write-receiver")
        if self.lifecycle:
            argv.append("--web.enable-lifecycle")
        return argv

    def query(self, expr: str, time: float | None = None) -> list[dict[str, Any]]:
        """The raw ``data.result`` of an instant query at ``time`` (unix seconds; default now)."""
        params: dict[str, str] = {"query": expr}
        if time is not None:
            params["time"] = str(time)
        resp = requests.get(self.url + "/api/v1/query", params=params, timeout=10)
        resp.raise_for_status()
        result: list[dict[str, Any]] = resp.json()["data"]["result"]
        return result
