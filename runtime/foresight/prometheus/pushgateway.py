"""Publishing forecast gauges: push to a Pushgateway, or serve them for scraping.

``push`` is an HTTP PUT that replaces the whole group (``job`` + grouping key, e.g.
``{namespace, task}``) at :func:`foresight.contract.pushgateway.group_url`, the URL the operator
deletes when the task goes: readers see either the previous run's gauges or this run's, never a
half-written mix, and series that disappeared from the forecast disappear from the gateway.
``delete_group`` removes a group (the operator does the same with one DELETE); ``list_groups``
reads the grouping keys the gateway holds (its ``/api/v1/metrics``), so that a sharded run can
delete the groups no shard of it replaces.
Connection errors and 5xx are retried with exponential backoff; 4xx raise
:class:`PushgatewayError` at once. Credentials are sent as a header and never logged.

``serve_registry`` serves a registry on ``127.0.0.1:<port>`` by ``prometheus_client``'s HTTP
server, stoppable; ``serve_app`` serves any WSGI app the same way (threaded, quiet), which is how
``foresight serve forecasts`` (:mod:`foresight.forecast.scrape`) serves a scrape-mode task.
"""

from __future__ import annotations

import logging
import threading
import time as _time
import urllib.error
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import WSGIApplication

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.exposition import ThreadingWSGIServer, basic_auth_handler, default_handler

from foresight.contract.forecast import PUSHGATEWAY_JOB
from foresight.contract.pushgateway import group_url

from .client import RetryPolicy, call_with_retries
from .errors import PrometheusUnavailable, PushgatewayError

__all__ = ["MetricsServer", "delete_group", "list_groups", "push", "serve_app", "serve_registry"]

log = logging.getLogger(__name__)

Handler = Callable[[str, str, float | None, Sequence[tuple[str, str]], bytes], Callable[[], None]]


def _handler(bearer_token: str | None, basic_auth: tuple[str, str] | None) -> Handler:
    def handler(
        url: str, method: str, timeout: float | None, headers: Sequence[tuple[str, str]], data: bytes
    ) -> Callable[[], None]:
        if basic_auth is not None:
            return basic_auth_handler(url, method, timeout, list(headers), data, basic_auth[0], basic_auth[1])
        extra = [("Authorization", f"Bearer {bearer_token}")] if bearer_token else []
        return default_handler(url, method, timeout, [*headers, *extra], data)

    return handler


def _send(handler: Handler, url: str, method: str, timeout: float, data: bytes) -> None:
    # prometheus_client's handlers take the URL as it is: the contract's group_url is the one URL.
    handler(url, method, timeout, [("Content-Type", CONTENT_TYPE_LATEST)], data)()


def _once(gateway_url: str, what: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")[:500] if exc.fp is not None else ""
        if exc.code >= 500:
            raise PrometheusUnavailable(gateway_url, f"{what}: HTTP {exc.code} {body}".strip()) from exc
        raise PushgatewayError(gateway_url, exc.code, body or str(exc.reason)) from exc
    except (OSError, TimeoutError) as exc:  # URLError, refused, reset, timeout
        reason = getattr(exc, "reason", exc)
        raise PrometheusUnavailable(gateway_url, f"{what}: {reason}") from exc


def push(
    gateway_url: str,
    registry: CollectorRegistry,
    *,
    job: str = PUSHGATEWAY_JOB,
    grouping_key: Mapping[str, str],
    timeout: float = 10.0,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = _time.sleep,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> None:
    """Replace the group ``job`` + ``grouping_key`` on the Pushgateway with ``registry``'s metrics.

    Raises:
        PrometheusUnavailable: after the retries, when the gateway is unreachable or answers 5xx.
        PushgatewayError: the gateway refused the push (4xx), with its message.
    """
    handler = _handler(bearer_token, basic_auth)
    url = group_url(gateway_url, job=job, grouping_key=grouping_key)
    data = generate_latest(registry)
    call_with_retries(
        lambda: _once(gateway_url, "push", lambda: _send(handler, url, "PUT", timeout, data)),
        retry if retry is not None else RetryPolicy(),
        sleep,
        f"push to {gateway_url}",
    )
    log.info("pushed job=%s group=%s to %s", job, dict(grouping_key), gateway_url)


def delete_group(
    gateway_url: str,
    *,
    job: str = PUSHGATEWAY_JOB,
    grouping_key: Mapping[str, str],
    timeout: float = 10.0,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = _time.sleep,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> None:
    """Delete the group ``job`` + ``grouping_key`` (e.g. when its ForecastTask is deleted).

    Deleting a group that does not exist succeeds (the gateway answers 202 either way).
    """
    handler = _handler(bearer_token, basic_auth)
    url = group_url(gateway_url, job=job, grouping_key=grouping_key)
    call_with_retries(
        lambda: _once(gateway_url, "delete", lambda: _send(handler, url, "DELETE", timeout, b"")),
        retry if retry is not None else RetryPolicy(),
        sleep,
        f"delete from {gateway_url}",
    )
    log.info("deleted job=%s group=%s from %s", job, dict(grouping_key), gateway_url)


def list_groups(
    gateway_url: str,
    *,
    timeout: float = 10.0,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = _time.sleep,
    bearer_token: str | None = None,
) -> list[dict[str, str]]:
    """The grouping keys (``job`` included) of every group the Pushgateway holds."""
    import requests

    url = group_url(gateway_url, job="x", grouping_key={}).split("/metrics/", 1)[0] + "/api/v1/metrics"
    headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}

    def once() -> list[dict[str, str]]:
        try:
            resp = requests.get(url, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            raise PrometheusUnavailable(gateway_url, f"list groups: {type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 500:
            raise PrometheusUnavailable(gateway_url, f"list groups: HTTP {resp.status_code}")
        if resp.status_code >= 300:
            raise PushgatewayError(gateway_url, resp.status_code, resp.text[:500])
        try:
            data = resp.json()["data"]
            return [{str(k): str(v) for k, v in (g.get("labels") or {}).items()} for g in data]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PushgatewayError(gateway_url, resp.status_code, f"not a group list: {exc}") from exc

    return call_with_retries(once, retry if retry is not None else RetryPolicy(), sleep,
                             f"list groups of {gateway_url}")  # fmt: skip


@dataclass
class MetricsServer:
    """A running scrape endpoint; :meth:`stop` shuts it down and frees the port."""

    server: WSGIServer
    thread: threading.Thread
    port: int
    addr: str

    @property
    def url(self) -> str:
        return f"http://{self.addr}:{self.port}/metrics"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_registry(registry: CollectorRegistry, port: int = 0, addr: str = "127.0.0.1") -> MetricsServer:
    """Serve ``registry`` at ``http://addr:port/metrics`` (``port=0``: a free port) in a thread."""
    result: Any = start_http_server(port, addr=addr, registry=registry)
    server, thread = result
    return MetricsServer(server=server, thread=thread, port=int(server.server_port), addr=addr)


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request (Prometheus scrapes every few seconds)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_app(app: WSGIApplication, port: int = 0, addr: str = "127.0.0.1") -> MetricsServer:
    """Serve a WSGI ``app`` at ``http://addr:port/`` (``port=0``: a free port), a thread per request."""
    server = make_server(addr, port, app, server_class=ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name=f"http-{addr}:{port}", daemon=True)
    thread.start()
    return MetricsServer(server=server, thread=thread, port=int(server.server_port), addr=addr)
