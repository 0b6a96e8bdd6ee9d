"""The launcher against stand-in rank agents (tiny scripts, no torch): payloads, results, and stopping.

A stand-in reads its payload line like the real agent and then does what its ``BEHAVIOUR`` says:
succeed, fail with a result line, die without one, or wait for its standard input to close (the
launcher's stop signal) and record that it saw it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from foresight.run.hosts import Host, SshClient
from foresight.run.launcher import Launcher, RankSpec

STANDIN = r"""
import json, os, sys, time
payload = json.loads(sys.stdin.readline())
env = payload["env"]
rank, behaviour, marks = int(env["RANK"]), env["BEHAVIOUR"], env["MARKS"]
open(os.path.join(marks, f"payload-{rank}.json"), "w").write(json.dumps(payload))
print(json.dumps({"event": "agent", "pid": os.getpid(), "pgid": os.getpid(), "host": "standin"}), flush=True)
if behaviour == "ok":
    print(json.dumps({"event": "epoch", "epoch": 1, "epochs": 1, "loss": 0.5}), flush=True)
    result = {"event": "result", "reason": "Succeeded", "stateSha256": "abc", "rank": rank}
    print(json.dumps(result), flush=True)
    sys.exit(0)
if behaviour == "fail":
    time.sleep(0.3)
    print("a log line that is not JSON", file=sys.stderr, flush=True)
    print(json.dumps({"event": "result", "reason": "NaNLoss", "message": "loss is nan", "retryable": False}))
    sys.exit(4)
if behaviour == "die":
    time.sleep(0.3)
    sys.exit(int(env.get("CODE", "137")))
if behaviour == "wait":
    sys.stdin.read()  # until the launcher closes our stdin
    open(os.path.join(marks, f"stopped-{rank}"), "w").write("eof")
    sys.exit(143)
"""


@pytest.fixture
def standin(tmp_path: Path) -> Path:
    """An executable that runs the stand-in agent whatever arguments it gets (like ``python -m ...``)."""
    script = tmp_path / "agent.py"
    script.write_text(STANDIN)
    exe = tmp_path / "standin"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")
    exe.chmod(0o755)
    return exe


def _launcher(standin: Path, lines: list[str], **kwargs: object) -> Launcher:
    return Launcher(emit=lines.append, format_event=lambda doc: f"event {doc.get('event')}",
                    python=str(standin), stop_grace_s=10, **kwargs)  # type: ignore[arg-type]  # fmt: skip


def _rank(rank: int, behaviour: str, marks: Path, host: Host | None = None, **env: str) -> RankSpec:
    return RankSpec(rank=rank, host=host, env={"RANK": str(rank), "BEHAVIOUR": behaviour, "MARKS": str(marks),
                                                **env})  # fmt: skip


def test_all_ranks_succeed_with_their_payload_and_rank0s_progress(standin: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    attempt = _launcher(standin, lines).run(
        [_rank(0, "ok", tmp_path), _rank(1, "ok", tmp_path)],
        {"task": "toy"},
        {"AWS_SECRET_ACCESS_KEY": "s3cr3t"},
    )
    assert attempt.ok and sorted(attempt.results) == [0, 1]
    assert attempt.last_epoch == {"event": "epoch", "epoch": 1, "epochs": 1, "loss": 0.5}
    payload = (tmp_path / "payload-1.json").read_text()
    assert '"task": "toy"' in payload and "s3cr3t" in payload  # secrets reach the rank on its stdin...
    assert not any("s3cr3t" in line for line in lines)  # ...and never the output
    assert "[local rank 0] event epoch" in lines and "[local rank 1] event epoch" not in lines


def test_the_first_failure_stops_the_other_ranks_and_gives_the_reason(standin: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    attempt = _launcher(standin, lines).run([_rank(0, "wait", tmp_path), _rank(1, "fail", tmp_path)], {}, {})
    assert not attempt.ok and not attempt.lost
    assert (attempt.reason, attempt.retryable) == ("NaNLoss", False)
    assert attempt.message == "local rank 1: loss is nan"
    assert (tmp_path / "stopped-0").read_text() == "eof"  # rank 0 was told to stop through its stdin
    assert "[local rank 1] a log line that is not JSON" in lines


def test_a_rank_that_dies_without_a_result_is_a_retryable_failure(standin: Path, tmp_path: Path) -> None:
    attempt = _launcher(standin, []).run([_rank(0, "die", tmp_path, CODE="137")], {}, {})
    assert (attempt.reason, attempt.retryable) == ("TrainingFailed", True)
    assert "ended with exit status 137 without a result" in attempt.message


def test_an_ssh_session_that_drops_is_a_lost_host_not_a_failed_rank(standin: Path, tmp_path: Path) -> None:
    # The stand-in plays the ssh client: exit 255 without a result is what ssh does when the session dies.
    ssh = SshClient(ssh=str(standin))
    host_a, host_b = Host("a"), Host("b", port=2222)
    attempt = _launcher(standin, [], ssh=ssh).run(
        [_rank(0, "wait", tmp_path, host=host_a), _rank(1, "die", tmp_path, host=host_b, CODE="255")], {}, {}
    )
    assert attempt.reason == "HostLost" and attempt.lost == [host_b]
    assert attempt.message == "the SSH session to b:2222 dropped"
    assert (tmp_path / "stopped-0").exists()


def test_a_deadline_stops_every_rank(standin: Path, tmp_path: Path) -> None:
    launcher = _launcher(standin, [])
    attempt = launcher.run([_rank(0, "wait", tmp_path)], {}, {}, deadline=launcher.clock() + 0.5)
    assert attempt.reason == "DeadlineExceeded" and (tmp_path / "stopped-0").exists()


def test_ctrl_c_stops_every_rank(standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time as time_module

    calls = {"n": 0}
    real_sleep = time_module.sleep

    def interrupted_sleep(seconds: float) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real_sleep(seconds)

    monkeypatch.setattr("foresight.run.launcher.time.sleep", interrupted_sleep)
    attempt = _launcher(standin, []).run([_rank(0, "wait", tmp_path), _rank(1, "wait", tmp_path)], {}, {})
    assert attempt.interrupted and attempt.reason == "Interrupted"
    assert (tmp_path / "stopped-0").exists() and (tmp_path / "stopped-1").exists()
    assert all(r.exit_code is not None for r in attempt.runs)
