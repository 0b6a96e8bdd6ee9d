"""Operator scale benchmark: N TrainingJobs created at once against the API emulator.

Starts the emulated API server (tests/cluster), applies the CRDs, starts the real operator process
(``foresight operator``), creates N suspended TrainingJobs (each gets a ConfigMap and a suspended
Job, no pods run) from 16 client threads, and polls until every one has its Job and a Ready
condition for its current generation. Prints a table and writes bench/results/operator_scale.json:
time until all were reconciled, per-resource latency (create acknowledged -> Job + condition
seen; p50 / p99), the operator's own handler durations (p50 / p99 from its histogram) and the
operator process's peak RSS (VmHWM).

    .venv/bin/python bench/operator_scale.py [--count 500]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.cluster.emulator import Cluster  # noqa: E402

TJ = "foresight.dev/v1alpha1/trainingjobs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def histogram_quantile(text: str, kind: str, q: float) -> float | None:
    """Upper bound of the bucket holding quantile q of foresight_operator_reconcile_duration_seconds."""
    buckets: list[tuple[float, float]] = []
    pat = re.compile(
        rf'foresight_operator_reconcile_duration_seconds_bucket\{{kind="{kind}",le="([^"]+)"\}} (\S+)'
    )
    for le, count in pat.findall(text):
        buckets.append((float("inf") if le == "+Inf" else float(le), float(count)))
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    return next(le for le, count in buckets if count >= q * total)


def trainingjob(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "task": "forecast",
            "model": "lstm",
            "dataset": {"uri": "pvc://foresight-artifacts/datasets/panel.npz"},
            "runPolicy": {"suspend": True},
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="operator-scale-"))
    with Cluster(work) as cluster:
        api = cluster.api
        for path in sorted((REPO / "crds").glob("*.foresight.dev.yaml")):
            api.create("apiextensions.k8s.io/v1/customresourcedefinitions", yaml.safe_load(path.read_text()))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        env.update(KUBECONFIG=str(cluster.kubeconfig), PYTHONUNBUFFERED="1", FORESIGHT_LOG_FORMAT="plain")
        log = open(work / "operator.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [str(pathlib.Path(sys.prefix) / "bin" / "foresight"), "operator", "--all-namespaces",
             "--metrics-host", "127.0.0.1", "--metrics-port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"operator did not start; see {work / 'operator.log'}")
                time.sleep(0.1)

            names = [f"scale-{i:04d}" for i in range(args.count)]
            created: dict[str, float] = {}
            t0 = time.monotonic()

            def create(name: str) -> None:
                api.create(TJ, trainingjob(name), "default")
                created[name] = time.monotonic()

            with ThreadPoolExecutor(16) as pool:
                list(pool.map(create, names))
            t_created = time.monotonic() - t0
            seen: dict[str, float] = {}
            while len(seen) < len(names) and time.monotonic() - t0 < args.timeout:
                now = time.monotonic()
                jobs = {j["metadata"]["name"] for j in api.list("batch/v1/jobs", "default")}
                for tj in api.list(TJ, "default"):
                    name = tj["metadata"]["name"]
                    if name in seen:
                        continue
                    conds = (tj.get("status") or {}).get("conditions") or []
                    ready = [c for c in conds if c["type"] == "Ready"
                             and c.get("observedGeneration") == tj["metadata"]["generation"]]  # fmt: skip
                    if ready and f"{name}-train" in jobs:
                        seen[name] = now
                time.sleep(0.2)
            t_all = time.monotonic() - t0
            metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            status = pathlib.Path(f"/proc/{proc.pid}/status").read_text()
            hwm_kb = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    lat = [seen[n] - created[n] for n in seen]
    result = {
        "resources": args.count,
        "reconciled": len(seen),
        "create_all_s": round(t_created, 2),
        "all_reconciled_s": round(t_all, 2),
        "latency_p50_s": round(quantile(lat, 0.5), 3) if lat else None,
        "latency_p99_s": round(quantile(lat, 0.99), 3) if lat else None,
        "handler_p50_s_bucket": histogram_quantile(metrics, "TrainingJob", 0.5),
        "handler_p99_s_bucket": histogram_quantile(metrics, "TrainingJob", 0.99),
        "operator_peak_rss_mib": round(hwm_kb / 1024, 1),
        "cpus": os.cpu_count(),
        "note": "suspended TrainingJobs: each gets a ConfigMap and a suspended Job; latency is measured "
        "from the acknowledged create to the poll (0.2 s) that saw both the Job and the Ready condition",
    }
    print(f"{'metric':<28} value")
    for key, value in result.items():
        if key != "note":
            print(f"{key:<28} {value}")
    out = REPO / "bench" / "results" / "operator_scale.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if len(seen) == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
