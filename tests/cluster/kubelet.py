"""A test kubelet: runs the Pods of Jobs and Deployments as local processes, through the API.

It plays three controllers, all talking to the API server over HTTP (user agent ``test-kubelet``),
woken by watches on pods, jobs and deployments and resyncing every ``interval`` seconds:

- **Job controller**: creates Pods for a Job (``parallelism``, ``completions``,
  ``completionMode: Indexed`` with ``JOB_COMPLETION_INDEX`` and the
  ``batch.kubernetes.io/job-completion-index`` annotation), retries failed pods up to
  ``backoffLimit``, enforces ``activeDeadlineSeconds``, honours ``suspend`` and
  ``ttlSecondsAfterFinished``, and writes Job status (active, succeeded, failed, startTime,
  completionTime, ``Complete`` / ``Failed`` conditions with BackoffLimitExceeded /
  DeadlineExceeded reasons). ``restartPolicy: OnFailure`` is treated like ``Never``: a failed
  container means a new pod, which counts against ``backoffLimit`` the same way.
  As Kubernetes 1.29+ does for Indexed Jobs: ``backoffLimitPerIndex`` (each index retried on its
  own, its pods annotated ``batch.kubernetes.io/job-index-failure-count``; an index over its limit
  is listed in ``status.failedIndexes`` and not retried, while the other indexes go on; when every
  index has succeeded or failed, a Job with failed indexes fails with reason ``FailedIndexes``),
  ``maxFailedIndexes`` (more failed indexes than that fail the Job at once, reason
  ``MaxFailedIndexesExceeded``, and its running pods are deleted), and ``podFailurePolicy`` rules
  on exit codes and pod conditions (``FailJob``: reason ``PodFailurePolicy``; ``FailIndex``: that
  index fails at once; ``Ignore``: the failure is not counted; ``Count``: the default).
- **Deployment controller** (no ReplicaSets): keeps ``replicas`` Pods named
  ``<deploy>-<template-hash>-<rand>`` with the template's labels and the Deployment as owner,
  replaces pods of an old template and pods that ended, and writes replicas / readyReplicas /
  availableReplicas / updatedReplicas and the ``Available`` condition.
- **Kubelet**: runs every Pod's first container as a subprocess and reports the pod status.

How a container becomes a process:

- ``command`` + ``args`` (``$(VAR)`` references expanded from the container env, as Kubernetes
  does); a command starting with ``foresight`` runs ``<venv>/bin/foresight``, ``python`` /
  ``python3`` runs ``<venv>/bin/python``; an image entrypoint cannot be run, so a container
  without ``command`` fails with reason ``NoCommand``.
- env: the test process's environment, then ``HOSTNAME``, then the container's ``envFrom`` and
  ``env`` (literal values, ``secretKeyRef``, ``configMapKeyRef``, ``fieldRef`` for
  metadata.name / namespace / uid / labels / annotations and status.podIP). A missing
  non-optional Secret or ConfigMap keeps the pod Pending (``CreateContainerConfigError``) until
  it appears.
- volumes become directories under the kubelet's work dir: ConfigMap and Secret volumes are
  materialised as files (``items`` honoured) and, as a real kubelet does, ConfigMap volumes of a
  running pod are refreshed when the ConfigMap changes (each file replaced atomically; an
  optional ConfigMap that appears or goes adds or removes its files), ``emptyDir`` is per pod,
  and a ``persistentVolumeClaim`` is one directory per claim name (so artifacts survive pod
  restarts).
- **the mount rule**: processes cannot mount, so every occurrence of a ``mountPath`` (and of the
  ``terminationMessagePath``) at a path boundary in command, args, env values, workingDir and the
  files of ConfigMap volumes (a config file naming a model under another volume's mount) is
  rewritten to the local directory (longest mount first); the full mapping is also exported as
  ``KUBELET_MOUNTS`` (JSON ``{mountPath: localDir}``) for programs that build paths themselves.
- Pod status: Pending -> Running -> Succeeded / Failed, podIP 127.0.0.1, ``containerStatuses``
  with ``state.terminated.exitCode``, ``reason`` and ``message`` = the content of the termination
  message file (``FallbackToLogsOnError`` honoured); the Ready condition follows a
  ``readinessProbe`` (httpGet / tcpSocket on 127.0.0.1; named ports resolved from the container's
  ports) or is True once running when there is no probe.
- stdout and stderr go to one log file per pod: :meth:`Kubelet.logs`, and ``kubectl logs`` when
  the kubelet is attached to an :class:`~tests.cluster.emulator.ApiServer`.
- :meth:`Kubelet.kill` SIGKILLs a pod's process (pod loss: the pod goes Failed with exit code
  137); deleted pods get their processes terminated; :meth:`Kubelet.stop` terminates everything.
- Pod hostnames as Kubernetes sets them: ``spec.hostname`` if given (an Indexed Job's pods get
  ``<job>-<index>``, as the Job controller does), else the pod name; exported as ``HOSTNAME``.

**Cluster DNS** (for DDP workers that find rank 0 by name): every pod runs on 127.0.0.1, so the
kubelet keeps a list of the cluster's DNS names in ``<workdir>/dns/hosts.json``, rewritten each
round: ``<service>.<ns>.svc.cluster.local`` for every Service, and
``<hostname>.<subdomain>.<ns>.svc.cluster.local`` for every running pod that has a hostname and a
subdomain naming a Service of its namespace (a headless Service; as in Kubernetes, the record
exists only while the pod does, so a worker that starts first really waits for rank 0's name).
Processes cannot be given a resolver, so a ``sitecustomize.py`` in ``<workdir>/dns`` (prepended
to each pod's ``PYTHONPATH``) wraps ``socket.getaddrinfo`` / ``gethostbyname`` /
``gethostbyname_ex`` in Python pod processes: a name found through the pod namespace's search
path (``<ns>.svc.cluster.local``, ``svc.cluster.local``, ``cluster.local``) answers 127.0.0.1;
every other name goes to the real resolver. Names resolved in C (torch's TCPStore, gloo) do not
see it: the training runtime resolves ``MASTER_ADDR`` in Python first, and so must other pod
programs that need cluster names. A ``sitecustomize`` of the venv, if any, is shadowed in pods.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import functools
import hashlib
import json
import os
import pathlib
import random
import re
import signal
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.cluster.emulator import ApiClient, ApiClientError, ApiServer, Obj, now_iso

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
USER_AGENT = "test-kubelet"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-failure-count"
CLUSTER_DOMAIN = "cluster.local"

SITECUSTOMIZE = '''"""The test kubelet's cluster DNS for Python pod processes (tests/cluster/kubelet.py)."""

import json
import os
import socket

_HOSTS = os.environ.get("KUBELET_DNS_HOSTS")
_NS = os.environ.get("KUBELET_POD_NAMESPACE", "default")
_SEARCH = (f"{_NS}.svc.cluster.local", "svc.cluster.local", "cluster.local")


def _kubelet_lookup(host):
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str) or not host:
        return None
    name = host.rstrip(".").lower()
    try:
        with open(_HOSTS) as fh:
            known = set(json.load(fh))
    except (OSError, ValueError):
        return None
    candidates = [name] if host.endswith(".") else [f"{name}.{d}" for d in _SEARCH] + [name]
    return "127.0.0.1" if any(c in known for c in candidates) else None


if _HOSTS:
    _real_getaddrinfo = socket.getaddrinfo
    _real_gethostbyname = socket.gethostbyname
    _real_gethostbyname_ex = socket.gethostbyname_ex

    def getaddrinfo(host, *args, **kwargs):
        ip = _kubelet_lookup(host)
        return _real_getaddrinfo(ip or host, *args, **kwargs)

    def gethostbyname(host):
        return _kubelet_lookup(host) or _real_gethostbyname(host)

    def gethostbyname_ex(host):
        ip = _kubelet_lookup(host)
        return (host, [], [ip]) if ip else _real_gethostbyname_ex(host)

    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname
    socket.gethostbyname_ex = gethostbyname_ex
'''


class PodConfigError(Exception):
    """A pod cannot start yet (missing Secret / ConfigMap key); it stays Pending and is retried."""


@dataclass
class Process:
    """A running (or finished) container process of one pod."""

    popen: subprocess.Popen[bytes]
    uid: str
    started_at: str
    termination_file: pathlib.Path
    log_file: pathlib.Path
    fallback_to_logs: bool
    ready: bool = False
    reported: bool = False  # final status written
    mounts: dict[str, str] = dataclasses.field(default_factory=dict)  # mountPath -> local dir
    volumes_checked: float = 0.0  # monotonic time of the last ConfigMap volume refresh


def _rand(k: int = 5) -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=k))


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC).timestamp()


def _condition(ctype: str, status: str, reason: str = "", message: str = "") -> Obj:
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastProbeTime": None,
        "lastTransitionTime": now_iso(),
    }


def _ranges(indexes: list[int]) -> str:
    """Kubernetes' compressed index list: ``0-2,5``."""
    out: list[str] = []
    for i in sorted(indexes):
        if out and "-" in out[-1] and int(out[-1].split("-")[1]) == i - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{i}"
        elif out and "-" not in out[-1] and int(out[-1]) == i - 1:
            out[-1] = f"{out[-1]}-{i}"
        else:
            out.append(str(i))
    return ",".join(out)


@dataclass
class _Failures:
    """A Job's failed pods as its pod failure policy counts them."""

    counted: list[Obj] = field(default_factory=list)
    """Failed pods that count (not ``Ignore``d)."""
    per_index: dict[int, int] = field(default_factory=dict)
    """Counted failures per completion index."""
    fail_index: set[int] = field(default_factory=set)
    """Indexes a ``FailIndex`` rule failed."""
    fail_job: str | None = None
    """Why a ``FailJob`` rule failed the Job."""


def _rule_matches(rule: Obj, pod: Obj) -> bool:
    """Whether one ``podFailurePolicy`` rule matches a failed pod (exit codes or pod conditions)."""
    status = pod.get("status") or {}
    on_codes = rule.get("onExitCodes")
    if on_codes:
        values = {int(v) for v in on_codes.get("values") or []}
        for cs in status.get("containerStatuses") or []:
            if on_codes.get("containerName") and cs.get("name") != on_codes["containerName"]:
                continue
            code = ((cs.get("state") or {}).get("terminated") or {}).get("exitCode")
            if code is None or code == 0:
                continue
            if (code in values) == (on_codes.get("operator", "In") == "In"):
                return True
        return False
    wanted = rule.get("onPodConditions") or []
    have = {(c.get("type"), c.get("status")) for c in status.get("conditions") or []}
    return any((w.get("type"), w.get("status", "True")) in have for w in wanted)


def _literal(text: str, _match: re.Match[str]) -> str:
    return text


def _same_conditions(old: list[Obj], new: list[Obj]) -> bool:
    def strip(conds: list[Obj]) -> list[tuple[Any, ...]]:
        return [(c.get("type"), c.get("status"), c.get("reason")) for c in conds]

    return strip(old) == strip(new)


class Kubelet:
    """The test kubelet; ``start()`` it, ``stop()`` it (or use it as a context manager)."""

    def __init__(
        self,
        api_url: str,
        workdir: pathlib.Path,
        venv: pathlib.Path | None = None,
        namespace: str | None = None,
        server: ApiServer | None = None,
        interval: float = 0.2,
    ) -> None:
        self.api = ApiClient(api_url, user_agent=USER_AGENT)
        self.api_url = api_url
        self.workdir = workdir
        self.venv = venv or pathlib.Path(sys.prefix)
        self.namespace = namespace
        self.interval = interval
        self.server = server
        self._procs: dict[tuple[str, str], Process] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []  # reconcile failures (tests may assert it stays empty)
        self.dns_dir = workdir / "dns"
        self._dns_names: list[str] | None = None

    # ------------------------------------------------------------------------- lifecycle
    def start(self) -> Kubelet:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.dns_dir.mkdir(parents=True, exist_ok=True)
        (self.dns_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
        self._write_dns([])
        if self.server is not None:
            self.server.log_provider = self._log_for_api
        main = threading.Thread(target=self._loop, name="test-kubelet", daemon=True)
        self._threads.append(main)
        for resource in ("v1/pods", "batch/v1/jobs", "apps/v1/deployments"):
            watcher = threading.Thread(
                target=self._watch, args=(resource,), name=f"kubelet-watch-{resource}", daemon=True
            )
            self._threads.append(watcher)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            self._terminate(proc)
        if self.server is not None and self.server.log_provider == self._log_for_api:
            self.server.log_provider = None

    def __enter__(self) -> Kubelet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kill(self, pod_name: str, namespace: str = "default") -> None:
        """SIGKILL the pod's process, as if the pod were lost; the pod then goes Failed (137)."""
        with self._lock:
            proc = self._procs.get((namespace, pod_name))
        if proc is None:
            raise KeyError(f"pod {namespace}/{pod_name} has no process on this kubelet (not started yet?)")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGKILL)
        self._wake.set()

    def logs(self, pod_name: str, namespace: str = "default") -> str:
        """Everything the pod's process wrote to stdout and stderr so far."""
        path = self._pod_dir(namespace, pod_name) / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _log_for_api(self, namespace: str | None, name: str) -> str | None:
        path = self._pod_dir(namespace or "default", name) / "log"
        return path.read_text(errors="replace") if path.exists() else None

    def _pod_dir(self, namespace: str, name: str) -> pathlib.Path:
        return self.workdir / "pods" / namespace / name

    def _watch(self, resource: str) -> None:
        path = self.api.path(resource, self.namespace)
        while not self._stopping.is_set():
            try:
                with self.api.session.get(
                    self.api_url + path,
                    params={"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": "30"},
                    stream=True,
                    timeout=(5, 10),
                ) as resp:
                    for line in resp.iter_lines():
                        if self._stopping.is_set():
                            return
                        if line and b'"BOOKMARK"' not in line[:30]:
                            self._wake.set()
            except requests.RequestException:
                time.sleep(0.2)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            for step in (self._sync_jobs, self._sync_deployments, self._sync_dns, self._sync_pods):
                try:
                    step()
                except (ApiClientError, requests.RequestException) as exc:
                    # A conflict or a vanished object is normal churn: the next round retries.
                    if not isinstance(exc, ApiClientError) or exc.code not in (404, 409):
                        self.errors.append(f"{step.__name__}: {exc}")
                except Exception as exc:  # keep the kubelet alive; tests can read .errors
                    self.errors.append(f"{step.__name__}: {exc!r}")

    # ------------------------------------------------------------------------- jobs
    def _sync_jobs(self) -> None:
        pods = self.api.list("v1/pods", self.namespace)
        for job in self.api.list("batch/v1/jobs", self.namespace):
            owned = [
                p
                for p in pods
                if any(
                    r.get("uid") == job["metadata"]["uid"] for r in p["metadata"].get("ownerReferences") or []
                )
            ]
            self._sync_job(job, owned)

    def _sync_job(self, job: Obj, pods: list[Obj]) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        ns, name = meta["namespace"], meta["name"]
        status = dict(job.get("status") or {})
        conditions: list[Obj] = list(status.get("conditions") or [])
        finished = [c for c in conditions if c["type"] in ("Complete", "Failed") and c["status"] == "True"]
        if meta.get("deletionTimestamp"):
            return
        if finished:
            ttl = spec.get("ttlSecondsAfterFinished")
            done_at = _parse_time(status.get("completionTime") or finished[0].get("lastTransitionTime"))
            if ttl is not None and done_at is not None and time.time() >= done_at + int(ttl):
                with contextlib.suppress(ApiClientError):
                    self.api.delete("batch/v1/jobs", name, ns, propagation="Background")
            for pod in pods:
                if (pod.get("status") or {}).get("phase") in (None, "Pending", "Running"):
                    self._delete_pod(pod)
            return
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        active = [p for p in live if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        succeeded = [p for p in live if (p.get("status") or {}).get("phase") == "Succeeded"]
        indexed = spec.get("completionMode") == "Indexed"
        completions = int(spec.get("completions") or 1)
        parallelism = int(spec["parallelism"]) if spec.get("parallelism") is not None else 1
        per_index = indexed and spec.get("backoffLimitPerIndex") is not None
        # With backoffLimitPerIndex the global limit defaults to "none" (MaxInt32), as in Kubernetes.
        default_limit = 2**31 - 1 if per_index else 6
        backoff_limit = int(spec["backoffLimit"]) if spec.get("backoffLimit") is not None else default_limit
        failures = self._failures(spec, [p for p in live if (p.get("status") or {}).get("phase") == "Failed"])
        new_status: Obj = {"failed": len(failures.counted), "succeeded": len(succeeded)}
        done: list[int] = []
        if indexed:
            done = sorted({int(p["metadata"]["annotations"][INDEX_KEY]) for p in succeeded})
            new_status["succeeded"] = len(done)
            new_status["completedIndexes"] = _ranges(done)
        failed_indexes: set[int] = set()
        if per_index:
            limit = int(spec["backoffLimitPerIndex"])
            failed_indexes = {i for i, n in failures.per_index.items() if n > limit} | failures.fail_index
            failed_indexes -= set(done)
            new_status["failedIndexes"] = _ranges(sorted(failed_indexes))
        if spec.get("suspend"):
            for pod in active:
                self._delete_pod(pod)
            new_status["active"] = 0
            conditions = self._set_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended")
            new_status["startTime"] = None
            self._write_job_status(job, new_status, conditions)
            return
        if any(c["type"] == "Suspended" and c["status"] == "True" for c in conditions):
            conditions = self._set_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed")
        start_time = status.get("startTime") or now_iso()
        new_status["startTime"] = start_time
        verdict: tuple[str, str, str] | None = None
        max_failed = spec.get("maxFailedIndexes")
        if failures.fail_job is not None:
            verdict = ("Failed", "PodFailurePolicy", failures.fail_job)
        elif per_index and max_failed is not None and len(failed_indexes) > int(max_failed):
            verdict = ("Failed", "MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number "
                       "of failed indexes")  # fmt: skip
        elif len(failures.counted) > backoff_limit:
            verdict = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        deadline = spec.get("activeDeadlineSeconds")
        started = _parse_time(start_time)
        if (
            verdict is None
            and deadline is not None
            and started is not None
            and time.time() >= started + int(deadline)
        ):
            verdict = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
        if (
            verdict is None
            and per_index
            and failed_indexes
            and len(done) + len(failed_indexes) >= completions
        ):
            verdict = ("Failed", "FailedIndexes", "Job has failed indexes")
        if verdict is None and new_status["succeeded"] >= completions:
            verdict = ("Complete", "", "")
        if verdict is not None:
            for pod in active:
                self._delete_pod(pod)
            new_status["active"] = 0
            ctype, reason, message = verdict
            if ctype == "Complete":
                conditions = self._set_condition(
                    conditions, "SuccessCriteriaMet", "True", "CompletionsReached", ""
                )
                conditions = self._set_condition(conditions, "Complete", "True", "CompletionsReached", "")
                new_status["completionTime"] = now_iso()
            else:
                conditions = self._set_condition(conditions, "FailureTarget", "True", reason, message)
                conditions = self._set_condition(conditions, "Failed", "True", reason, message)
            self._write_job_status(job, new_status, conditions)
            return
        # Create the pods still missing.
        if indexed:
            busy = {int(p["metadata"]["annotations"][INDEX_KEY]) for p in active + succeeded} | failed_indexes
            todo = [i for i in range(completions) if i not in busy]
            for index in todo[: max(0, parallelism - len(active))]:
                count = failures.per_index.get(index, 0) if per_index else None
                active.append(self._create_job_pod(job, index, failure_count=count))
        else:
            wanted = min(parallelism, completions - len(succeeded)) - len(active)
            for _ in range(max(0, wanted)):
                active.append(self._create_job_pod(job, None))
        new_status["active"] = len(active)
        new_status["ready"] = sum(
            1
            for p in active
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        )
        self._write_job_status(job, new_status, conditions)

    @staticmethod
    def _failures(spec: Obj, failed: list[Obj]) -> _Failures:
        """The failed pods as ``podFailurePolicy`` counts them (first matching rule wins)."""
        out = _Failures()
        rules = (spec.get("podFailurePolicy") or {}).get("rules") or []
        for pod in failed:
            action = next((r["action"] for r in rules if _rule_matches(r, pod)), "Count")
            if action == "Ignore":
                continue
            out.counted.append(pod)
            raw = (pod["metadata"].get("annotations") or {}).get(INDEX_KEY)
            index = int(raw) if raw is not None and str(raw).isdigit() else None
            if index is not None:
                out.per_index[index] = out.per_index.get(index, 0) + 1
            if action == "FailJob" and out.fail_job is None:
                out.fail_job = (
                    f"Pod {pod['metadata']['name']} matched a FailJob rule of the pod failure policy"
                )
            elif action == "FailIndex" and index is not None:
                out.fail_index.add(index)
        return out

    @staticmethod
    def _set_condition(
        conditions: list[Obj], ctype: str, status: str, reason: str, message: str
    ) -> list[Obj]:
        out = [c for c in conditions if c["type"] != ctype]
        old = [c for c in conditions if c["type"] == ctype]
        if old and old[0]["status"] == status and old[0].get("reason") == reason:
            out.append(old[0])
        else:
            cond = _condition(ctype, status, reason, message)
            cond["lastProbeTime"] = now_iso()
            out.append(cond)
        return out

    def _write_job_status(self, job: Obj, new_status: Obj, conditions: list[Obj]) -> None:
        old = job.get("status") or {}
        merged = {k: v for k, v in {**old, **new_status}.items() if v is not None}
        if conditions:
            merged["conditions"] = conditions
        same = all(old.get(k) == merged.get(k) for k in merged if k != "conditions") and _same_conditions(
            old.get("conditions") or [], conditions
        )
        if same and set(old) == set(merged):
            return
        body = {**job, "status": merged}
        self.api.replace("batch/v1/jobs", body, sub="status")

    def _create_job_pod(self, job: Obj, index: int | None, failure_count: int | None = None) -> Obj:
        meta = job["metadata"]
        template = json.loads(json.dumps((job.get("spec") or {}).get("template") or {}))
        tmeta = template.setdefault("metadata", {})
        labels = dict(tmeta.get("labels") or {})
        labels.update(
            {
                JOB_NAME_LABEL: meta["name"],
                "job-name": meta["name"],
                "batch.kubernetes.io/controller-uid": meta["uid"],
                "controller-uid": meta["uid"],
            }
        )
        annotations = dict(tmeta.get("annotations") or {})
        name = f"{meta['name']}-{_rand()}"
        spec = template.get("spec") or {}
        if index is not None:
            labels[INDEX_KEY] = str(index)
            annotations[INDEX_KEY] = str(index)
            if failure_count is not None:
                annotations[FAILURE_COUNT_KEY] = str(failure_count)
            name = f"{meta['name']}-{index}-{_rand()}"
            spec["hostname"] = f"{meta['name']}-{index}"  # as the Job controller names indexed pods
            for container in spec.get("containers") or []:
                env = [e for e in container.get("env") or [] if e.get("name") != "JOB_COMPLETION_INDEX"]
                env.insert(0, {"name": "JOB_COMPLETION_INDEX", "value": str(index)})
                container["env"] = env
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
        }
        return self.api.create("v1/pods", pod)

    # ------------------------------------------------------------------------- deployments
    def _sync_deployments(self) -> None:
        pods = self.api.list("v1/pods", self.namespace)
        for deploy in self.api.list("apps/v1/deployments", self.namespace):
            uid = deploy["metadata"]["uid"]
            owned = [
                p
                for p in pods
                if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
            ]
            self._sync_deployment(deploy, owned)

    def _sync_deployment(self, deploy: Obj, pods: list[Obj]) -> None:
        meta, spec = deploy["metadata"], deploy.get("spec") or {}
        if meta.get("deletionTimestamp"):
            return
        template = spec.get("template") or {}
        tmpl_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        replicas = int(spec["replicas"]) if spec.get("replicas") is not None else 1
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        keep: list[Obj] = []
        for pod in live:
            phase = (pod.get("status") or {}).get("phase")
            stale = pod["metadata"].get("labels", {}).get("pod-template-hash") != tmpl_hash
            if stale or phase in ("Succeeded", "Failed"):
                self._delete_pod(pod)  # recreate strategy: old template and ended pods are replaced
            else:
                keep.append(pod)
        keep.sort(key=lambda p: p["metadata"]["creationTimestamp"])
        for pod in keep[replicas:]:
            self._delete_pod(pod)
        keep = keep[:replicas]
        for _ in range(replicas - len(keep)):
            keep.append(self._create_deployment_pod(deploy, template, tmpl_hash))
        ready = sum(
            1
            for p in keep
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        )
        available = ready >= replicas
        old = deploy.get("status") or {}
        conditions = [
            _condition(
                "Available",
                "True" if available else "False",
                "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available
                else "Deployment does not have minimum availability.",
            ),
            _condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'Pods of template "{tmpl_hash}" are running.',
            ),
        ]
        new = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": len(keep),
            "updatedReplicas": len(keep),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(0, replicas - ready),
        }
        if all(old.get(k) == v for k, v in new.items()) and _same_conditions(
            old.get("conditions") or [], conditions
        ):
            return
        old_conds = {c["type"]: c for c in old.get("conditions") or []}
        for i, cond in enumerate(conditions):
            prev = old_conds.get(cond["type"])
            if prev and prev.get("status") == cond["status"]:
                conditions[i] = {**cond, "lastTransitionTime": prev.get("lastTransitionTime")}
        self.api.replace(
            "apps/v1/deployments", {**deploy, "status": {**new, "conditions": conditions}}, sub="status"
        )

    def _create_deployment_pod(self, deploy: Obj, template: Obj, tmpl_hash: str) -> Obj:
        meta = deploy["metadata"]
        tmeta = template.get("metadata") or {}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{meta['name']}-{tmpl_hash}-{_rand()}",
                "namespace": meta["namespace"],
                "labels": {**(tmeta.get("labels") or {}), "pod-template-hash": tmpl_hash},
                "annotations": dict(tmeta.get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": json.loads(json.dumps(template.get("spec") or {})),
        }
        return self.api.create("v1/pods", pod)

    # ------------------------------------------------------------------------- cluster DNS
    def _sync_dns(self) -> None:
        services = self.api.list("v1/services", self.namespace)
        pods = self.api.list("v1/pods", self.namespace)
        names = {
            f"{s['metadata']['name']}.{s['metadata']['namespace']}.svc.{CLUSTER_DOMAIN}" for s in services
        }
        headless = {
            (s["metadata"]["namespace"], s["metadata"]["name"])
            for s in services
            if (s.get("spec") or {}).get("clusterIP") == "None"
        }
        for pod in pods:
            meta, spec = pod["metadata"], pod.get("spec") or {}
            host, sub = spec.get("hostname"), spec.get("subdomain")
            gone = meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in (
                "Succeeded",
                "Failed",
            )
            if host and sub and (meta["namespace"], sub) in headless and not gone:
                names.add(f"{host}.{sub}.{meta['namespace']}.svc.{CLUSTER_DOMAIN}")
        self._write_dns(sorted(names))

    def _write_dns(self, names: list[str]) -> None:
        if names == self._dns_names:
            return
        path = self.dns_dir / "hosts.json"
        tmp = path.with_name(".hosts.json.tmp")
        tmp.write_text(json.dumps(names))
        os.replace(tmp, path)  # pod processes read it on every lookup: never half-written
        self._dns_names = names

    def _delete_pod(self, pod: Obj) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(ApiClientError):
            self.api.delete("v1/pods", meta["name"], meta["namespace"])
        self._stop_process(meta["namespace"], meta["name"])

    # ------------------------------------------------------------------------- pods
    def _sync_pods(self) -> None:
        pods = self.api.list("v1/pods", self.namespace)
        seen: set[tuple[str, str]] = set()
        for pod in pods:
            meta = pod["metadata"]
            key = (meta["namespace"], meta["name"])
            seen.add(key)
            if meta.get("deletionTimestamp"):
                self._stop_process(*key)
                continue
            with self._lock:
                proc = self._procs.get(key)
            if proc is not None and proc.uid != meta["uid"]:
                self._stop_process(*key)  # a new pod with an old pod's name
                proc = None
            phase = (pod.get("status") or {}).get("phase")
            if proc is None:
                if phase in (None, "Pending"):
                    self._start_pod(pod)
                continue
            if proc.reported:
                continue
            rc = proc.popen.poll()
            if rc is None:
                self._refresh_config_maps(pod, proc)
                ready = self._probe(pod)
                if ready != proc.ready or phase != "Running":
                    proc.ready = ready
                    self._report_running(pod, proc)
            else:
                self._report_terminated(pod, proc, rc)
        with self._lock:
            gone = [k for k in self._procs if k not in seen]
        for key in gone:
            self._stop_process(*key)

    def _start_pod(self, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        ns, name = meta["namespace"], meta["name"]
        containers = spec.get("containers") or []
        if not containers:
            self._report_failed_start(pod, "NoContainers", "the pod has no containers")
            return
        container = containers[0]
        pod_dir = self._pod_dir(ns, name)
        pod_dir.mkdir(parents=True, exist_ok=True)
        try:
            mounts = self._mounts(pod, container, pod_dir)
            env = self._env(pod, container)
        except PodConfigError as exc:
            self._report_waiting(pod, "CreateContainerConfigError", str(exc))
            return
        termination_path = container.get("terminationMessagePath") or "/dev/termination-log"
        termination_file = pod_dir / "termination-log"
        termination_file.write_text("")
        mounts[termination_path] = str(termination_file)
        command = list(container.get("command") or [])
        if not command:
            self._report_failed_start(
                pod,
                "NoCommand",
                "the test kubelet cannot run an image entrypoint: give the container a command",
            )
            return
        args = list(container.get("args") or [])
        command = [self._expand(c, env) for c in command]
        args = [self._expand(a, env) for a in args]
        rewrite = self._rewriter(mounts)
        argv = [rewrite(c) for c in command + args]
        if argv[0] == "foresight":
            argv[0] = str(self.venv / "bin" / "foresight")
        elif argv[0] in ("python", "python3"):
            argv[0] = str(self.venv / "bin" / "python")
        env = {k: rewrite(v) for k, v in env.items()}
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        full_env.update(env)
        full_env["HOSTNAME"] = spec.get("hostname") or name
        full_env["KUBELET_DNS_HOSTS"] = str(self.dns_dir / "hosts.json")
        full_env["KUBELET_POD_NAMESPACE"] = ns
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.dns_dir), full_env.get("PYTHONPATH", "")) if p
        )
        full_env["KUBELET_MOUNTS"] = json.dumps(mounts)
        cwd = rewrite(container["workingDir"]) if container.get("workingDir") else str(pod_dir)
        pathlib.Path(cwd).mkdir(parents=True, exist_ok=True)
        log_file = pod_dir / "log"
        with open(log_file, "ab") as log:
            try:
                popen = subprocess.Popen(
                    argv,
                    env=full_env,
                    cwd=cwd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                self._report_failed_start(pod, "StartError", f"cannot start {argv[0]}: {exc}")
                return
        proc = Process(
            popen=popen,
            uid=meta["uid"],
            started_at=now_iso(),
            termination_file=termination_file,
            log_file=log_file,
            fallback_to_logs=container.get("terminationMessagePolicy") == "FallbackToLogsOnError",
            mounts=mounts,
            volumes_checked=time.monotonic(),
        )
        with self._lock:
            self._procs[(ns, name)] = proc
        proc.ready = self._probe(pod)
        self._report_running(pod, proc)

    @staticmethod
    def _expand(text: str, env: dict[str, str]) -> str:
        # Kubernetes expands $(VAR) from the container env and keeps $$(VAR) as a literal $(VAR).
        def repl(m: re.Match[str]) -> str:
            if m.group(0).startswith("$$"):
                return m.group(0)[1:]
            return env.get(m.group(1), m.group(0))

        return re.sub(r"\$?\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", repl, str(text))

    @staticmethod
    def _rewriter(mounts: dict[str, str]) -> Callable[[str], str]:
        ordered = sorted(mounts.items(), key=lambda kv: len(kv[0]), reverse=True)
        patterns = [
            (re.compile(re.escape(mp.rstrip("/") or "/") + r"(?=/|$|[^\w.-])"), local)
            for mp, local in ordered
        ]

        def rewrite(text: str) -> str:
            for pattern, local in patterns:
                # A function replacement: local paths are literal text, never regex templates.
                text = pattern.sub(functools.partial(_literal, local), text)
            return text

        return rewrite

    def _volume_files(self, namespace: str, vol: Obj) -> dict[str, bytes] | None:
        """The files of a ConfigMap or Secret volume (``items`` honoured), None when the object is missing."""
        is_secret = "secret" in vol
        src = vol["secret"] if is_secret else vol["configMap"]
        ref = src.get("secretName") if is_secret else src.get("name")
        obj = self.api.find("v1/secrets" if is_secret else "v1/configmaps", ref or "", namespace)
        if obj is None:
            if src.get("optional"):
                return None
            kind = "secret" if is_secret else "configmap"
            raise PodConfigError(f'{kind} "{ref}" not found')
        files: dict[str, bytes] = {}
        for key, value in (obj.get("data") or {}).items():
            files[key] = base64.b64decode(value) if is_secret else str(value).encode()
        for key, value in (obj.get("stringData") or {}).items():
            files[key] = str(value).encode()
        for key, value in (obj.get("binaryData") or {}).items():
            files[key] = base64.b64decode(value)
        items = src.get("items")
        return {i["path"]: files[i["key"]] for i in items if i["key"] in files} if items else files

    @staticmethod
    def _write_files(
        target: pathlib.Path, files: dict[str, bytes], rewrite: Callable[[str], str] | None
    ) -> bool:
        """Make ``target`` hold exactly ``files`` (ConfigMap text through ``rewrite``); whether anything
        changed. Each file is replaced atomically, as the kubelet's symlink swap makes it for readers."""
        changed = False
        wanted: dict[pathlib.Path, bytes] = {}
        for rel, content in files.items():
            if rewrite is not None:
                with contextlib.suppress(UnicodeDecodeError):  # binary data is left as it is
                    content = rewrite(content.decode()).encode()
            wanted[target / rel] = content
        for path, content in wanted.items():
            if path.is_file() and path.read_bytes() == content:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(content)
            os.replace(tmp, path)
            changed = True
        for path in [p for p in target.rglob("*") if p.is_file() and p not in wanted]:
            path.unlink()
            changed = True
        return changed

    def _mounts(self, pod: Obj, container: Obj, pod_dir: pathlib.Path) -> dict[str, str]:
        ns = pod["metadata"]["namespace"]
        volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
        local: dict[str, pathlib.Path] = {}
        contents: dict[str, tuple[dict[str, bytes], bool]] = {}  # volume -> (files, is a ConfigMap)
        for vname, vol in volumes.items():
            if "configMap" in vol or "secret" in vol:
                target = pod_dir / "volumes" / vname
                target.mkdir(parents=True, exist_ok=True)
                local[vname] = target
                files = self._volume_files(ns, vol)
                contents[vname] = (files or {}, "configMap" in vol)
            elif "persistentVolumeClaim" in vol:
                claim = vol["persistentVolumeClaim"]["claimName"]
                local[vname] = self.workdir / "pvcs" / ns / claim
            elif "hostPath" in vol:
                local[vname] = pathlib.Path(vol["hostPath"]["path"])
            else:  # emptyDir and anything else: a directory of this pod
                local[vname] = pod_dir / "volumes" / vname
        mounts: dict[str, str] = {}
        for mount in container.get("volumeMounts") or []:
            base = local.get(mount["name"])
            if base is None:
                raise PodConfigError(
                    f'volume "{mount["name"]}" of mount {mount.get("mountPath")} is not defined'
                )
            path = base / mount["subPath"] if mount.get("subPath") else base
            if not (mount.get("subPath") and "configMap" in volumes.get(mount["name"], {})):
                path.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = str(path)
        # The mount rule reaches into ConfigMap files too: a config naming a path under another mount.
        rewrite = self._rewriter(mounts)
        for vname, (files, is_config_map) in contents.items():
            self._write_files(local[vname], files, rewrite if is_config_map else None)
        return mounts

    def _refresh_config_maps(self, pod: Obj, proc: Process) -> None:
        """A running pod's ConfigMap volumes follow their ConfigMaps (the real kubelet's sync period,
        about a minute there, is one second here)."""
        now = time.monotonic()
        if now - proc.volumes_checked < 1.0:
            return
        proc.volumes_checked = now
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        rewrite = self._rewriter(proc.mounts)
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            if "configMap" not in vol:
                continue
            try:
                files = self._volume_files(ns, vol)
            except PodConfigError:
                continue  # a required ConfigMap deleted under a running pod: its files stay, as in Kubernetes
            self._write_files(self._pod_dir(ns, name) / "volumes" / vol["name"], files or {}, rewrite)

    def _env(self, pod: Obj, container: Obj) -> dict[str, str]:
        ns = pod["metadata"]["namespace"]
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind, resource in (("secretRef", "v1/secrets"), ("configMapRef", "v1/configmaps")):
                if kind not in source:
                    continue
                ref = source[kind]
                obj = self.api.find(resource, ref["name"], ns)
                if obj is None:
                    if ref.get("optional"):
                        continue
                    raise PodConfigError(f'{resource.split("/")[1][:-1]} "{ref["name"]}" not found')
                for key, value in (obj.get("data") or {}).items():
                    env[prefix + key] = (
                        base64.b64decode(value).decode() if kind == "secretRef" else str(value)
                    )
                for key, value in (obj.get("stringData") or {}).items():
                    env[prefix + key] = str(value)
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = self._expand(str(item["value"]), env)
            elif "valueFrom" in item:
                value = self._value_from(pod, ns, item["valueFrom"])
                if value is not None:
                    env[item["name"]] = value
            else:
                env[item["name"]] = ""
        return env

    def _value_from(self, pod: Obj, ns: str, source: Obj) -> str | None:
        for kind, resource in (("secretKeyRef", "v1/secrets"), ("configMapKeyRef", "v1/configmaps")):
            if kind in source:
                ref = source[kind]
                obj = self.api.find(resource, ref["name"], ns)
                data = (obj or {}).get("data") or {}
                if obj is None or ref["key"] not in data:
                    if ref.get("optional"):
                        return None
                    raise PodConfigError(
                        f'key "{ref["key"]}" of {resource.split("/")[1][:-1]} "{ref["name"]}" not found'
                    )
                raw = data[ref["key"]]
                return base64.b64decode(raw).decode() if kind == "secretKeyRef" else str(raw)
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            meta = pod["metadata"]
            m = re.match(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
            if m:
                return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
            simple = {
                "metadata.name": meta["name"],
                "metadata.namespace": meta["namespace"],
                "metadata.uid": meta.get("uid", ""),
                "status.podIP": "127.0.0.1",
                "status.hostIP": "127.0.0.1",
                "spec.nodeName": "test-kubelet",
                "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName", "default"),
            }
            if path in simple:
                return str(simple[path])
            raise PodConfigError(f"fieldRef {path} is not supported by the test kubelet")
        if "resourceFieldRef" in source:
            return "0"
        return None

    def _probe(self, pod: Obj) -> bool:
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
        probe = container.get("readinessProbe")
        if not probe:
            return True
        check = probe.get("httpGet") or probe.get("tcpSocket")
        if not check:
            return True  # exec probes are not run: the container counts as ready
        port = check.get("port")
        if isinstance(port, str) and not port.isdigit():
            named = [p for p in container.get("ports") or [] if p.get("name") == port]
            if not named:
                return False
            port = named[0]["containerPort"]
        try:
            if "httpGet" in probe:
                path = check.get("path") or "/"
                resp = requests.get(f"http://127.0.0.1:{int(port)}{path}", timeout=1)
                return 200 <= resp.status_code < 400
            with socket.create_connection(("127.0.0.1", int(port)), timeout=1):
                return True
        except (requests.RequestException, OSError):
            return False

    # ------------------------------------------------------------------------- pod status
    def _write_pod_status(self, pod: Obj, status: Obj) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(ApiClientError):
            self.api.patch("v1/pods", meta["name"], {"status": status}, meta["namespace"], sub="status")

    def _base_status(self, pod: Obj, phase: str, ready: bool) -> Obj:
        old = pod.get("status") or {}
        flag = "True" if ready else "False"
        return {
            "phase": phase,
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "hostIP": "127.0.0.1",
            "startTime": old.get("startTime") or now_iso(),
            "conditions": [
                _condition("PodScheduled", "True"),
                _condition("Initialized", "True"),
                _condition("ContainersReady", flag),
                _condition("Ready", flag),
            ],
        }

    def _container_status(self, pod: Obj, state: Obj, ready: bool, pid: int | None = None) -> Obj:
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
        return {
            "name": container.get("name", "main"),
            "image": container.get("image", ""),
            "imageID": "",
            "containerID": f"process://{pid}" if pid else "",
            "ready": ready,
            "started": "running" in state,
            "restartCount": 0,
            "state": state,
        }

    def _report_running(self, pod: Obj, proc: Process) -> None:
        status = self._base_status(pod, "Running", proc.ready)
        state = {"running": {"startedAt": proc.started_at}}
        status["containerStatuses"] = [self._container_status(pod, state, proc.ready, proc.popen.pid)]
        self._write_pod_status(pod, status)

    def _report_terminated(self, pod: Obj, proc: Process, rc: int) -> None:
        exit_code = 128 - rc if rc < 0 else rc  # killed by signal N: 128+N, as container runtimes report
        message = ""
        with contextlib.suppress(OSError):
            message = proc.termination_file.read_text(errors="replace")[:4096]
        if not message and exit_code != 0 and proc.fallback_to_logs:
            with contextlib.suppress(OSError):
                message = "\n".join(proc.log_file.read_text(errors="replace").splitlines()[-80:])[-2048:]
        phase = "Succeeded" if exit_code == 0 else "Failed"
        status = self._base_status(pod, phase, False)
        state = {
            "terminated": {
                "exitCode": exit_code,
                "reason": "Completed" if exit_code == 0 else "Error",
                "message": message,
                "startedAt": proc.started_at,
                "finishedAt": now_iso(),
                "containerID": f"process://{proc.popen.pid}",
            }
        }
        status["containerStatuses"] = [self._container_status(pod, state, False)]
        self._write_pod_status(pod, status)
        proc.reported = True
        self._wake.set()  # the owning Job / Deployment reacts right away

    def _report_waiting(self, pod: Obj, reason: str, message: str) -> None:
        status = self._base_status(pod, "Pending", False)
        status["containerStatuses"] = [
            self._container_status(pod, {"waiting": {"reason": reason, "message": message}}, False)
        ]
        old = pod.get("status") or {}
        old_state = ((old.get("containerStatuses") or [{}])[0]).get("state", {})
        if old_state.get("waiting", {}).get("message") != message:
            self._write_pod_status(pod, status)

    def _report_failed_start(self, pod: Obj, reason: str, message: str) -> None:
        status = self._base_status(pod, "Failed", False)
        state = {
            "terminated": {"exitCode": 128, "reason": reason, "message": message, "finishedAt": now_iso()}
        }
        status["containerStatuses"] = [self._container_status(pod, state, False)]
        status["message"] = message
        status["reason"] = reason
        self._write_pod_status(pod, status)

    # ------------------------------------------------------------------------- processes
    def _stop_process(self, namespace: str, name: str) -> None:
        with self._lock:
            proc = self._procs.pop((namespace, name), None)
        if proc is not None:
            self._terminate(proc)

    @staticmethod
    def _terminate(proc: Process) -> None:
        if proc.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGTERM)
        try:
            proc.popen.wait(timeout=3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(timeout=3)
