"""Starting, watching and stopping the ranks of one training attempt, on this machine or over SSH.

Each rank is one :mod:`foresight.run.rank_agent` process (the pod of the no-Kubernetes modes),
started either here (``--local``) or on a host through the system ``ssh`` client (``--hosts``):
the only difference is the command prefix. The launcher sends each agent its payload (the
TrainConfig and the rank's environment, secrets included) on standard input, streams every
line back prefixed with the rank's host, and watches the processes:

- all ranks exit 0: the attempt succeeded; each rank's ``result`` line is kept (rank 0's holds the
  artifact, every rank's holds the hash of its final weights);
- a rank fails: the others are stopped at once (their standard input is closed, so each agent
  kills its rank's process group; past :data:`STOP_GRACE_S` the remote group is killed over a
  fresh SSH call and the local ``ssh`` client too), and the failure is classified: an ``ssh``
  that exited 255 without a result means its host dropped (:attr:`Attempt.lost`); otherwise the
  first rank to fail gives the reason (its ``result`` line, or "ended without a result");
- Ctrl-C (``KeyboardInterrupt``) and a deadline stop every rank the same way.

What to do next (retry, resume on the remaining hosts, wait for a host) is the caller's policy.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from .hosts import Host, SshClient, remote_command

__all__ = ["AGENT_MODULE", "STOP_GRACE_S", "Attempt", "Launcher", "RankRun", "RankSpec"]

AGENT_MODULE = "foresight.run.rank_agent"
STOP_GRACE_S = 20.0
"""How long a stopped rank may take to go (its agent's SIGTERM grace plus the SSH round trip)."""
SSH_FAILED = 255
"""``ssh``'s own exit status when the connection failed or dropped (the remote command's otherwise)."""

Emit = Callable[[str], None]
Formatter = Callable[[Mapping[str, Any]], "str | None"]


@dataclass(frozen=True)
class RankSpec:
    """Where one rank runs and the environment that makes it that rank."""

    rank: int
    host: Host | None
    """``None``: a process on this machine."""
    env: Mapping[str, str]
    """RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, CUDA_VISIBLE_DEVICES..."""

    @property
    def label(self) -> str:
        where = self.host.label if self.host is not None else "local"
        return f"{where} rank {self.rank}"


@dataclass
class RankRun:
    """One started rank and what it said."""

    spec: RankSpec
    proc: subprocess.Popen[str]
    agent: dict[str, Any] | None = None
    """The agent's hello line: its pid and the rank's process group."""
    result: dict[str, Any] | None = None
    """The rank's ``result`` line (``foresight train``'s final JSON)."""
    last_epoch: dict[str, Any] | None = None
    exit_code: int | None = None
    ended_at: float | None = None
    readers: list[threading.Thread] = field(default_factory=list)

    @property
    def dropped(self) -> bool:
        """The SSH session died under the rank (its host dropped), as opposed to the rank failing."""
        return self.spec.host is not None and self.exit_code == SSH_FAILED and self.result is None


@dataclass
class Attempt:
    """How one attempt ended."""

    ok: bool
    runs: list[RankRun]
    reason: str = ""
    message: str = ""
    retryable: bool = False
    lost: list[Host] = field(default_factory=list)
    """Hosts whose session dropped during the attempt."""
    interrupted: bool = False

    @property
    def results(self) -> dict[int, dict[str, Any]]:
        return {r.spec.rank: r.result for r in self.runs if r.result is not None}

    @property
    def last_epoch(self) -> dict[str, Any] | None:
        main = next((r for r in self.runs if r.spec.rank == 0), None)
        return main.last_epoch if main is not None else None


class Launcher:
    """Runs attempts: every rank of the job at once, watched until all end or one fails."""

    def __init__(
        self,
        *,
        emit: Emit,
        format_event: Formatter,
        ssh: SshClient | None = None,
        python: str = sys.executable,
        clock: Callable[[], float] = time.monotonic,
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        """
        Args:
            emit: writes one line of output (thread-safe wrapper added here).
            format_event: rank 0's JSON event -> a line for a person, or ``None`` to skip it.
            ssh: the SSH client for ranks on hosts (``None``: local ranks only).
            python: the Python of local ranks.
            clock: monotonic seconds, for deadlines.
            stop_grace_s: how long a stopped rank may take before it is killed harder.
        """
        self._lock = threading.Lock()
        self._emit = emit
        self.format_event = format_event
        self.ssh = ssh
        self.python = python
        self.clock = clock
        self.stop_grace_s = stop_grace_s

    def emit(self, line: str) -> None:
        with self._lock:
            self._emit(line)

    def _argv(self, spec: RankSpec) -> list[str]:
        if spec.host is None:
            return [self.python, "-m", AGENT_MODULE]
        if self.ssh is None:
            raise ValueError("ranks on hosts need an SshClient")
        return self.ssh.argv(spec.host, remote_command(spec.host, ["-m", AGENT_MODULE]))

    def _read_stdout(self, run: RankRun, stream: IO[str]) -> None:
        prefix = f"[{run.spec.label}]"
        for raw in stream:
            line = raw.rstrip("\n")
            doc = _json(line)
            if doc is None:
                if line.strip():
                    self.emit(f"{prefix} {line}")
                continue
            event = doc.get("event")
            if event == "agent":
                run.agent = doc
                self.emit(
                    f"{prefix} started on {doc.get('host')}: pid {doc.get('pid')}, "
                    f"process group {doc.get('pgid')}"
                )
            elif event == "result":
                run.result = doc
            else:
                if event == "epoch":
                    run.last_epoch = doc
                text = self.format_event(doc) if run.spec.rank == 0 else None
                if text:
                    self.emit(f"{prefix} {text}")

    def _read_stderr(self, run: RankRun, stream: IO[str]) -> None:
        prefix = f"[{run.spec.label}]"
        for raw in stream:
            if raw.strip():
                self.emit(f"{prefix} {raw.rstrip()}")

    def start(self, spec: RankSpec, config: Mapping[str, Any], secret_env: Mapping[str, str]) -> RankRun:
        """Start one rank and send it its payload (the stdin stays open: closing it stops the rank)."""
        proc = subprocess.Popen(
            self._argv(spec),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            # Its own session: a Ctrl-C in the terminal reaches the launcher only, which then stops
            # every rank in order (closing stdin lets each agent kill its rank's process group).
            start_new_session=True,
        )
        run = RankRun(spec=spec, proc=proc)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        payload = {"config": dict(config), "env": {**spec.env, **secret_env}}
        try:
            proc.stdin.write(json.dumps(payload) + "\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # it died at once (ssh refused): its exit status tells why
        for target, stream in ((self._read_stdout, proc.stdout), (self._read_stderr, proc.stderr)):
            t = threading.Thread(target=target, args=(run, stream), daemon=True)
            t.start()
            run.readers.append(t)
        return run

    def run(
        self,
        specs: Sequence[RankSpec],
        config: Mapping[str, Any],
        secret_env: Mapping[str, str],
        *,
        deadline: float | None = None,
        poll_s: float = 0.2,
    ) -> Attempt:
        """Start every rank, wait until all succeed or one fails, stop the rest, classify the end."""
        runs: list[RankRun] = []
        interrupted = timed_out = False
        try:
            runs = [self.start(s, config, secret_env) for s in specs]
            while True:
                now = self.clock()
                for r in runs:
                    if r.exit_code is None and r.proc.poll() is not None:
                        r.exit_code, r.ended_at = r.proc.returncode, now
                if any(r.exit_code not in (None, 0) for r in runs) or all(r.exit_code == 0 for r in runs):
                    break
                if deadline is not None and now > deadline:
                    timed_out = True
                    break
                time.sleep(poll_s)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            self.stop(runs)
        return self._classify(runs, interrupted=interrupted, timed_out=timed_out)

    def stop(self, runs: Sequence[RankRun]) -> None:
        """Stop every rank still running: close its stdin, then kill harder after the grace period."""
        live = [r for r in runs if r.proc.poll() is None]
        for r in live:
            try:
                assert r.proc.stdin is not None
                r.proc.stdin.close()  # the agent sees end of file and kills its rank's process group
            except OSError:
                pass
        end = self.clock() + self.stop_grace_s
        for r in live:
            try:
                r.proc.wait(timeout=max(0.1, end - self.clock()))
            except subprocess.TimeoutExpired:
                self._kill_hard(r)
        for r in runs:
            if r.exit_code is None:
                r.exit_code, r.ended_at = r.proc.wait(), self.clock()
            for t in r.readers:
                t.join(timeout=5)

    def _kill_hard(self, run: RankRun) -> None:
        host, agent = run.spec.host, run.agent
        if host is not None and self.ssh is not None and agent and agent.get("pgid"):
            # The session is alive but the agent did not stop its rank: kill the group remotely.
            self.emit(
                f"[{run.spec.label}] still running after {self.stop_grace_s:g}s: killing its process group"
            )
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                self.ssh.run(host, f"kill -KILL -- -{int(agent['pgid'])} {int(agent['pid'])}", timeout_s=30)
        run.proc.kill()
        run.proc.wait()

    def _classify(self, runs: list[RankRun], *, interrupted: bool, timed_out: bool) -> Attempt:
        if interrupted:
            return Attempt(False, runs, "Interrupted", "stopped by Ctrl-C; every rank was stopped",
                           interrupted=True)  # fmt: skip
        if timed_out:
            return Attempt(False, runs, "DeadlineExceeded",
                           "runPolicy.activeDeadlineSeconds passed: every rank was stopped")  # fmt: skip
        if runs and all(r.exit_code == 0 for r in runs):
            return Attempt(True, runs, "Succeeded", "training finished")
        lost = list({id(r.spec.host): r.spec.host for r in runs if r.dropped and r.spec.host}.values())
        if lost:
            names = ", ".join(h.label for h in lost)
            return Attempt(False, runs, "HostLost", f"the SSH session to {names} dropped", True, lost)
        failed = sorted(
            (r for r in runs if r.exit_code not in (None, 0)), key=lambda r: (r.ended_at or 0.0, r.spec.rank)
        )
        first = failed[0] if failed else runs[0]
        if first.result is not None and first.result.get("reason"):
            doc = first.result
            message = f"{first.spec.label}: {doc.get('message') or doc['reason']}"
            return Attempt(False, runs, str(doc["reason"]), message, bool(doc.get("retryable")))
        # No result line: the rank was killed (OOM killer, a signal) or could not start.
        return Attempt(
            False,
            runs,
            "TrainingFailed",
            f"{first.spec.label} ended with exit status {first.exit_code} without a result: see its log "
            "lines above (killed by a signal or the out-of-memory killer?)",
            True,
        )


def _json(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
