"""ModelLibrary end to end: ``kubectl apply`` -> the operator's fetch Job -> the test kubelet runs
``foresight library fetch`` -> the library verified and stored in the claim the kubelet serves as a
directory, the active pointer switched -> status, ``kubectl get mlib`` and the CLI.

- a built-in library and a ConfigMap library become Ready and active; a ForecastTask naming the
  built-in one writes its capacity recommendation to a real Prometheus (through a real Pushgateway)
  and into its status, with an event for the change the predicted load needs;
- a URL library served by a local HTTP server: the right sha256 activates it, the next version
  replaces it while a reader polling the pointer never sees a mix, and a wrong sha256 is
  ``ChecksumMismatch`` with the previous version still active;
- bad libraries (malformed JSON, failing cases with a duplicate id, an empty library, an archive
  escaping its root, a 30 MB document, an unreachable URL): each its condition, none activated, the
  operator still running; the unreachable one retried with backoff and Degraded;
- two ModelLibraries of one library name: the later one waits in ``Conflict`` naming the holder; the
  holder's models are ModelVersions while it is active; ``active: false`` withdraws it without
  fetching the source again, its ModelVersions go, and the other one takes the name.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from foresight.artifacts import LocalArtifactStore
from foresight.library.builtin import builtin_path
from foresight.library.errors import LibraryError
from foresight.library.store import LibraryStore

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.kubelet import Kubelet
from tests.cluster.operator_process import OperatorProcess
from tests.servers.prometheus import (
    PrometheusServer,
    PushgatewayServer,
    backfill,
    ensure_installed,
    openmetrics,
)
from tests.servers.static_http import Route, StaticHTTPServer
from tests.unit.library.conftest import case, document, spread_cases

pytestmark = pytest.mark.e2e

MLIB = "foresight.dev/v1alpha1/modellibraries"
FT = "foresight.dev/v1alpha1/forecasttasks"
MV = "foresight.dev/v1alpha1/modelversions"
NS = "default"
CLAIM = "foresight-artifacts"
WAIT = 150.0
Obj = dict[str, Any]


# --- helpers -------------------------------------------------------------------------------------------


def library(name: str, source: Obj, version: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ModelLibrary",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"source": source, "version": version, **spec},
    }


def status_of(obj: Obj | None) -> Obj:
    return dict((obj or {}).get("status") or {})


def cond(obj: Obj | None, ctype: str) -> Obj:
    return next((c for c in status_of(obj).get("conditions") or [] if c["type"] == ctype), {})


def settled(generation: int | None = None) -> Any:
    """A ModelLibrary whose fetch reached a verdict (for ``generation`` when given)."""

    def check(obj: Obj | None) -> bool:
        st = status_of(obj)
        if generation is not None and st.get("observedGeneration") != generation:
            return False
        return st.get("phase") in ("Ready", "Failed", "Conflict")

    return check


def wait(
    cluster: Cluster, name: str, predicate: Any, operator: OperatorProcess, timeout: float = WAIT
) -> Obj:
    got = cluster.api.wait_for(MLIB, name, predicate, NS, timeout=timeout, interval=0.3)
    assert got is not None and predicate(got), (
        status_of(cluster.api.get(MLIB, name, NS)),
        operator.log.read_text()[-3000:],
    )
    return got


def store(tmp_path: Path) -> LibraryStore:
    """The libraries of namespace NS in the claim the kubelet serves as a directory."""
    return LibraryStore(
        LocalArtifactStore(tmp_path / "kubelet" / "pvcs" / NS / CLAIM), f"modellibraries/{NS}"
    )


def pointer_file(tmp_path: Path, lib: str) -> Path:
    return tmp_path / "kubelet" / "pvcs" / NS / CLAIM / "modellibraries" / NS / lib / "active.json"


def configmap(kubectl: Kubectl, name: str, data: str, key: str = "library.json") -> None:
    """``kubectl create configmap`` as a user types it (generated client-side, then applied)."""
    made = kubectl(
        "create", "configmap", name, f"--from-literal={key}={data}", "--dry-run=client", "-o", "yaml"
    )
    kubectl.apply(made.check().stdout).check()


def pack(doc: Obj, tmp_path: Path, name: str) -> bytes:
    """A library document packed as a publisher would (`foresight library pack`)."""
    src = tmp_path / f"{name}.json"
    src.write_text(json.dumps(doc))
    return pack_path(src, tmp_path / f"{name}.tar.gz")


def pack_path(src: Path, out: Path) -> bytes:
    """``foresight library pack SRC -o OUT``: the archive's bytes."""
    cmd = [sys.executable, "-m", "foresight.cli", "library", "pack", str(src), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out.read_bytes()


def foresight_cli(cluster: Cluster, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "KUBE"))}
    env["KUBECONFIG"] = str(cluster.kubeconfig)
    cmd = [str(Path(sys.prefix) / "bin" / "foresight"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture
def http() -> Iterator[StaticHTTPServer]:
    with StaticHTTPServer() as server:
        yield server


# --- built-in, ConfigMap, and a ForecastTask's recommendation --------------------------------------------

STEP = 3600
GB = 1e9


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[PrometheusServer, PushgatewayServer]]:
    """Prometheus with a week of a database's load (5,000 QPS; 500 GB growing 200 GB an hour), scraping
    a Pushgateway."""
    ensure_installed()
    now = int(time.time()) // STEP * STEP
    ts = now - STEP * np.arange(7 * 24)[::-1]
    size = [(int(t), float(500 * GB - 200 * GB * (now - t) / STEP)) for t in ts]
    series = [
        ({"signal": "qps", "service": "orders"}, [(int(t), 5000.0) for t in ts]),
        ({"signal": "bytes", "service": "orders"}, size),
    ]
    backfill(openmetrics({"db_load": ("gauge", series)}), tmp_path / "prom-data")
    pgw = PushgatewayServer(tmp_path / "pgw", None)
    with pgw, PrometheusServer(tmp_path / "prom-data", pushgateway=pgw) as prom:
        yield prom, pgw


def recommending_task(prom: PrometheusServer, pgw: PushgatewayServer) -> Obj:
    return {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ForecastTask",
        "metadata": {"name": "orders-db", "namespace": NS},
        "spec": {
            "source": {
                "url": prom.url,
                "query": "db_load",
                "lookback": "168h",
                "step": "1h",
                "groupBy": ["signal", "service"],
            },
            "model": {"type": "linear", "backtestFolds": 1},
            "horizon": "12h",
            "schedule": {"retrainEvery": "1h", "predictEvery": "1h"},
            "output": {"pushgatewayUrl": pgw.url, "horizons": ["12h"]},
            "resources": {"cpu": "250m", "memory": "512Mi"},
            "recommendation": {
                "library": "postgresql-oltp",
                "inputs": {
                    "qps": {"series": {"signal": "qps"}},
                    "total_data_size_gb": {"series": {"signal": "bytes"}, "scale": 1e-9},
                },
                "constants": {"need_high_availability": True},
            },
        },
    }


def test_builtin_and_configmap_libraries_become_active_and_a_forecasttask_recommends_from_one(
    cluster: Cluster,
    kubectl: Kubectl,
    kubelet: Kubelet,
    operator: OperatorProcess,
    servers: tuple[PrometheusServer, PushgatewayServer],
    tmp_path: Path,
) -> None:
    prom, pgw = servers
    configmap(kubectl, "team-cases", json.dumps(document(spread_cases(40), name="test-lib", version="1.0.0")))
    builtin = library("pg", {"builtin": "postgresql-oltp"}, "2026.12")
    team = library("team", {"configMap": {"name": "team-cases"}}, "1.0.0")
    kubectl.apply(yaml.safe_dump_all([builtin, team])).check()

    pg = wait(cluster, "pg", settled(), operator)
    st = status_of(pg)
    assert (st["phase"], st["active"], st["activeVersion"], st["libraryName"]) == (
        "Ready",
        True,
        "2026.12",
        "postgresql-oltp",
    )
    assert (st["cases"], st["validCases"], st["invalidCases"]) == (300, 300, 0)
    assert st["checksum"] == hashlib.sha256(builtin_path("postgresql-oltp").read_bytes()).hexdigest()
    assert st["quality"]["architectureAccuracy"] > st["quality"]["baselineAccuracy"]
    assert st["source"]["kind"] == "builtin" and st["source"]["reachable"] is True
    assert st["storedUri"] == f"pvc://{CLAIM}/modellibraries/{NS}/postgresql-oltp/versions/2026.12"
    assert (cond(pg, "Ready")["status"], cond(pg, "Ready")["reason"]) == ("True", "Active")
    job = cluster.api.get("batch/v1/jobs", "pg-fetch-g1", NS)
    assert job["metadata"]["ownerReferences"][0]["name"] == "pg"
    team_obj = wait(cluster, "team", settled(), operator)
    assert (status_of(team_obj)["phase"], status_of(team_obj)["cases"]) == ("Ready", 40)
    assert pointer_file(tmp_path, "postgresql-oltp").exists() and pointer_file(tmp_path, "test-lib").exists()

    table = kubectl("get", "mlib").check().stdout
    header, *rows = table.splitlines()
    assert header.split()[:7] == ["NAME", "READY", "PHASE", "VERSION", "ACTIVE", "CASES", "VALID"]
    assert any(r.split()[:7] == ["pg", "True", "Ready", "2026.12", "true", "300", "300"] for r in rows), table
    listed = foresight_cli(cluster, "library", "list", "--cluster", "-n", NS)
    assert "postgresql-oltp" in listed and "test-lib" in listed and "Active" in listed
    assert "leave-one-out quality" in foresight_cli(cluster, "library", "show", "pg", "--cluster", "-n", NS)

    # A ForecastTask naming the library: the architecture its predicted load needs, in Prometheus.
    kubectl.apply(yaml.safe_dump(recommending_task(prom, pgw))).check()
    ft = cluster.api.wait_for(
        FT, "orders-db", lambda o: bool(status_of(o).get("recommendation")), NS, timeout=WAIT, interval=0.5
    )
    assert ft is not None, (status_of(cluster.api.get(FT, "orders-db", NS)), operator.log.read_text()[-3000:])
    rec = status_of(ft)["recommendation"]
    assert (rec["reason"], rec["libraryVersion"], rec["changed"]) == ("Recommended", "2026.12", True)
    assert (rec["current"]["architecture"], rec["predicted"]["architecture"]) == (
        "primary_standby",
        "distributed",
    )
    assert len(rec["predicted"]["cases"]) == 5
    query = 'foresight_recommended_nodes{task="orders-db",load="predicted"}'
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not prom.query(query):
        time.sleep(0.5)
    (sample,) = prom.query(query)
    assert (
        sample["metric"]["architecture"] == "distributed"
        and float(sample["value"][1]) == rec["predicted"]["nodes"]
    )
    events = cluster.api.list("events.k8s.io/v1/events", NS) + cluster.api.list("v1/events", NS)
    assert any(e.get("reason") == "RecommendationChanged" for e in events), [e.get("reason") for e in events]


# --- a URL library: checksums and an atomic switch -------------------------------------------------------


def versions(tmp_path: Path) -> dict[str, bytes]:
    doc = json.loads(builtin_path("postgresql-oltp").read_text())
    out = {}
    for version, n in (("2026.12", 300), ("2026.12.1", 200)):
        out[version] = pack({**doc, "version": version, "cases": doc["cases"][:n]}, tmp_path, f"pg-{version}")
    return out


class PointerReader:
    """Reads the active version as a ForecastTask run does, as fast as it can, in a thread."""

    def __init__(self, lib_store: LibraryStore) -> None:
        self.store = lib_store
        self.seen: list[tuple[str, int]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                lib, ref = self.store.load("postgresql-oltp")
                self.seen.append((ref.version, len(lib.cases)))
            except LibraryError as exc:
                self.errors.append(str(exc))

    def __enter__(self) -> PointerReader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_url_library_right_and_wrong_sha256_and_an_atomic_switch(
    cluster: Cluster,
    kubectl: Kubectl,
    kubelet: Kubelet,
    operator: OperatorProcess,
    http: StaticHTTPServer,
    tmp_path: Path,
) -> None:
    packed = versions(tmp_path)
    for version, data in packed.items():
        http.routes[f"/pg-{version}.tar.gz"] = Route(data)
    sha = {v: hashlib.sha256(d).hexdigest() for v, d in packed.items()}
    doc = library("pg-url", {"url": http.url("/pg-2026.12.tar.gz")}, "2026.12", sha256=sha["2026.12"])
    kubectl.apply(yaml.safe_dump(doc)).check()
    first = wait(cluster, "pg-url", settled(1), operator)
    assert (status_of(first)["phase"], status_of(first)["activeVersion"]) == ("Ready", "2026.12")
    assert status_of(first)["source"]["httpStatus"] == 200

    # The next version replaces it while a reader polls the pointer: every read is one whole version.
    with PointerReader(store(tmp_path)) as reader:
        time.sleep(0.5)
        patch = {
            "spec": {
                "source": {"url": http.url("/pg-2026.12.1.tar.gz")},
                "version": "2026.12.1",
                "sha256": sha["2026.12.1"],
            }
        }
        cluster.api.patch(MLIB, "pg-url", patch, NS)
        second = wait(cluster, "pg-url", settled(2), operator)
        time.sleep(0.5)
    st = status_of(second)
    assert (st["phase"], st["activeVersion"], st["previousVersion"], st["cases"]) == (
        "Ready",
        "2026.12.1",
        "2026.12",
        200,
    )
    assert not reader.errors, reader.errors[:3]
    assert set(reader.seen) == {("2026.12", 300), ("2026.12.1", 200)}, set(reader.seen)
    assert reader.seen.index(("2026.12.1", 200)) > reader.seen.index(("2026.12", 300))

    # A publisher swapped the file behind a pinned sha256: ChecksumMismatch, 2026.12.1 stays active.
    before = pointer_file(tmp_path, "postgresql-oltp").read_bytes()
    http.routes["/pg-2026.12.2.tar.gz"] = Route(packed["2026.12"])
    patch = {
        "spec": {
            "source": {"url": http.url("/pg-2026.12.2.tar.gz")},
            "version": "2026.12.2",
            "sha256": "0" * 64,
        }
    }
    cluster.api.patch(MLIB, "pg-url", patch, NS)
    third = wait(cluster, "pg-url", settled(3), operator)
    st = status_of(third)
    assert (st["phase"], cond(third, "Ready")["reason"]) == ("Failed", "ChecksumMismatch")
    assert (st["active"], st["activeVersion"]) == (True, "2026.12.1")
    assert "2026.12.1 of this library stays active" in cond(third, "Ready")["message"]
    assert pointer_file(tmp_path, "postgresql-oltp").read_bytes() == before
    assert store(tmp_path).load("postgresql-oltp")[1].version == "2026.12.1"


# --- bad inputs -------------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bad_libraries_each_get_a_clear_condition_and_none_activates(
    cluster: Cluster,
    kubectl: Kubectl,
    kubelet: Kubelet,
    operator: OperatorProcess,
    http: StaticHTTPServer,
    tmp_path: Path,
) -> None:
    import io
    import tarfile

    bad_cases = [case("a"), case("b", **{"input.qps": -5}), case("a")]  # a negative QPS and a duplicate id
    configmap(kubectl, "malformed", '{"schemaVersion": 1, "cases": [')
    configmap(kubectl, "invalid-cases", json.dumps(document(bad_cases, version="1")))
    configmap(kubectl, "empty", json.dumps(document([], version="1")))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        evil = tarfile.TarInfo("../../escaped.json")
        evil.size = 2
        tar.addfile(evil, io.BytesIO(b"{}"))
    huge = json.dumps(document([case(f"c{i:06d}") for i in range(56_000)], version="1")).encode()
    assert len(huge) > 30_000_000
    served = {"/unsafe.tar.gz": buf.getvalue(), "/huge.json": huge}
    for path, body in served.items():
        http.routes[path] = Route(body)
    sha = {p: hashlib.sha256(b).hexdigest() for p, b in served.items()}
    docs = [
        library("malformed", {"configMap": {"name": "malformed"}}, "1"),
        library("invalid-cases", {"configMap": {"name": "invalid-cases"}}, "1"),
        library("empty", {"configMap": {"name": "empty"}}, "1"),
        library("unsafe", {"url": http.url("/unsafe.tar.gz")}, "1", sha256=sha["/unsafe.tar.gz"]),
        library("huge", {"url": http.url("/huge.json")}, "1", sha256=sha["/huge.json"]),
        library("down", {"url": f"http://127.0.0.1:{closed_port()}/lib.tar.gz"}, "1", sha256="a" * 64),
    ]
    kubectl.apply(yaml.safe_dump_all(docs)).check()
    expected = {
        "malformed": "InvalidArchive",
        "invalid-cases": "InvalidCases",
        "empty": "EmptyLibrary",
        "unsafe": "UnsafeArchive",
        "huge": "TooLarge",
    }
    for name, reason in expected.items():
        obj = wait(cluster, name, settled(), operator)
        ready = cond(obj, "Ready")
        assert (status_of(obj)["phase"], ready["status"], ready["reason"]) == ("Failed", "False", reason), (
            ready
        )
        assert "Nothing of it was activated" in ready["message"] and status_of(obj)["active"] is False
    invalid = status_of(cluster.api.get(MLIB, "invalid-cases", NS))
    assert (invalid["cases"], invalid["validCases"], invalid["invalidCases"]) == (3, 1, 2)
    assert any("case b (#1): input.qps" in r for r in invalid["invalidReasons"])
    assert any("duplicate" in r and "case a" in r for r in invalid["invalidReasons"]), invalid[
        "invalidReasons"
    ]
    assert "line 1" in cond(cluster.api.get(MLIB, "malformed", NS), "Ready")["message"]
    assert "spec.limits" in cond(cluster.api.get(MLIB, "huge", NS), "Ready")["message"]
    # The unreachable source is retried with backoff and turns Degraded after repeated failures.
    down = wait(cluster, "down", lambda o: cond(o, "Degraded").get("status") == "True", operator)
    assert status_of(down)["phase"] == "Retrying" and status_of(down)["consecutiveFailures"] >= 3
    assert (
        cond(down, "Ready")["reason"] == "SourceUnreachable"
        and status_of(down)["source"]["reachable"] is False
    )
    attempts = [
        j for j in cluster.api.list("batch/v1/jobs", NS) if j["metadata"]["name"].startswith("down-fetch")
    ]
    assert len(attempts) >= 3
    # Nothing was activated, nothing escaped, and the operator is still running.
    assert not (tmp_path / "kubelet" / "pvcs" / NS / CLAIM / "modellibraries" / NS / "test-lib").exists()
    assert not list(tmp_path.rglob("escaped.json"))
    assert operator.proc is not None and operator.proc.poll() is None


# --- two libraries of one name, models as ModelVersions, withdraw ------------------------------------------


def library_with_a_model(tmp_path: Path) -> bytes:
    """An archive of library ``team-oltp`` 2.0 carrying a tiny trained LSTM forecaster."""
    from foresight.api.forecasttask import ForecastTaskSpec
    from foresight.forecast.pipeline import build_model
    from foresight.forecast.synthetic import make_storage_dataset

    tiny = {
        "inputWindow": 24,
        "hiddenSize": 8,
        "layers": 1,
        "epochs": 1,
        "windowsPerEpoch": 100,
        "batchSize": 32,
    }
    spec = ForecastTaskSpec.model_validate(
        {
            "source": {"query": "x", "step": "1h", "lookback": "72h"},
            "horizon": "6h",
            "limits": {"minHistoryPoints": 24},
            "model": {"type": "lstm", "hyperparameters": tiny},
        }
    )
    model = build_model(spec)
    model.fit(make_storage_dataset(n_series=2, days=4).panel, 6, seed=0)
    root = tmp_path / "team-oltp"
    model.save(root / "models" / "storage-lstm")
    files = sorted((root / "models" / "storage-lstm").iterdir())
    manifest = {k: v for k, v in document([], name="team-oltp", version="2.0").items() if k != "cases"}
    manifest["models"] = [
        {
            "name": "storage-lstm",
            "type": "lstm",
            "path": "models/storage-lstm",
            "description": "tiny LSTM",
            "files": [{"path": f.name, "sha256": hashlib.sha256(f.read_bytes()).hexdigest()} for f in files],
        }
    ]
    (root / "library.json").write_text(json.dumps({**manifest, "cases": "cases.json"}))
    cases = [{**c, "source": "team-oltp"} for c in spread_cases(20)]
    (root / "cases.json").write_text(json.dumps(cases))
    return pack_path(root, tmp_path / "team-oltp-2.0.tar.gz")


def test_one_active_library_per_name_models_as_model_versions_and_withdraw_hands_over(
    cluster: Cluster,
    kubectl: Kubectl,
    kubelet: Kubelet,
    operator: OperatorProcess,
    http: StaticHTTPServer,
    tmp_path: Path,
) -> None:
    data = library_with_a_model(tmp_path)
    http.routes["/team-oltp-2.0.tar.gz"] = Route(data)
    holder = library(
        "team-a", {"url": http.url("/team-oltp-2.0.tar.gz")}, "2.0", sha256=hashlib.sha256(data).hexdigest()
    )
    kubectl.apply(yaml.safe_dump(holder)).check()
    a = wait(cluster, "team-a", settled(1), operator)
    assert (status_of(a)["phase"], status_of(a)["active"], status_of(a)["models"]) == ("Ready", True, 1)
    (mv_name,) = status_of(a)["modelVersions"]
    mv = cluster.api.get(MV, mv_name, NS)
    assert mv["metadata"]["labels"]["foresight.dev/modellibrary"] == "team-a"
    assert mv["metadata"]["ownerReferences"][0]["name"] == "team-a"
    assert mv["spec"]["artifact"]["uri"] == (
        f"pvc://{CLAIM}/modellibraries/{NS}/team-oltp/versions/2.0/models/storage-lstm"
    )
    done = ("Ready", "Failed")
    verified = cluster.api.wait_for(
        MV, mv_name, lambda o: status_of(o).get("phase") in done, NS, timeout=WAIT
    )
    assert status_of(verified)["phase"] == "Ready", status_of(verified)  # the verify Job loaded the model

    # A second ModelLibrary of the same library name waits, naming the holder.
    configmap(
        kubectl,
        "team-b",
        json.dumps(
            document(
                [{**c, "source": "team-oltp"} for c in spread_cases(10)], name="team-oltp", version="2.1"
            )
        ),
    )
    kubectl.apply(yaml.safe_dump(library("team-b", {"configMap": {"name": "team-b"}}, "2.1"))).check()
    b = wait(cluster, "team-b", settled(1), operator)
    assert (status_of(b)["phase"], status_of(b)["activeOwner"]) == ("Conflict", f"{NS}/team-a")
    assert f"{NS}/team-a" in cond(b, "Ready")["message"]
    assert json.loads(pointer_file(tmp_path, "team-oltp").read_text())["active"]["owner"] == f"{NS}/team-a"

    # team-a lets go: a withdraw (the source is not fetched again), its ModelVersions go, team-b takes it.
    requests_before = list(http.requests)
    cluster.api.patch(MLIB, "team-a", {"spec": {"active": False}}, NS)
    a = wait(cluster, "team-a", settled(2), operator)
    assert (status_of(a)["phase"], status_of(a)["active"], cond(a, "Ready")["reason"]) == (
        "Ready",
        False,
        "Inactive",
    )
    assert cluster.api.get("batch/v1/jobs", "team-a-withdraw-g2", NS) is not None
    assert http.requests == requests_before
    gone = cluster.api.wait_for(MV, mv_name, lambda o: o is None, NS, timeout=60)
    assert gone is None
    b = wait(cluster, "team-b", lambda o: status_of(o).get("phase") == "Ready", operator)
    assert (status_of(b)["active"], status_of(b)["activeVersion"]) == (True, "2.1")
    active = json.loads(pointer_file(tmp_path, "team-oltp").read_text())["active"]
    assert (active["owner"], active["version"]) == (f"{NS}/team-b", "2.1")
