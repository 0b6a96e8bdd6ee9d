"""An ABExperiment's counters from Prometheus: instant queries in, an Observation out.

The queries and their meaning are :mod:`foresight.experiment.readout`'s; this module does the HTTP
through :class:`foresight.prometheus.client.PrometheusClient` (torch-free: requests and numpy) and
maps its errors onto the experiment's condition reasons: a query Prometheus refuses is
``PromQLError`` with Prometheus' message and the query (fix the spec's counters or selector); an
unreachable server is ``PrometheusUnavailable`` (retried at the next tick). No data is not an
error here: the decision policy's ``noData`` rule handles it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from foresight.api.abexperiment import ABExperimentSpec, ExperimentReason
from foresight.api.meta import Reason
from foresight.experiment.counters import Matcher, MetricSource
from foresight.experiment.readout import PlannedQuery, observation, plan_queries, vector
from foresight.experiment.state import Observation
from foresight.kube import SECRETS
from foresight.prometheus.client import InstantSample, PrometheusClient, RetryPolicy
from foresight.prometheus.errors import PrometheusError, PromQLError

from ...reconcile import WaitError
from ..context import HandlerContext

__all__ = ["InstantQueries", "PrometheusFactory", "bearer_token", "prometheus_http", "read_observation"]


class InstantQueries(Protocol):
    def query(self, expr: str, time: float | None = None) -> list[InstantSample]: ...


PrometheusFactory = Callable[[str, str | None], InstantQueries]
"""``(url, bearer token or None) -> client``."""

QUERY_TIMEOUT = 10.0


def prometheus_http(url: str, token: str | None) -> InstantQueries:
    """The real client: short timeout, one retry (the next tick retries again)."""
    return PrometheusClient(url, bearer_token=token, timeout=QUERY_TIMEOUT, retry=RetryPolicy(attempts=2))


def bearer_token(ctx: HandlerContext, namespace: str, spec: ABExperimentSpec) -> str | None:
    """The token of ``spec.prometheus.bearerTokenSecret`` (kept in memory only), or None."""
    ref = spec.prometheus.bearer_token_secret
    if ref is None:
        return None
    secret = ctx.kube.get(SECRETS, ref.name, namespace)
    raw = ((secret or {}).get("data") or {}).get(ref.key)
    if not raw:
        raise WaitError(
            f"Secret {namespace}/{ref.name} (key {ref.key}) of spec.prometheus.bearerTokenSecret not found: "
            f"kubectl -n {namespace} create secret generic {ref.name} --from-literal={ref.key}=<token>",
            reason=Reason.SECRET_NOT_FOUND,
            delay=max(ctx.settings.retry_delay, 5.0),
        )
    return base64.b64decode(raw).decode().strip()


def _ask(client: InstantQueries, q: PlannedQuery, at: float, url: str) -> dict[str, float]:
    try:
        samples = client.query(q.promql, time=at)
    except PromQLError as exc:
        what = "the classify requests per variant" if q.metric.startswith("__") else f"metric {q.metric}"
        raise WaitError(
            f"Prometheus at {url} refused the query of {what} ({q.part}): {exc.message}. Query: {q.promql}. "
            "Fix that metric's counters or matchers, or spec.prometheus.selector",
            reason=ExperimentReason.PROMQL_ERROR,
        ) from exc
    except PrometheusError as exc:
        raise WaitError(str(exc), reason=ExperimentReason.PROMETHEUS_UNAVAILABLE) from exc
    return vector(((s.labels, s.value) for s in samples), buckets=q.part == "buckets")


def read_observation(
    client: InstantQueries,
    url: str,
    sources: dict[str, MetricSource],
    selector: tuple[Matcher, ...],
    started_at: datetime,
    now: datetime,
) -> Observation:
    """The cumulative aggregates since ``started_at``, read at ``now``."""
    seconds = max(1.0, (now - started_at).total_seconds())
    answers = {
        (q.metric, q.part): _ask(client, q, now.timestamp(), url)
        for q in plan_queries(sources, selector, seconds)
    }
    return observation(sources, answers)
