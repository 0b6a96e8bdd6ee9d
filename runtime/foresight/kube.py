"""The Kubernetes API client: a thin, torch-free client over plain dicts, for every caller.

The operator uses it for everything kopf does not do itself (children, the owner's status, pods'
termination messages, Secrets' existence); the runtime's cluster-facing commands (``foresight
models``) use it too. :class:`KubeClient` wraps the ``kubernetes`` package's configured
``ApiClient`` (kubeconfig or in-cluster service account) and returns the API's JSON as dicts.
Errors become :class:`KubeApiError` with the HTTP status kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CONFIGMAPS",
    "CRDS",
    "DEPLOYMENTS",
    "JOBS",
    "PODS",
    "SECRETS",
    "SERVICES",
    "STATEFULSETS",
    "KubeApiError",
    "KubeClient",
    "ResourceRef",
    "connect",
]

Obj = dict[str, Any]


@dataclass(frozen=True)
class ResourceRef:
    """An API resource: ``api_version`` (``v1``, ``batch/v1``) and plural name."""

    api_version: str
    plural: str
    kind: str

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        prefix = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        path = prefix + (f"/namespaces/{namespace}" if namespace else "") + f"/{self.plural}"
        if name:
            path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
        return path


CONFIGMAPS = ResourceRef("v1", "configmaps", "ConfigMap")
SECRETS = ResourceRef("v1", "secrets", "Secret")
SERVICES = ResourceRef("v1", "services", "Service")
PODS = ResourceRef("v1", "pods", "Pod")
JOBS = ResourceRef("batch/v1", "jobs", "Job")
DEPLOYMENTS = ResourceRef("apps/v1", "deployments", "Deployment")
STATEFULSETS = ResourceRef("apps/v1", "statefulsets", "StatefulSet")
CRDS = ResourceRef("apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition")
"""Getting one by name tells whether the cluster serves a kind (KubeRay's RayJob, the Prometheus
Operator's PrometheusRule)."""


class KubeApiError(Exception):
    """A failed API call; ``status`` is the HTTP status (0 when the server was not reached)."""

    def __init__(self, status: int, reason: str, message: str, path: str) -> None:
        super().__init__(f"{path}: HTTP {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.path = path

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def temporary(self) -> bool:
        """Worth retrying: server errors, throttling, conflicts, timeouts, unreachable server."""
        return self.status in (0, 409, 429) or self.status >= 500


class KubeClient:
    """Synchronous dict-in, dict-out API calls (kopf runs sync handlers in a thread pool)."""

    def __init__(self, api_client: Any, *, timeout: float = 30.0) -> None:
        self._api = api_client
        self.timeout = timeout

    @classmethod
    def from_environment(
        cls, *, timeout: float = 30.0, user_agent: str = "foresight", connections: int | None = None
    ) -> KubeClient:
        """In-cluster service account when running in a pod, else the kubeconfig (``$KUBECONFIG``).

        ``user_agent`` names the caller in the API server's audit log (the operator: ``foresight-operator``).
        ``connections``: kept-alive connections to the API server, at least the threads that call it
        at once (the client's default is 5 per CPU; a thread beyond it opens a new one per call).
        """
        import kubernetes

        try:
            kubernetes.config.load_incluster_config()
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()
        config = kubernetes.client.Configuration.get_default_copy()
        if connections is not None:
            config.connection_pool_maxsize = connections
        api = kubernetes.client.ApiClient(config)
        api.user_agent = user_agent
        return cls(api, timeout=timeout)

    def _call(self, method: str, path: str, **request: Any) -> Obj:
        """A JSON call: :meth:`_request` with its keyword arguments, the answer decoded."""
        raw = self._request(method, path, **request)
        data = json.loads(raw) if raw else {}
        return dict(data or {})

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> bytes:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            method_, url, headers, payload, post = self._api.param_serialize(
                method,
                path,
                query_params=list((query or {}).items()),
                header_params={"Accept": accept, "Content-Type": content_type},
                body=body,
                auth_settings=["BearerToken"],
            )
            resp = self._api.call_api(
                method_,
                url,
                header_params=headers,
                body=payload,
                post_params=post,
                _request_timeout=self.timeout,
            )
            raw = resp.read()
        except ApiException as exc:  # raised by the REST layer only when the server was not reached
            raise KubeApiError(
                int(exc.status or 0), "Unreachable", str(exc.reason), f"{method} {path}"
            ) from exc
        except (HTTPError, OSError) as exc:
            raise KubeApiError(0, "Unreachable", str(exc), f"{method} {path}") from exc
        if not 200 <= resp.status < 300:
            reason, message = str(resp.reason or ""), ""
            try:
                status = json.loads(raw or b"{}")
                reason = status.get("reason") or reason
                message = status.get("message") or ""
            except ValueError:
                message = raw[:500].decode(errors="replace")
            raise KubeApiError(int(resp.status), reason, message, f"{method} {path}")
        return bytes(raw or b"")

    def get(self, ref: ResourceRef, name: str, namespace: str | None) -> Obj | None:
        """The object, or ``None`` when it does not exist."""
        try:
            return self._call("GET", ref.path(namespace, name))
        except KubeApiError as exc:
            if exc.not_found:
                return None
            raise

    def read_log(self, namespace: str, pod: str, *, tail_lines: int = 20, limit_bytes: int = 65536) -> str:
        """The last ``tail_lines`` lines of a pod's log (its only or first container)."""
        query = {"tailLines": str(tail_lines), "limitBytes": str(limit_bytes)}
        raw = self._request("GET", PODS.path(namespace, pod, "log"), query=query, accept="text/plain")
        return raw.decode(errors="replace")

    def list(
        self, ref: ResourceRef, namespace: str | None, *, label_selector: str | None = None
    ) -> list[Obj]:
        query = {"labelSelector": label_selector} if label_selector else None
        return list(self._call("GET", ref.path(namespace), query=query).get("items") or [])

    def create(self, ref: ResourceRef, body: Obj, namespace: str | None) -> Obj:
        return self._call("POST", ref.path(namespace), body=body)

    def patch(
        self,
        ref: ResourceRef,
        name: str,
        namespace: str | None,
        patch: Any,
        *,
        subresource: str | None = None,
        patch_type: str = "merge",
    ) -> Obj:
        content_type = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
        }[patch_type]
        return self._call(
            "PATCH", ref.path(namespace, name, subresource), body=patch, content_type=content_type
        )

    def delete(self, ref: ResourceRef, name: str, namespace: str | None) -> None:
        try:
            self._call("DELETE", ref.path(namespace, name), body={"propagationPolicy": "Background"})
        except KubeApiError as exc:
            if not exc.not_found:
                raise


SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def connect(
    kubeconfig: str | None = None, context: str | None = None, *, user_agent: str = "foresight"
) -> tuple[KubeClient, str]:
    """``(client, default namespace)`` for a command run by a person or in a pod.

    With neither ``kubeconfig`` nor ``context``: in-cluster (the pod's service account and namespace)
    when running in a pod, else ``$KUBECONFIG`` / ``~/.kube/config``; with either, that kubeconfig and
    context. The default namespace is the context's (``default`` when it names none).
    """
    import kubernetes

    namespace = "default"
    try:
        if kubeconfig is not None or context is not None:
            raise kubernetes.config.ConfigException("a kubeconfig was asked for")
        kubernetes.config.load_incluster_config()
        try:
            with open(SERVICE_ACCOUNT_NAMESPACE) as fh:
                namespace = fh.read().strip() or namespace
        except OSError:
            pass
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(config_file=kubeconfig, context=context)
        contexts, active = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig)
        if context is not None:
            active = next((c for c in contexts if c.get("name") == context), active)
        namespace = ((active or {}).get("context") or {}).get("namespace") or namespace
    api = kubernetes.client.ApiClient()
    api.user_agent = user_agent
    return KubeClient(api), namespace
