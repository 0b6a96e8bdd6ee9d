"""DDP over SSH hosts vs one host, beside the DDP ranks a Kubernetes TrainingJob runs, in one run.

Four runs of one TrainingJob (the forecast task, lstm, on the SYNTHETIC storage panel), each rank
with one torch thread:

- ``pods``: ``foresight train --config`` in child processes with the torchrun environment, exactly
  what the DDP pods of a cluster run (as ``bench/training_throughput.py`` measures it), 1 and 2
  ranks (gloo on 127.0.0.1);
- ``ssh``: ``foresight run -f trainingjob.yaml --hosts``, 1 and 2 hosts, each an OpenSSH server on
  127.0.0.1 (Debian ``openssh-server``, started here like the tests' hosts), one rank per host.

The config is the same (rendered from the one TrainingJob by the shared renderer). Throughput =
training windows of an epoch / that epoch's wall time on rank 0 (validation included, checkpoint
writes and start-up not), averaged over the epochs after the first. Start-up (pre-flight, SSH,
imports) is reported apart as the whole run's wall time. The "hosts" share this machine's cores,
so 2 hosts can only do what 2 local ranks do: the comparison shows what the SSH path costs per
sample, not what a second machine would add.

Usage: nice python bench/training_ssh.py [--quick] [--repeat N] [--series N] [--epochs N] [--windows N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.servers: the same loopback sshd the tests start

from forecast_common import RESULTS, table  # noqa: E402
from foresight.api.trainconfig import render_train_config  # noqa: E402
from foresight.api.trainingjob import TrainingJobSpec  # noqa: E402
from foresight.forecast.synthetic import make_storage_dataset  # noqa: E402
from foresight.training.tasks.forecast import save_panel_npz  # noqa: E402
from training_throughput import _run as run_pods  # noqa: E402
from training_throughput import _throughput  # noqa: E402

from tests.servers.sshd import CLIENT_OPTIONS, SshServer, make_key  # noqa: E402

EPOCH_LINE = re.compile(r"\] epoch (\d+)/(\d+) .*\(([0-9.]+)s, eta")


def _spec(data: Path, artifacts: Path, epochs: int, windows: int) -> dict[str, Any]:
    return {
        "task": "forecast", "model": "lstm", "epochs": epochs, "seed": 0,
        "dataset": {"uri": data.as_uri()},
        "hyperparameters": {"horizon": "24", "inputWindow": "168", "windowsPerEpoch": str(windows)},
        "distributed": {"backend": "torch", "workers": 2},
        "checkpoint": {"everyEpochs": epochs},  # the last epoch only: the bench times training
        "artifacts": {"uri": artifacts.as_uri()},
        "output": {"modelName": "bench-ssh"},
    }  # fmt: skip


def _ssh_run(job: Path, hosts: list[SshServer], key: Path, state: Path) -> tuple[list[float], float]:
    """Rank 0's epoch seconds and the whole run's wall time of ``foresight run --hosts``."""
    # Its own artifact store: a run finds the checkpoints of the run before it otherwise, and resumes.
    args = [sys.executable, "-m", "foresight.cli", "run", "-f", str(job), "--state-dir", str(state),
            "--set", f"artifacts.uri={(state / 'artifacts').as_uri()}",
            "--hosts", ",".join(h.address for h in hosts), "-i", str(key),
            "--remote-python", sys.executable, "--remote-env", "OMP_NUM_THREADS=1"]  # fmt: skip
    if os.environ.get("PYTHONPATH"):
        args += ["--remote-env", f"PYTHONPATH={os.environ['PYTHONPATH']}"]
    for option in CLIENT_OPTIONS:
        args += ["--ssh-option", option]
    t0 = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(
            f"foresight run --hosts failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}"
        )
    seconds = [float(m[3]) for m in (EPOCH_LINE.search(line) for line in proc.stdout.splitlines()) if m]
    return seconds, wall


CASES = (("pods (the Kubernetes DDP path)", 1), ("pods (the Kubernetes DDP path)", 2),
         ("ssh (foresight run --hosts)", 1), ("ssh (foresight run --hosts)", 2))  # fmt: skip


def _pods_run(spec: dict[str, Any], data: Path, tmp: Path, world: int, tag: str) -> tuple[list[float], float]:
    """Rank 0's epoch seconds and the wall time of ``world`` ``foresight train`` processes (the pods)."""
    config = render_train_config(
        TrainingJobSpec.model_validate(spec), task="forecast", dataset_uri=str(data),
        checkpoint_uri=str(tmp / f"ck-{tag}"), output_uri=str(tmp / f"out-{tag}"),
    )  # fmt: skip
    cfg = tmp / f"{tag}.json"
    cfg.write_text(json.dumps(config))
    t0 = time.monotonic()
    secs = run_pods(cfg, tmp, world=world, threads=1, device="cpu")
    return secs, time.monotonic() - t0


def _measure(args: argparse.Namespace, tmp: Path) -> dict[tuple[str, int], list[tuple[list[float], float]]]:
    """Every case ``args.repeat`` times, the order reversed on every other round (drift hits all)."""
    data = tmp / "panel.npz"
    save_panel_npz(make_storage_dataset(n_series=args.series, days=30, seed=0).panel, data)
    spec = _spec(data, tmp / "artifacts", args.epochs, args.windows)
    job = tmp / "tj.yaml"
    meta = {"name": "bench", "namespace": "bench"}
    job.write_text(yaml.safe_dump({"apiVersion": "foresight.dev/v1alpha1", "kind": "TrainingJob",
                                   "metadata": meta, "spec": spec}))  # fmt: skip
    key = make_key(tmp / "key")
    runs: dict[tuple[str, int], list[tuple[list[float], float]]] = {case: [] for case in CASES}
    for rep in range(args.repeat):
        for case in CASES if rep % 2 == 0 else tuple(reversed(CASES)):
            path, n = case
            tag = f"{'pods' if path.startswith('pods') else 'ssh'}-{n}-{rep}"
            print(f"round {rep + 1}: {path}, {n} rank(s) x 1 thread ...", flush=True)
            if path.startswith("pods"):
                runs[case].append(_pods_run(spec, data, tmp, n, tag))
                continue
            servers = [SshServer(key).start() for _ in range(n)]
            try:
                runs[case].append(_ssh_run(job, servers, key.private, tmp / f"state-{tag}"))
            finally:
                for server in servers:
                    server.stop()
    return runs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--series", type=int, default=60)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--windows", type=int, default=2048, help="training windows per epoch")
    p.add_argument("--repeat", type=int, default=1, help="rounds of all four runs (median and range)")
    p.add_argument("--quick", action="store_true", help="a smoke run (20 series, 2 epochs, 512 windows)")
    args = p.parse_args()
    if args.quick:
        args.series, args.epochs, args.windows = 20, 2, 512
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="foresight-bench-ssh-") as d:
        runs = _measure(args, Path(d))
    rows = [_row(path, 1 if path.startswith("pods") else n, n, runs[(path, n)], args.windows)
            for path, n in CASES]  # fmt: skip
    for row in rows:
        one = next(r for r in rows if r["path"] == row["path"] and r["ranks"] == 1)
        row["speedup_vs_1"] = row["samples_per_s"] / one["samples_per_s"]
    print(table(rows, ["path", "hosts", "ranks", "epoch_s", "samples_per_s", "samples_per_s_range",
                       "speedup_vs_1", "wall_s"]))  # fmt: skip
    pods2, ssh2 = rows[1], rows[3]
    ratio = ssh2["samples_per_s"] / pods2["samples_per_s"]
    print(f"2-host SSH DDP vs the 2-rank DDP pods path: {ratio:.2f}x samples/s on {os.cpu_count()} cores "
          f"(load average {load_at_start[0]:.1f} at the start)")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "training_ssh.json"
    path.write_text(json.dumps({
        "synthetic": True, "series": args.series, "epochs": args.epochs, "windows_per_epoch": args.windows,
        "repeat": args.repeat, "cores": os.cpu_count(), "loadavg_at_start": load_at_start,
        "loadavg_at_end": os.getloadavg(), "rows": rows, "ssh_2_hosts_vs_pods_2_ranks": ratio,
        "note": "the SSH hosts are OpenSSH servers on 127.0.0.1 sharing this machine's cores",
    }, indent=2))  # fmt: skip
    print(f"wrote {path}")


Runs = list[tuple[list[float], float]]


def _row(path: str, hosts: int, ranks: int, runs: Runs, windows: int) -> dict[str, Any]:
    """Median over the rounds (and the range) of each run's steady-epoch throughput."""
    import statistics

    rates = [_throughput(secs, windows) for secs, _ in runs]
    epochs = [sum(secs[1:] or secs) / len(secs[1:] or secs) for secs, _ in runs]
    return {"path": path, "hosts": hosts, "ranks": ranks, "epoch_s": statistics.median(epochs),
            "samples_per_s": statistics.median(rates),
            "samples_per_s_range": f"{min(rates):.0f}-{max(rates):.0f}",
            "samples_per_s_runs": rates, "wall_s": statistics.median(w for _, w in runs)}  # fmt: skip


if __name__ == "__main__":
    main()
