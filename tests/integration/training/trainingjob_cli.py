"""Running ``foresight run -f trainingjob.yaml --local | --hosts`` as a user would: a child process whose
output is read line by line while it runs (so a test can act mid-training), plus TrainingJob YAML
and dataset helpers shared by the local, SSH, quality and distillation tests."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from foresight.timeseries import Panel
from foresight.training.tasks.forecast import save_panel_npz

from tests.polling import wait_for

ROOT = Path(__file__).resolve().parents[3]
STARTED = re.compile(
    r"^\[(?P<label>[^\]]+) rank (?P<rank>\d+)\] started on \S+: pid (?P<pid>\d+), process group (?P<pgid>\d+)"
)


@dataclass
class RunningJob:
    """A ``foresight run`` child process and the lines it printed so far."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _ended: bool = False

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _next_line(self, block_s: float) -> str | None:
        """The next line printed (kept in ``lines``), ``None`` when none came within ``block_s``;
        ``EOFError`` once the process closed its output."""
        if self._ended:
            raise EOFError
        try:
            line = self._queue.get(timeout=block_s)
        except queue.Empty:
            return None
        if line is None:
            self._ended = True
            raise EOFError
        self.lines.append(line)
        return line

    def _tail(self) -> str:
        return "output:\n" + "\n".join(self.lines[-80:])

    def wait_for(self, predicate: Callable[[str], bool], timeout_s: float = 180.0) -> str:
        """Read output until a line matches ``predicate``; fail with the output so far if it never does."""

        def matching() -> str | None:
            try:
                line = self._next_line(0.5)
            except EOFError:
                raise AssertionError("the output ended before the expected line; " + self._tail()) from None
            return line if line is not None and predicate(line) else None

        # interval 0: _next_line already blocks for the next line (no sleep between lines).
        return wait_for(matching, lambda: "the expected line; " + self._tail(), timeout=timeout_s, interval=0)

    def finish(self, timeout_s: float = 300.0) -> int:
        """Wait for the process to end, collecting the rest of its output; returns its exit status."""

        def ended() -> bool:
            try:
                self._next_line(0.5)
            except EOFError:
                return True
            return False

        try:
            wait_for(ended, lambda: "foresight run to end; " + self._tail(), timeout=timeout_s, interval=0)
        except AssertionError:
            self.proc.kill()
            raise
        return self.proc.wait(timeout=30)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def started(self) -> list[dict[str, Any]]:
        """The ranks' "started" lines: host label, rank, agent pid and process group."""
        out = []
        for line in self.lines:
            m = STARTED.match(line)
            if m:
                out.append({"label": m["label"], "rank": int(m["rank"]), "pid": int(m["pid"]),
                            "pgid": int(m["pgid"])})  # fmt: skip
        return out


def start_run(args: Sequence[str], *, env: Mapping[str, str] | None = None) -> RunningJob:
    """``python -m foresight.cli run ARGS`` with stderr folded into stdout."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "foresight.cli", "run", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    job = RunningJob(proc)
    threading.Thread(target=job._pump, daemon=True).start()
    return job


def write_trainingjob(path: Path, name: str, namespace: str, spec: Mapping[str, Any]) -> Path:
    doc = {"apiVersion": "foresight.dev/v1alpha1", "kind": "TrainingJob",
           "metadata": {"name": name, "namespace": namespace}, "spec": dict(spec)}  # fmt: skip
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def small_panel(path: Path, *, series: int = 4, steps: int = 240, nan_every: int = 0) -> Path:
    """A sine panel saved as ``.npz`` (``nan_every`` > 0 blanks every n-th point: missing values)."""
    t = np.arange(steps, dtype=np.float64)
    values = np.stack([10 + 3 * np.sin(t / 4 + i) + 0.1 * i for i in range(series)])
    if nan_every:
        values.reshape(-1)[::nan_every] = np.nan
    panel = Panel(start=0, step=3600, keys=[{"user": f"u{i}"} for i in range(series)], values=values)
    save_panel_npz(panel, path)
    return path


def status_json(state_dir: Path, namespace: str, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (state_dir / "trainingjobs" / namespace / name / "status.json").read_text()
    )
    return doc


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is gone for our purpose.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def group_alive(pgid: int) -> bool:
    """Whether any live process still belongs to process group ``pgid``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def still_alive(pids: Sequence[int], pgids: Sequence[int]) -> list[str]:
    return [f"pid {p}" for p in pids if pid_alive(p)] + [f"group {g}" for g in pgids if group_alive(g)]


def wait_gone(pids: Sequence[int], pgids: Sequence[int], timeout_s: float = 30.0) -> None:
    """Wait until every pid and process group is gone; fail naming what is still alive."""
    try:
        wait_for(lambda: not still_alive(pids, pgids), "the ranks' processes to end", timeout=timeout_s)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: still alive: {still_alive(pids, pgids)}") from None
