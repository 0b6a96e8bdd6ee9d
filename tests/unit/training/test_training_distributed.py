"""DDP with gloo on CPU: two real worker processes, and a worker that never joins."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from foresight.training import DistEnv, WorkerJoinTimeoutError
from foresight.training.distributed import process_group
from training_helpers import free_port, json_lines, toy_config

_MAIN = "import sys; from foresight.training import main; sys.exit(main(['--config', sys.argv[1]]))"


def _worker_env(tmp: Path, rank: int, world: int, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        FORESIGHT_TERMINATION_LOG=str(tmp / f"termination-{rank}"),
        OMP_NUM_THREADS="1",
    )
    return env


def test_two_gloo_workers_end_with_identical_weights_and_only_rank0_writes(tmp_path: Path) -> None:
    config = toy_config(tmp_path, epochs=2)
    cfg_file = tmp_path / "train.json"
    cfg_file.write_text(config.model_dump_json(by_alias=True))
    port = free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _MAIN, str(cfg_file)],
            env=_worker_env(tmp_path, rank, 2, port),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=120)
            outs.append(out)
            assert p.returncode == 0, err[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    term = [json.loads((tmp_path / f"termination-{r}").read_text()) for r in (0, 1)]
    assert term[0]["stateSha256"] == term[1]["stateSha256"]
    assert [t["worldSize"] for t in term] == [2, 2] and [t["rank"] for t in term] == [0, 1]
    assert "artifactUri" in term[0] and "artifactUri" not in term[1]
    # Rank 1 reports nothing (one job, one progress stream) but ends with the result line.
    assert [e["event"] for e in json_lines(outs[1])] == ["result"]
    assert [e["epoch"] for e in json_lines(outs[0]) if e["event"] == "epoch"] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["epoch-000001.pt", "epoch-000002.pt"]
    # Each rank trained on half the data per epoch: a different trajectory than one process.
    single = toy_config(tmp_path / "single", epochs=2)
    from foresight.training import run_training

    _, one = run_training(
        single, environ={"FORESIGHT_TERMINATION_LOG": str(tmp_path / "t1")}, stdout=io.StringIO()
    )
    assert one["stateSha256"] != term[0]["stateSha256"]


_BROADCAST = """
import os, sys
from foresight.training import DistEnv
from foresight.training.distributed import process_group
with process_group(DistEnv.from_environ(os.environ), backend="gloo", timeout_s=60) as ctx:
    print(repr(ctx.broadcast_from_main(float(sys.argv[1]))))
"""


def test_ranks_agree_on_rank0s_value_such_as_the_end_of_a_promql_range(tmp_path: Path) -> None:
    # Each rank offers its own clock reading; all of them must use rank 0's.
    port = free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _BROADCAST, str(value)],
            env=_worker_env(tmp_path, rank, 2, port),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank, value in ((0, 1_700_000_000.25), (1, 1_700_000_003.5))
    ]
    try:
        results = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err[-3000:]
            results.append(float(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert results == [1_700_000_000.25, 1_700_000_000.25]
    with process_group(DistEnv()) as single:
        assert single.broadcast_from_main(42.5) == 42.5


def test_rank0_alone_times_out_with_worker_join_timeout() -> None:
    env = DistEnv(rank=0, world_size=2, master_addr="127.0.0.1", master_port=free_port())
    with pytest.raises(WorkerJoinTimeoutError) as info, process_group(env, timeout_s=2):
        pass
    err = info.value
    assert (err.world_size, err.master_addr, err.reason) == (2, "127.0.0.1", "WorkerJoinTimeout")
    assert "2 workers" in str(err) and "joinTimeoutSeconds" in str(err)


def test_worker_without_master_exits_with_join_timeout_code(tmp_path: Path) -> None:
    config = toy_config(tmp_path, epochs=1, distributed={"joinTimeoutSeconds": 2})
    cfg_file = tmp_path / "train.yaml"
    cfg_file.write_text(json.dumps(config.model_dump(by_alias=True)))
    proc = subprocess.run(
        [sys.executable, "-c", _MAIN, str(cfg_file)],
        env=_worker_env(tmp_path, 1, 2, free_port()),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 6, proc.stderr[-2000:]
    term = json.loads((tmp_path / "termination-1").read_text())
    assert term["reason"] == "WorkerJoinTimeout" and term["retryable"] is True
    assert "127.0.0.1" in term["message"]


def test_job_completion_index_is_the_rank_of_an_indexed_job() -> None:
    env = DistEnv.from_environ({"JOB_COMPLETION_INDEX": "3", "WORLD_SIZE": "4", "MASTER_ADDR": "tj-0.tj"})
    assert (env.rank, env.world_size, env.master_addr, env.is_main) == (3, 4, "tj-0.tj", False)
    assert DistEnv.from_environ({"RANK": "1", "JOB_COMPLETION_INDEX": "3", "WORLD_SIZE": "4"}).rank == 1
    assert not DistEnv.from_environ({}).distributed
