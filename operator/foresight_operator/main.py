"""The operator process: kopf with the project's settings, handlers, telemetry and liveness.

:func:`run` takes :class:`~foresight_operator.settings.OperatorSettings` (read by the entry point,
``foresight operator``) and blocks until kopf stops (SIGTERM / SIGINT finish handlers in flight).
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from .settings import FINALIZER, OperatorSettings

__all__ = ["USER_AGENT", "build_kopf_handlers", "build_kopf_settings", "run"]

log = logging.getLogger(__name__)
USER_AGENT = "foresight-operator"
"""How the operator's own API calls are named in the API server's audit log."""


def build_kopf_settings(settings: OperatorSettings) -> Any:
    """``kopf.OperatorSettings`` for our settings: standalone, our finalizer and annotations, timeouts."""
    import kopf

    ks = kopf.OperatorSettings()
    ks.peering.standalone = settings.standalone
    ks.persistence.finalizer = FINALIZER
    # Handler progress and the last handled spec go into foresight.dev annotations; the status stays
    # ours (the CRDs' status schemas would prune kopf's own status fields anyway).
    ks.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="foresight.dev")
    ks.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="foresight.dev", key="last-handled-configuration"
    )
    ks.posting.enabled = True
    ks.posting.reporting_component = "foresight-operator"
    ks.posting.reporting_instance = settings.pod_name or socket.gethostname()
    ks.posting.event_name_prefix = "foresight-"
    # Watches end server-side after watch_server_timeout and are resumed from the last
    # resourceVersion (no lost events); a silent connection is dropped after the client timeout.
    ks.watching.server_timeout = settings.watch_server_timeout
    ks.watching.client_timeout = settings.watch_client_timeout
    ks.watching.connect_timeout = 10
    ks.watching.reconnect_backoff = 1.0
    ks.networking.request_timeout = settings.request_timeout
    ks.networking.connect_timeout = 10
    ks.execution.max_workers = settings.handler_threads
    return ks


def build_kopf_handlers(ctx: Any) -> Any:
    """A fresh ``kopf.OperatorRegistry`` (kopf's name for a set of handlers) with every kind's
    handlers; nothing is registered at module level."""
    import kopf

    from .handlers import register_all

    registry = kopf.OperatorRegistry()
    # kopf's default login handlers live in its global registry; an explicit one needs its own:
    # kubeconfig or in-cluster service account, through the kubernetes client.
    kopf.on.login(registry=registry)(kopf.login_via_client)
    register_all(registry, ctx)
    return registry


def run(settings: OperatorSettings, *, stop_flag: threading.Event | None = None) -> int:
    """Run the operator until stopped; returns the process exit code."""
    import kopf
    from foresight.kube import KubeClient
    from prometheus_client import CollectorRegistry

    from .handlers import HandlerContext
    from .telemetry import MetricsServer, OperatorMetrics

    fmt = {"plain": kopf.LogFormat.PLAIN, "full": kopf.LogFormat.FULL, "json": kopf.LogFormat.JSON}
    kopf.configure(verbose=settings.verbose, log_format=fmt[settings.log_format])
    metrics = OperatorMetrics(CollectorRegistry())
    kube = KubeClient.from_environment(
        timeout=settings.request_timeout, user_agent=USER_AGENT, connections=settings.handler_threads + 4
    )
    ctx = HandlerContext(settings=settings, kube=kube, metrics=metrics)
    ready = threading.Event()
    server: MetricsServer | None = None
    if settings.metrics_port is not None:
        server = MetricsServer(settings.metrics_host, settings.metrics_port, metrics.registry, ready).start()
        log.info("metrics on http://%s:%d/metrics, readiness on /readyz", settings.metrics_host, server.port)
    log.info("foresight operator serving %s; runtime image %s", settings.scope, settings.runtime_image)
    try:
        kopf.run(
            registry=build_kopf_handlers(ctx),
            settings=build_kopf_settings(settings),
            standalone=settings.standalone,
            clusterwide=settings.all_namespaces,
            namespaces=settings.namespaces,
            liveness_endpoint=settings.liveness_endpoint,
            ready_flag=ready,
            stop_flag=stop_flag,
        )
    finally:
        if server is not None:
            server.stop()
    return 0
