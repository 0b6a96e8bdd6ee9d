"""A real ``redis-server`` for tests (Debian package), on 127.0.0.1, a free port, no persistence.

:func:`ensure_installed` installs ``redis-server`` with apt when missing; where that cannot be done
the test is skipped, except under ``CI=true`` where it fails (CI must not pass by testing nothing).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from tests.polling import wait_for
from tests.servers import unavailable

__all__ = ["RedisServer", "ensure_installed"]


def _unavailable(reason: str) -> NoReturn:
    unavailable("redis-server", reason)


def ensure_installed() -> str:
    """The path of ``redis-server``, installing the Debian package if needed (skip / fail otherwise)."""
    path = shutil.which("redis-server")
    if path:
        return path
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        _unavailable("not installed, and apt-get as root is not available: apt-get install redis-server")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "--no-install-recommends", "redis-server"],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
        if proc.returncode != 0:
            _unavailable(f"{' '.join(cmd)} failed: {proc.stderr[-500:]}")
    path = shutil.which("redis-server")
    if not path:
        _unavailable("apt-get install redis-server did not provide the binary")
    assert path is not None
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``with RedisServer() as r: r.url`` -- stopped (and its temp dir removed) on exit."""

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or ensure_installed()
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self._dir = tempfile.TemporaryDirectory(prefix="redis-")
        self.port = _free_port()
        self._proc = subprocess.Popen(
            [
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir.name,
                "--protected-mode",
                "yes",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(self._pong, f"redis-server to answer PING on 127.0.0.1:{self.port}", timeout=10,
                     interval=0.02, ignoring=(OSError,))  # fmt: skip
        except BaseException:
            self.stop()
            raise
        return self

    def _pong(self) -> bool:
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self._proc.returncode} on port {self.port}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


if __name__ == "__main__":  # a manual check: start, print the URL, stop
    with RedisServer() as server:
        print(server.url, Path(server.binary))
