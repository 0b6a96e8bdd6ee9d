"""Fixtures for end-to-end tests: the emulated cluster, a real kubectl and the test kubelet.

- ``cluster``: a fresh :class:`~tests.cluster.emulator.Cluster` per test (API server on
  127.0.0.1, kubeconfig in a temp dir); ``KUBECONFIG`` points at it for subprocesses, and the
  in-process ``kubernetes`` client's default location is patched too (it reads ``$KUBECONFIG``
  once, at import).
- ``kubectl``: :class:`~tests.cluster.kubectl.Kubectl` bound to that cluster, with its own cache
  dir (fetched once into ``.cache/kubectl``; the test is skipped when it cannot be fetched, and
  fails under ``CI=true``: CI must not pass by testing nothing).
- ``kubelet``: a started :class:`~tests.cluster.kubelet.Kubelet` for that cluster, stopped (all
  processes terminated) at the end of the test.
- ``crds``: the project's CRDs applied with kubectl (``kubectl apply -k crds/``).
- ``operator_env``: extra environment of the operator (none; a module overrides it, e.g. with
  ``FORESIGHT_EXPERIMENT_TIME_SCALE``);
- ``operator``: the real operator process (:class:`~tests.cluster.operator_process.OperatorProcess`)
  against that cluster, started after the CRDs and ready, stopped at the end of the test; then
  every API call it made must be declared in manifests/operator-api-calls.yaml (its RBAC), and
  no object written may have carried a field the CRD schema prunes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# `tests.cluster` is imported as a package from the repository root; pytest's default import mode
# puts only test directories on sys.path.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.cluster.emulator import Cluster  # noqa: E402
from tests.cluster.kubectl import Kubectl, KubectlUnavailable, ensure_kubectl  # noqa: E402
from tests.cluster.kubelet import Kubelet  # noqa: E402
from tests.cluster.operator_process import REPO, OperatorProcess, declared_calls, operator_calls  # noqa: E402
from tests.servers import unavailable  # noqa: E402


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    with Cluster() as running:
        monkeypatch.setenv("KUBECONFIG", str(running.kubeconfig))
        try:
            import kubernetes.config.kube_config as kube_config
        except ImportError:  # pragma: no cover - the kubernetes client is a core dependency
            pass
        else:
            monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(running.kubeconfig))
        yield running


@pytest.fixture(scope="session")
def kubectl_binary() -> Path:
    try:
        return ensure_kubectl()
    except KubectlUnavailable as exc:
        unavailable("kubectl", str(exc))


@pytest.fixture
def kubectl(cluster: Cluster, kubectl_binary: Path, tmp_path: Path) -> Kubectl:
    return Kubectl(kubectl_binary, cluster.kubeconfig, tmp_path / "kubectl-cache")


@pytest.fixture
def kubelet(cluster: Cluster, tmp_path: Path) -> Iterator[Kubelet]:
    with Kubelet(cluster.url, tmp_path / "kubelet", server=cluster.server) as running:
        yield running


@pytest.fixture
def crds(kubectl: Kubectl) -> None:
    kubectl("apply", "--validate=false", "-k", str(REPO / "crds")).check()


@pytest.fixture
def operator_env() -> dict[str, str]:
    return {}


@pytest.fixture
def operator(
    cluster: Cluster, crds: None, tmp_path: Path, operator_env: dict[str, str]
) -> Iterator[OperatorProcess]:
    op = OperatorProcess(cluster, tmp_path, env=operator_env).start()
    try:
        yield op
    finally:
        op.stop()
    # Whatever the test did, the operator asked only for what its RBAC grants.
    undeclared = operator_calls(cluster) - declared_calls()
    assert not undeclared, f"API calls missing from manifests/operator-api-calls.yaml: {sorted(undeclared)}"
    # Nothing written (by the operator or the test's kubectl) had a field the schema would drop.
    assert not cluster.server.pruned, f"fields a real API server would prune: {cluster.server.pruned}"
