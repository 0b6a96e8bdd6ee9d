"""The operator's settings: one frozen dataclass, read once from flags and the environment.

``foresight operator`` builds :class:`OperatorSettings` in its entry point (flags win over the
environment) and passes it down; nothing else in the package reads ``os.environ``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["FINALIZER", "MonitoringSettings", "OperatorSettings", "SettingsError"]

FINALIZER = "foresight.dev/finalizer"
"""The finalizer name (kopf adds it only to kinds that have deletion handlers)."""

DEFAULT_RUNTIME_IMAGE = "ghcr.io/foresight-dev/foresight-runtime:0.1.0"


class SettingsError(ValueError):
    """A flag or environment variable has a value the operator cannot use."""


def _int(environ: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not an integer; set it to a port number or unset it") from exc


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a number of seconds") from exc


# A Kubernetes label key (optional DNS-subdomain prefix + "/", then a name) and value.
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def _labels(
    environ: Mapping[str, str], name: str, default: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """``key=value,key=value`` -> pairs; unset = ``default``, empty = none."""
    raw = environ.get(name)
    if raw is None:
        return default
    pairs: list[tuple[str, str]] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
            raise SettingsError(
                f"{name}={raw!r}: {part!r} is not a Kubernetes label key=value; write e.g. "
                "release=kube-prometheus-stack (comma-separated for several)"
            )
        pairs.append((key, value))
    return tuple(pairs)


@dataclass(frozen=True)
class MonitoringSettings:
    """How the alerting rules and the dashboard of a ForecastTask are labelled, so that the
    Prometheus and the Grafana of the cluster pick them up."""

    rule_labels: tuple[tuple[str, str], ...] = (("release", "kube-prometheus-stack"),)
    """Labels of every PrometheusRule (and rules ConfigMap): what the Prometheus resource's
    ``ruleSelector`` matches. kube-prometheus-stack's default selector is ``release: <its Helm
    release>``, usually ``kube-prometheus-stack``. ``FORESIGHT_RULE_LABELS`` (``k=v,k=v``)."""
    dashboard_label: tuple[str, str] = ("grafana_dashboard", "1")
    """The label of a dashboard ConfigMap: the Grafana sidecar's default ``label`` / ``labelValue``
    in kube-prometheus-stack. ``FORESIGHT_DASHBOARD_LABEL`` (``k=v``)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> MonitoringSettings:
        dashboard = _labels(environ, "FORESIGHT_DASHBOARD_LABEL", (cls.dashboard_label,))
        if len(dashboard) != 1:
            raise SettingsError(
                f"FORESIGHT_DASHBOARD_LABEL={environ.get('FORESIGHT_DASHBOARD_LABEL')!r}: give exactly one "
                "key=value, the label your Grafana sidecar looks for (e.g. grafana_dashboard=1)"
            )
        return cls(
            rule_labels=_labels(environ, "FORESIGHT_RULE_LABELS", cls.rule_labels),
            dashboard_label=dashboard[0],
        )


@dataclass(frozen=True)
class OperatorSettings:
    """Everything the operator process is configured with."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to serve; empty together with ``all_namespaces`` = every namespace."""
    all_namespaces: bool = True
    """Serve every namespace (needs the ClusterRole); ``False`` serves ``namespaces`` only."""
    runtime_image: str = DEFAULT_RUNTIME_IMAGE
    """The image every runtime pod runs unless a resource overrides ``runtime.image``."""
    metrics_host: str = "0.0.0.0"
    """Address of the /metrics + /readyz server (tests use 127.0.0.1)."""
    metrics_port: int | None = 8080
    """Port of /metrics and /readyz; ``None`` = no metrics server."""
    liveness_endpoint: str | None = None
    """kopf's liveness endpoint URL (e.g. ``http://0.0.0.0:8081/healthz``); ``None`` = off."""
    log_format: str = "plain"
    """``plain``, ``full`` or ``json`` (one JSON object per line, for log collectors)."""
    operator_namespace: str | None = None
    """The operator's own namespace (reported in events)."""
    pod_name: str | None = None
    """The operator pod's name (the events' reporting instance)."""
    standalone: bool = True
    """No kopf peering: the Deployment runs one replica with the Recreate strategy."""
    degraded_after: int = 3
    """Temporary failures of one resource in a row before its ``Degraded`` condition turns True."""
    retry_delay: float = 10.0
    """Seconds before a temporary failure is retried (kopf adds its own jitter-free backoff)."""
    watch_server_timeout: float = 60.0
    """Seconds the API server keeps a watch open before kopf reconnects (a bookmarked re-watch)."""
    watch_client_timeout: float = 90.0
    """Client-side watch timeout: a watch silent for longer is assumed dead and reconnected."""
    request_timeout: float = 30.0
    """Timeout of every non-watch API request, in seconds."""
    handler_threads: int = 16
    """Threads that run handlers at once. Handlers spend their time waiting for the API server, so
    more threads than CPUs keep thousands of resources created at once from queueing behind a few
    (kopf's default is the CPU count + 4: 6 on 2 cores). ``FORESIGHT_HANDLER_THREADS``."""
    progress_interval: float = 15.0
    """Seconds between reads of a running training pod's progress (one short log tail each); an
    epoch usually takes longer, so status lags an epoch by at most this much."""
    experiment_time_scale: float = 1.0
    """Multiplies every ABExperiment duration (analysisInterval, step pauses, cooldown): 1 in
    production. Tests and demos run an experiment's hours in minutes with a smaller one (0.1 turns
    the 30 s minimum interval into 3 s). ``FORESIGHT_EXPERIMENT_TIME_SCALE``, in (0, 1]."""
    verbose: bool = False
    """Debug logging."""
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    """Labels of the ForecastTasks' PrometheusRules and dashboard ConfigMaps."""

    @property
    def scope(self) -> str:
        return "all namespaces" if self.all_namespaces else ", ".join(self.namespaces)

    @classmethod
    def from_sources(
        cls,
        environ: Mapping[str, str],
        *,
        namespaces: Sequence[str] = (),
        all_namespaces: bool | None = None,
        metrics_port: int | None = None,
        metrics_host: str | None = None,
        liveness: str | None = None,
        runtime_image: str | None = None,
        verbose: bool = False,
    ) -> OperatorSettings:
        """Flags (keyword arguments; ``None`` = not given) override the ``FORESIGHT_*`` environment.

        ``FORESIGHT_NAMESPACE_SCOPE`` is ``all`` or a comma-separated list of namespaces.
        """
        scope = environ.get("FORESIGHT_NAMESPACE_SCOPE", "").strip()
        ns: tuple[str, ...] = tuple(namespaces)
        if all_namespaces and ns:
            raise SettingsError("give either --all-namespaces or --namespace, not both")
        if not ns and not all_namespaces and scope and scope != "all":
            ns = tuple(part.strip() for part in scope.split(",") if part.strip())
        every = not ns
        port = metrics_port if metrics_port is not None else _int(environ, "FORESIGHT_METRICS_PORT", 8080)
        if port is not None and port <= 0:
            port = None  # 0 or negative switches the server off
        log_format = environ.get("FORESIGHT_LOG_FORMAT", "plain").strip() or "plain"
        if log_format not in ("plain", "full", "json"):
            raise SettingsError(f"FORESIGHT_LOG_FORMAT={log_format!r}: use plain, full or json")
        degraded = _int(environ, "FORESIGHT_DEGRADED_AFTER", 3)
        time_scale = _float(environ, "FORESIGHT_EXPERIMENT_TIME_SCALE", 1.0)
        if not 0 < time_scale <= 1:
            raise SettingsError(
                f"FORESIGHT_EXPERIMENT_TIME_SCALE={time_scale}: give a number in (0, 1] (1 in production; "
                "0.1 runs experiments 10x faster for tests and demos)"
            )
        return cls(
            namespaces=ns,
            all_namespaces=every,
            runtime_image=runtime_image or environ.get("FORESIGHT_RUNTIME_IMAGE") or DEFAULT_RUNTIME_IMAGE,
            metrics_host=metrics_host or environ.get("FORESIGHT_METRICS_HOST") or "0.0.0.0",
            metrics_port=port,
            liveness_endpoint=liveness or environ.get("FORESIGHT_LIVENESS_ENDPOINT") or None,
            log_format=log_format,
            operator_namespace=environ.get("FORESIGHT_OPERATOR_NAMESPACE") or None,
            pod_name=environ.get("FORESIGHT_POD_NAME") or None,
            degraded_after=degraded if degraded is not None else 3,
            retry_delay=_float(environ, "FORESIGHT_RETRY_DELAY", 10.0),
            watch_server_timeout=_float(environ, "FORESIGHT_WATCH_SERVER_TIMEOUT", 60.0),
            watch_client_timeout=_float(environ, "FORESIGHT_WATCH_CLIENT_TIMEOUT", 90.0),
            request_timeout=_float(environ, "FORESIGHT_REQUEST_TIMEOUT", 30.0),
            handler_threads=max(1, _int(environ, "FORESIGHT_HANDLER_THREADS", 16) or 16),
            progress_interval=_float(environ, "FORESIGHT_PROGRESS_INTERVAL", 15.0),
            experiment_time_scale=time_scale,
            verbose=verbose,
            monitoring=MonitoringSettings.from_environ(environ),
        )
