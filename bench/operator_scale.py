"""Operator scale benchmark: thousands of resources of several kinds created at once.

Starts the emulated API server (tests/cluster), applies the CRDs, starts the real operator process
(``foresight operator``) and creates, from 16 client threads, a mix of resources (default 2,000:
1,000 ForecastTasks, 500 TrainingJobs, 250 ModelLibraries, 250 ABExperiments). No kubelet runs, so
every ForecastTask's first run Job stays under way and every TrainingJob is suspended: the
operator's steady load is that of thousands of resources with a run in flight. It watches until
every resource is *reconciled*: a ``Ready`` condition for its generation, whatever its status,
and what its controller makes of the bench's spec: ForecastTasks and TrainingJobs with
``status.observedGeneration`` and their run Job, ModelLibraries (a builtin source) with
``status.observedGeneration`` and their fetch Job (phase Fetching), ABExperiments (whose
ClassifierService does not exist) with ``Ready=False ServiceNotFound``. Then it waits until the
operator is quiet (under 5% CPU over 5 s, at most ``--settle`` seconds: kopf is still writing its
own annotations and events after the last status) and keeps it running for ``--steady`` seconds
to see what it does with nothing to do.

Prints a table and writes bench/results/operator_scale.json: time until all were reconciled,
per-resource latency (create acknowledged -> reconciled seen; p50 / p99), the operator's handler
durations (p50 / p99 from its histogram), its peak RSS (VmHWM), RSS and CPU seconds over time, and
the API requests per minute it made while idle, by call (what grows with the number of
resources). The machine's load average is recorded: run it on a quiet machine (load under 3), or
say in ``--conditions`` what else ran.

    .venv/bin/python bench/operator_scale.py [--forecasttasks 1000 --trainingjobs 500 ...]
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
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.cluster.emulator import Cluster  # noqa: E402

GROUP = "foresight.dev/v1alpha1"
NS = "default"
PLURALS = {
    "ForecastTask": "forecasttasks",
    "TrainingJob": "trainingjobs",
    "ModelLibrary": "modellibraries",
    "ABExperiment": "abexperiments",
}
OPERATOR_AGENTS = ("kopf", "foresight-operator")


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


def manifest(kind: str, name: str) -> dict[str, Any]:
    specs: dict[str, dict[str, Any]] = {
        "ForecastTask": {
            "source": {"url": "http://prometheus:9090", "query": "storage_used_bytes", "groupBy": ["user"]},
            "output": {"pushgatewayUrl": "http://pushgateway:9091"},
        },
        "TrainingJob": {
            "task": "forecast",
            "model": "lstm",
            "dataset": {"uri": "pvc://foresight-artifacts/datasets/panel.npz"},
            "runPolicy": {"suspend": True},
        },
        "ModelLibrary": {"source": {"builtin": "postgresql-oltp"}, "version": "2026.12"},
        "ABExperiment": yaml.safe_load((REPO / "examples" / "abexperiment.yaml").read_text())["spec"],
    }
    meta = {"name": name, "namespace": NS}
    return {"apiVersion": GROUP, "kind": kind, "metadata": meta, "spec": specs[kind]}


def reconciled(kind: str, obj: dict[str, Any], jobs: set[str]) -> bool:
    """The operator has taken in this generation of ``obj``: what its controller reports for the
    bench's spec (see the module docstring), with the child it makes for it."""
    gen = obj["metadata"].get("generation")
    status = obj.get("status") or {}
    conds = status.get("conditions") or []
    if not any(c["type"] == "Ready" and c.get("observedGeneration") == gen for c in conds):
        return False
    name = obj["metadata"]["name"]
    if kind == "ABExperiment":
        # Its spec's ClassifierService does not exist: Ready=False ServiceNotFound for this
        # generation is the controller's whole answer (status.observedGeneration is written once
        # the experiment starts or its spec is invalid; nothing is routed, no child is made).
        return True
    if status.get("observedGeneration") != gen:
        return False
    if kind == "TrainingJob":
        return f"{name}-train" in jobs
    if kind == "ForecastTask":
        return bool(status.get("activeRun")) and status["activeRun"] in jobs
    # ModelLibrary: phase Fetching with the fetch Job of this generation (no kubelet runs it).
    return bool(status.get("fetchJob")) and status["fetchJob"] in jobs


def proc_status(pid: int) -> tuple[float, float, float]:
    """``(RSS MiB, peak RSS MiB, CPU seconds)`` of process ``pid``."""
    text = pathlib.Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]
    hwm = int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, hwm, cpu


class Sampler:
    """RSS and CPU of the operator every second, in a thread."""

    def __init__(self, pid: int, t0: float) -> None:
        self.pid, self.t0 = pid, t0
        self.samples: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                rss, _, cpu = proc_status(self.pid)
            except (OSError, AttributeError):
                return
            self.samples.append((round(time.monotonic() - self.t0, 1), round(rss, 1), round(cpu, 2)))

    def stop(self) -> list[tuple[float, float, float]]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.samples


def operator_requests(cluster: Cluster, since: int) -> Counter[str]:
    out: Counter[str] = Counter()
    for r in cluster.requests()[since:]:
        if r.user_agent and r.user_agent.startswith(OPERATOR_AGENTS):
            out[f"{r.verb} {r.resource}{'/' + r.subresource if r.subresource else ''}"] += 1
    return out


def settle(cluster: Cluster, pid: int, limit: float) -> tuple[float, int]:
    """Wait (at most ``limit`` s) until the operator has worked through what creating everything
    queued: the status writes kopf's handlers still make after the last resource looked reconciled,
    its own annotation patches, the events. Quiet = under 0.25 CPU seconds in 5 s (5%). Returns the
    seconds waited and the API requests the operator made meanwhile."""
    t0, mark = time.monotonic(), len(cluster.requests())
    last = proc_status(pid)[2]
    while time.monotonic() - t0 < limit:
        time.sleep(5)
        cpu = proc_status(pid)[2]
        if cpu - last < 0.25:
            break
        last = cpu
    return time.monotonic() - t0, sum(operator_requests(cluster, mark).values())


def start_operator(cluster: Cluster, work: pathlib.Path) -> tuple[subprocess.Popen[bytes], int, Any]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env.update(KUBECONFIG=str(cluster.kubeconfig), PYTHONUNBUFFERED="1", FORESIGHT_LOG_FORMAT="plain")
    log = open(work / "operator.log", "wb")  # noqa: SIM115 - closed by the caller
    proc = subprocess.Popen(
        [str(pathlib.Path(sys.prefix) / "bin" / "foresight"), "operator", "--all-namespaces",
         "--metrics-host", "127.0.0.1", "--metrics-port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, port, log
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"operator did not start; see {work / 'operator.log'}")
        time.sleep(0.1)


class Watch:
    """When each resource was first seen reconciled, from watch streams (one per kind, one for
    Jobs): each change is read once, instead of listing thousands of objects every poll."""

    def __init__(self, cluster: Cluster, names: dict[str, str]) -> None:
        self.api, self.names = cluster.api, names
        self.latest: dict[str, dict[str, Any]] = {}
        self.jobs: set[str] = set()
        self.seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        resources = [f"{GROUP}/{PLURALS[k]}" for k in sorted(set(names.values()))] + ["batch/v1/jobs"]
        self._threads = [threading.Thread(target=self._watch, args=(r,), daemon=True) for r in resources]
        for t in self._threads:
            t.start()

    def _watch(self, resource: str) -> None:
        url = self.api.url + self.api.path(resource, NS)
        while not self._stop.is_set():
            try:
                params = {"watch": "true", "timeoutSeconds": "30"}
                with self.api.session.get(url, params=params, stream=True, timeout=(5, 60)) as resp:
                    for line in resp.iter_lines():
                        if self._stop.is_set():
                            return
                        if line:
                            self._event(resource, json.loads(line))
            except requests.RequestException:
                time.sleep(0.2)

    def _event(self, resource: str, event: dict[str, Any]) -> None:
        obj = event.get("object") or {}
        name = (obj.get("metadata") or {}).get("name")
        if event.get("type") == "BOOKMARK" or not name:
            return
        now = time.monotonic()
        with self._lock:
            if resource == "batch/v1/jobs":
                self.jobs.add(name)
                pending = [n for n in list(self.latest) if n not in self.seen]
            else:
                self.latest[name] = obj
                pending = [name]
            for n in pending:
                kind = self.names.get(n)
                if (
                    kind
                    and n not in self.seen
                    and n in self.latest
                    and reconciled(kind, self.latest[n], self.jobs)
                ):
                    self.seen[n] = now
                    del self.latest[n]

    def wait(self, timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.seen) >= len(self.names):
                    break
            time.sleep(0.2)
        self._stop.set()
        with self._lock:
            return dict(self.seen)


def run(args: argparse.Namespace, work: pathlib.Path) -> dict[str, Any]:
    mix = {"ForecastTask": args.forecasttasks, "TrainingJob": args.trainingjobs,
           "ModelLibrary": args.modellibraries, "ABExperiment": args.abexperiments}  # fmt: skip
    names = {f"{kind.lower()}-{i:04d}": kind for kind, n in mix.items() for i in range(n)}
    with Cluster(work) as cluster:
        api = cluster.api
        for path in sorted((REPO / "crds").glob("*.foresight.dev.yaml")):
            api.create("apiextensions.k8s.io/v1/customresourcedefinitions", yaml.safe_load(path.read_text()))
        proc, port, log = start_operator(cluster, work)
        idle_rss, _, idle_cpu = proc_status(proc.pid)
        try:
            created: dict[str, float] = {}
            watch = Watch(cluster, names)
            own_cpu0 = proc_status(os.getpid())[2]
            t0 = time.monotonic()
            sampler = Sampler(proc.pid, t0)

            def create(item: tuple[str, str]) -> None:
                name, kind = item
                api.create(f"{GROUP}/{PLURALS[kind]}", manifest(kind, name), NS)
                created[name] = time.monotonic()

            with ThreadPoolExecutor(16) as pool:
                list(pool.map(create, names.items()))
            t_created = time.monotonic() - t0
            seen = watch.wait(args.timeout)
            t_all = max(seen.values(), default=t0) - t0
            _, hwm_busy, cpu_busy = proc_status(proc.pid)
            own_cpu = proc_status(os.getpid())[2] - own_cpu0
            settle_s, settle_calls = settle(cluster, proc.pid, args.settle)
            mark = len(cluster.requests())
            cpu_before_steady = proc_status(proc.pid)[2]
            time.sleep(args.steady)
            rss_steady, hwm, cpu_after = proc_status(proc.pid)
            steady_calls = operator_requests(cluster, mark)
            samples = sampler.stop()
            metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    lat = {n: seen[n] - created[n] for n in seen}
    by_kind: dict[str, Any] = {}
    for kind in mix:
        mine = [v for n, v in lat.items() if names[n] == kind]
        if mine:
            by_kind[kind] = {"count": mix[kind], "reconciled": len(mine),
                             "p50_s": round(quantile(mine, 0.5), 2), "p99_s": round(quantile(mine, 0.99), 2),
                             "handler_p99_s_bucket": histogram_quantile(metrics, kind, 0.99)}  # fmt: skip
    all_lat = list(lat.values())
    return {
        "resources": len(names),
        "mix": mix,
        "reconciled": len(seen),
        "create_all_s": round(t_created, 2),
        "all_reconciled_s": round(t_all, 2),
        "latency_p50_s": round(quantile(all_lat, 0.5), 2) if all_lat else None,
        "latency_p99_s": round(quantile(all_lat, 0.99), 2) if all_lat else None,
        "by_kind": by_kind,
        "operator_idle_rss_mib": round(idle_rss, 1),
        "operator_peak_rss_mib": round(max(hwm, hwm_busy), 1),
        "operator_rss_after_steady_mib": round(rss_steady, 1),
        "operator_cpu_s_until_reconciled": round(cpu_busy - idle_cpu, 1),
        "emulator_process_cpu_s_until_reconciled": round(own_cpu, 1),
        "settle_s": round(settle_s, 1),
        "settle_api_requests": settle_calls,
        "steady_s": args.steady,
        "steady_cpu_s": round(cpu_after - cpu_before_steady, 2),
        "steady_api_requests": sum(steady_calls.values()),
        "steady_api_requests_per_min": round(sum(steady_calls.values()) * 60 / args.steady),
        "steady_api_requests_per_min_by_call": {
            call: round(n * 60 / args.steady) for call, n in steady_calls.most_common()
        },
        "rss_samples": samples[:: max(1, len(samples) // 60)],
        "load_avg_1m_start": args.load_start,
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "conditions": args.conditions,
        "note": "no kubelet: ForecastTasks keep their first run Job under way, TrainingJobs are suspended; "
        "latency is from the acknowledged create to the watch event that showed the resource reconciled; the "
        "emulator process (the API server, in Python, plus this script's clients) runs on the same cores",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--forecasttasks", type=int, default=1000)
    parser.add_argument("--trainingjobs", type=int, default=500)
    parser.add_argument("--modellibraries", type=int, default=250)
    parser.add_argument("--abexperiments", type=int, default=250)
    parser.add_argument("--steady", type=float, default=60.0, help="seconds to watch the idle operator")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument(
        "--settle", type=float, default=180.0, help="at most this long for the operator to go quiet first"
    )
    parser.add_argument("--conditions", default="", help="what else ran on the machine (kept in the JSON)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "operator_scale.json"))
    args = parser.parse_args()
    args.load_start = round(os.getloadavg()[0], 2)
    work = pathlib.Path(tempfile.mkdtemp(prefix="operator-scale-"))
    result = run(args, work)
    print(f"{'metric':<34} value")
    for key, value in result.items():
        if key not in ("note", "rss_samples", "by_kind", "steady_api_requests_per_min_by_call"):
            print(f"{key:<34} {value}")
    for kind, row in result["by_kind"].items():
        print(f"{kind:<34} {row}")
    print(f"{'steady calls per minute':<34} {result['steady_api_requests_per_min_by_call']}")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out} (operator log: {work / 'operator.log'})")
    return 0 if result["reconciled"] == result["resources"] else 1


if __name__ == "__main__":
    sys.exit(main())
