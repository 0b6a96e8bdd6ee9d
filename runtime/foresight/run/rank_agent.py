"""One training rank on a compute host: what ``foresight run --local`` and ``--hosts`` start per rank.

``python -m foresight.run.rank_agent`` is the pod of the no-Kubernetes modes. It reads one JSON
line from standard input, ``{"config": <TrainConfig document>, "env": {NAME: value}}``, writes
the config into a private temporary directory and runs ``foresight train --config`` (the very
command a TrainingJob's pods run) as a child in a process group of its own, with ``env`` added
to its environment. Secrets (S3 keys) travel in that line, never on a command line where ``ps``
would show them.

The child's output goes straight to this process's stdout / stderr (over SSH: back to the
launcher). Before it, one line ``{"event": "agent", "pid", "pgid", "host"}`` says which process
group to kill. The agent then keeps reading standard input: end of file means the launcher is
gone (Ctrl-C, the SSH session dropped, or the launcher stopping this rank), and the agent kills
the whole process group (SIGTERM, then SIGKILL after :data:`KILL_GRACE_S`), so no rank outlives
its job. SIGTERM / SIGHUP / SIGINT to the agent do the same. The exit status is the child's.

Standard library only, so that a host with a broken install still gets a readable error.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

__all__ = ["KILL_GRACE_S", "main"]

KILL_GRACE_S = 10.0
"""Seconds between SIGTERM and SIGKILL of the rank's process group (a checkpoint write finishes)."""


class _Rank:
    def __init__(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child
        self._lock = threading.Lock()
        self._stopping = False

    def stop(self) -> None:
        """Kill the rank's whole process group (once, from whichever thread asks first)."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        for sig, wait_s in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.child.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.child.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue


def _watch_stdin(rank: _Rank) -> None:
    # os.read on the descriptor, not sys.stdin: a daemon thread blocked inside a buffered reader
    # holds its lock, and the interpreter aborts at exit when it cannot take it.
    fd = sys.stdin.fileno()
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass
    rank.stop()  # the launcher (or the SSH session carrying it) is gone


def _read_line(fd: int) -> bytes:
    # Byte by byte, so nothing after the payload line sits in a buffer the watcher would not see.
    out = bytearray()
    while not out.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one rank; returns its exit status."""
    del argv  # everything comes on standard input
    line = _read_line(sys.stdin.fileno())
    try:
        payload = json.loads(line)
        config, extra = payload["config"], dict(payload.get("env") or {})
    except (ValueError, KeyError, TypeError) as exc:
        print(f"foresight rank agent: the first line of stdin is not a rank payload: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="foresight-rank-") as tmp:
        cfg = Path(tmp) / "train.json"
        cfg.write_text(json.dumps(config))
        env = {**os.environ, **{str(k): str(v) for k, v in extra.items()}}
        # Never /dev/termination-log on a plain host: the result line on stdout is what counts here.
        env["FORESIGHT_TERMINATION_LOG"] = str(Path(tmp) / "termination-log")
        child = subprocess.Popen(
            [sys.executable, "-m", "foresight.cli", "train", "--config", str(cfg)],
            env=env,
            cwd=tmp,
            start_new_session=True,  # its own process group: one killpg stops it and its children
        )
        rank = _Rank(child)

        def on_signal(signum: int, frame: FrameType | None) -> None:
            threading.Thread(target=rank.stop, daemon=True).start()

        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, on_signal)
        hello = {"event": "agent", "pid": os.getpid(), "pgid": child.pid, "host": socket.gethostname()}
        sys.stdout.write(json.dumps(hello) + "\n")
        sys.stdout.flush()
        threading.Thread(target=_watch_stdin, args=(rank,), daemon=True).start()
        code = child.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
