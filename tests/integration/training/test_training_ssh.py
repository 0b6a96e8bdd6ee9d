"""``foresight run -f trainingjob.yaml --hosts``: DDP over SSH against two real ``sshd`` on 127.0.0.1.

Two OpenSSH servers on two ports are two hosts (:mod:`tests.servers.sshd`), reached with a key
made for the session; checkpoints and the model go to a real S3 server (moto over HTTP). The
"remote" runtime is this checkout: the tests pass its Python and PYTHONPATH explicitly
(``--remote-python``, ``--remote-env``), as a user points at the hosts' own install.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import foresight
import foresight_operator
import pytest
import yaml
from minio import Minio

from tests.integration.training.trainingjob_cli import (
    small_panel,
    start_run,
    status_json,
    wait_gone,
    write_trainingjob,
)
from tests.servers.s3 import REGION, MotoS3Server, unique_bucket
from tests.servers.sshd import CLIENT_OPTIONS, SshKey, SshServer, ensure_installed, make_key

pytestmark = pytest.mark.integration

NAMESPACE = "ml"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> SshKey:
    ensure_installed()
    return make_key(tmp_path_factory.mktemp("ssh-key"))


@pytest.fixture(scope="module")
def hosts(key: SshKey) -> Iterator[tuple[SshServer, SshServer]]:
    with SshServer(key) as a, SshServer(key) as b:
        yield a, b


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3Server]:
    with MotoS3Server() as server:
        yield server


@pytest.fixture
def bucket(s3: MotoS3Server, tmp_path: Path) -> str:
    """A bucket with a small forecast panel at ``data/panel.npz``."""
    client = _client(s3)
    name = unique_bucket("ssh")
    client.make_bucket(name)
    client.fput_object(name, "data/panel.npz", str(small_panel(tmp_path / "panel.npz")))
    return name

# The "remote" runtime is this checkout's code, wherever it is imported from (an editable install
# or PYTHONPATH): its runtime and operator package roots.
CHECKOUT_PATH = os.pathsep.join(
    str(Path(module.__file__).resolve().parents[1])  # type: ignore[arg-type]
    for module in (foresight, foresight_operator)
)


def _client(s3: MotoS3Server) -> Minio:
    return Minio(
        s3.endpoint, s3.credentials.access_key, s3.credentials.secret_key, secure=False, region=REGION
    )


def _job(tmp: Path, s3: MotoS3Server, bucket: str, name: str, *, epochs: int, windows: int) -> Path:
    return write_trainingjob(tmp / f"{name}.yaml", name, NAMESPACE, {
        "task": "forecast", "model": "gru", "epochs": epochs, "seed": 3,
        "dataset": {"uri": f"s3://{bucket}/data/panel.npz"},
        "hyperparameters": {"horizon": "6", "inputWindow": "24", "hiddenSize": "8",
                            "windowsPerEpoch": str(windows)},
        "distributed": {"backend": "torch", "workers": 2},
        "checkpoint": {"everyEpochs": 1, "keep": 3},
        "artifacts": {"uri": f"s3://{bucket}/runs/", "endpoint": s3.endpoint, "insecure": True},
        "output": {"modelName": "ssh-forecaster"},
    })  # fmt: skip


def _args(job: Path, state: Path, key: SshKey, *hosts: str, extra: tuple[str, ...] = ()) -> list[str]:
    args = ["-f", str(job), "--state-dir", str(state), "-i", str(key.private),
            "--remote-python", sys.executable, "--remote-env", f"PYTHONPATH={CHECKOUT_PATH}",
            "--remote-env", "OMP_NUM_THREADS=1", *extra]  # fmt: skip
    if hosts:
        args += ["--hosts", ",".join(hosts)]
    for option in CLIENT_OPTIONS:
        args += ["--ssh-option", option]
    return args


def _env(s3: MotoS3Server) -> dict[str, str]:
    # S3 keys from this machine's environment, as a user exports them (never in the YAML).
    return {
        "AWS_ACCESS_KEY_ID": s3.credentials.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.credentials.secret_key,
    }


def _objects(s3: MotoS3Server, bucket: str, prefix: str) -> list[str]:
    return sorted(o.object_name for o in _client(s3).list_objects(bucket, prefix=prefix, recursive=True))


def test_two_hosts_train_one_ddp_job_to_identical_weights_and_record_the_model(
    hosts: tuple[SshServer, SshServer], key: SshKey, s3: MotoS3Server, bucket: str, tmp_path: Path
) -> None:
    a, b = hosts
    job = _job(tmp_path, s3, bucket, "two-hosts", epochs=3, windows=256)
    run = start_run(_args(job, tmp_path / "state", key, a.address, b.address), env=_env(s3))
    code = run.finish()
    assert code == 0, run.output
    doc = status_json(tmp_path / "state", NAMESPACE, "two-hosts")
    ranks: dict[str, Any] = doc["ranks"]
    assert sorted(ranks) == ["0", "1"]
    assert ranks["0"]["worldSize"] == ranks["1"]["worldSize"] == 2
    # DDP: both ranks end with the very same weights.
    assert ranks["0"]["stateSha256"] == ranks["1"]["stateSha256"]
    assert "Final weights on the 2 ranks: identical" in run.output
    assert doc["hosts"] == [a.address, b.address]
    started = {s["label"]: s["rank"] for s in run.started()}
    assert started == {a.address: 0, b.address: 1}  # rank 0 on the first host, the rendezvous
    # Logs come back prefixed with their host; progress from rank 0.
    assert f"[{a.address} rank 0] epoch 3/3" in run.output
    assert any(line.startswith(f"[{b.address} rank 1]") for line in run.lines)
    status = doc["status"]
    assert status["phase"] == "Succeeded" and status["progress"]["epoch"] == 3
    assert status["dataQuality"]["passed"] is True and status["dataQuality"]["rows"] == 4
    # Checkpoints and the model on the shared store, and the ModelVersion record next to them.
    assert _objects(s3, bucket, "runs/checkpoints/ml/two-hosts/")[-1].endswith("epoch-000003.pt")
    assert "runs/models/ml/two-hosts/training-curves.png" in _objects(s3, bucket, "runs/models/")
    records = _objects(s3, bucket, "runs/modelversions/ml/")
    assert records == [f"runs/modelversions/ml/{status['modelVersion']}.yaml"]


def test_a_host_whose_session_drops_is_left_out_and_the_job_resumes_from_its_checkpoint(
    hosts: tuple[SshServer, SshServer], key: SshKey, s3: MotoS3Server, bucket: str, tmp_path: Path
) -> None:
    a, b = hosts
    job = _job(tmp_path, s3, bucket, "drop", epochs=8, windows=4096)
    run = start_run(_args(job, tmp_path / "state", key, a.address, b.address), env=_env(s3))
    run.wait_for(lambda line: "checkpoint of epoch 2:" in line)
    on_b = [s for s in run.started() if s["label"] == b.address]
    killed = b.kill_sessions()  # host b "drops": its SSH sessions die, the rank's stdin closes
    assert killed, "host b had no session to kill"
    code = run.finish()
    assert code == 0, run.output
    assert "dropped; resuming from the newest checkpoint on 1 host(s)" in run.output
    doc = status_json(tmp_path / "state", NAMESPACE, "drop")
    status = doc["status"]
    assert status["phase"] == "Succeeded" and status["progress"]["epoch"] == 8
    assert status["resumedFromEpoch"] >= 2 and status["restarts"] == 1
    assert doc["hosts"] == [a.address]
    assert list(doc["ranks"]) == ["0"] and doc["ranks"]["0"]["worldSize"] == 1
    assert f"[{a.address} rank 0] resumed from the checkpoint of epoch" in run.output
    # The rank on the dropped host did not outlive its session: its agent killed its process group.
    wait_gone([s["pid"] for s in on_b], [s["pgid"] for s in on_b])


def test_ctrl_c_stops_every_remote_rank(
    hosts: tuple[SshServer, SshServer], key: SshKey, s3: MotoS3Server, bucket: str, tmp_path: Path
) -> None:
    a, b = hosts
    job = _job(tmp_path, s3, bucket, "interrupted", epochs=50, windows=4096)
    run = start_run(_args(job, tmp_path / "state", key, a.address, b.address), env=_env(s3))
    run.wait_for(lambda line: " epoch 1/50 " in line)
    started = run.started()
    assert len(started) == 2
    run.proc.send_signal(signal.SIGINT)
    assert run.finish(timeout_s=120) == 130, run.output
    assert "Interrupted" in run.output
    wait_gone([s["pid"] for s in started], [s["pgid"] for s in started])


def test_a_host_without_the_runtime_is_refused_before_anything_starts(
    hosts: tuple[SshServer, SshServer], key: SshKey, s3: MotoS3Server, bucket: str, tmp_path: Path
) -> None:
    if not Path("/usr/bin/python3").exists():
        pytest.skip("no /usr/bin/python3 to stand for a host without the runtime")
    a, b = hosts
    job = _job(tmp_path, s3, bucket, "no-runtime", epochs=2, windows=256)
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(yaml.safe_dump({"hosts": [
        {"host": a.address, "python": sys.executable, "env": {"PYTHONPATH": CHECKOUT_PATH}},
        # This machine's system Python, without foresight: a host set up by half.
        {"host": b.address, "python": "/usr/bin/python3"},
    ]}))  # fmt: skip
    args = ["-f", str(job), "--state-dir", str(tmp_path / "state"), "-i", str(key.private),
            "--hosts-file", str(inventory)]  # fmt: skip
    for option in CLIENT_OPTIONS:
        args += ["--ssh-option", option]
    run = start_run(args, env=_env(s3))
    code = run.finish()
    assert code == 2, run.output
    assert "1 of 2 host(s) cannot run this job; nothing was started" in run.output
    assert f"{b.address}: /usr/bin/python3" in run.output and "has no foresight runtime" in run.output
    assert "pip install 'foresight[train,s3]" in run.output  # what to do about it
    assert "starting" not in run.output and not run.started()
    assert _objects(s3, bucket, "runs/") == []
