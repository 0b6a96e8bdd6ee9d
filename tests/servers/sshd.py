"""Real OpenSSH servers for tests (Debian ``openssh-server``): loopback only, stopped by their owner.

Each :class:`SshServer` is one "host": an ``sshd -D`` on 127.0.0.1 and a free port, with its own
host key, accepting one client key (:class:`SshKey`, generated per test session with
``ssh-keygen``) for the current user, password logins off. Two servers on two ports are two hosts
for ``foresight run --hosts``. :meth:`SshServer.kill_sessions` kills the per-connection ``sshd``
processes while the listener stays up: a host's sessions dropping mid-job, as when a machine
reboots or its network goes away.

:func:`ensure_installed` installs ``openssh-server`` with apt when missing; where that cannot be done
the test is skipped, except under ``CI=true`` where it fails (CI must not pass by testing nothing).
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn

from tests.polling import wait_for
from tests.servers import unavailable

__all__ = ["SSHD", "SshKey", "SshServer", "ensure_installed", "make_key"]

SSHD = "/usr/sbin/sshd"
CLIENT_OPTIONS = ("StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null")
"""What a test client passes (``--ssh-option``): the throwaway host keys are never worth keeping."""


def _unavailable(reason: str) -> NoReturn:
    unavailable("openssh-server", reason)


def ensure_installed() -> str:
    """The path of ``sshd`` (and an ``ssh`` client), installing ``openssh-server`` if needed."""
    if Path(SSHD).is_file() and shutil.which("ssh") and shutil.which("ssh-keygen"):
        return SSHD
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        _unavailable("not installed, and apt-get as root is not available: apt-get install openssh-server")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "--no-install-recommends", "openssh-server", "openssh-client"],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
        if proc.returncode != 0:
            _unavailable(f"{' '.join(cmd)} failed: {proc.stderr[-500:]}")
    if not Path(SSHD).is_file():
        _unavailable("apt-get install openssh-server did not provide /usr/sbin/sshd")
    return SSHD


@dataclass(frozen=True)
class SshKey:
    """A client key pair made for the tests (no passphrase)."""

    private: Path
    public: Path


def make_key(directory: Path) -> SshKey:
    directory.mkdir(parents=True, exist_ok=True)
    private = directory / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-C", "foresight-test", "-f", str(private)],
        check=True,
        capture_output=True,
    )
    return SshKey(private=private, public=directory / "id_ed25519.pub")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SshServer:
    """``with SshServer(key) as host: host.address`` -- ``user@127.0.0.1:port``."""

    def __init__(self, key: SshKey, binary: str | None = None) -> None:
        self.binary = binary or ensure_installed()
        self.key = key
        self.port = 0
        self.user = getpass.getuser()
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._log: IO[bytes] | None = None

    @property
    def address(self) -> str:
        """The host as ``--hosts`` takes it."""
        return f"{self.user}@127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> SshServer:
        self._dir = tempfile.TemporaryDirectory(prefix="sshd-")
        d = Path(self._dir.name)
        subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", str(d / "host_key")],
                       check=True, capture_output=True)  # fmt: skip
        shutil.copy(self.key.public, d / "authorized_keys")
        # Privilege separation needs this directory (created by the Debian service normally).
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        (d / "sshd_config").write_text(
            "\n".join([
                "ListenAddress 127.0.0.1",
                f"HostKey {d / 'host_key'}",
                f"AuthorizedKeysFile {d / 'authorized_keys'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no",
                f"PidFile {d / 'sshd.pid'}",
                "MaxStartups 100",
                "MaxSessions 100",
                "",
            ])
        )  # fmt: skip
        self.port = _free_port()
        self._log = open(d / "sshd.log", "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [self.binary, "-D", "-e", "-p", str(self.port), "-f", str(d / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        proc = self._proc

        def accepting() -> bool:
            if proc.poll() is not None:
                log = (d / "sshd.log").read_text(errors="replace")[-1500:]
                self.stop()
                _unavailable(f"sshd exited with {proc.returncode}: {log}")
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True

        try:
            wait_for(accepting, f"sshd to accept on 127.0.0.1:{self.port}", timeout=timeout_s, interval=0.05,
                     ignoring=(OSError,))  # fmt: skip
        except AssertionError as exc:
            self.stop()
            _unavailable(str(exc))
        return self

    def session_pids(self) -> list[int]:
        """The per-connection ``sshd`` processes (children of this server's listener)."""
        if self._proc is None:
            return []
        listener = self._proc.pid
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == listener:
                pids.append(int(entry.name))
        return pids

    def kill_sessions(self) -> list[int]:
        """SIGKILL every session of this host (its listener stays up); returns the pids killed."""
        killed = []
        for pid in self.session_pids():
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        return killed

    def stop(self) -> None:
        if self._proc is not None:
            self.kill_sessions()
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> SshServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
