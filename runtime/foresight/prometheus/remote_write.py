"""Opt-in remote write of a forecast *trajectory* with future timestamps.

WARNING (measured, see FACTS.md): future-timestamped samples break a default Prometheus. The
write is accepted (204), but the head's max time jumps ahead and every normal scrape and sample
after it is rejected as "out of bounds" until real time catches up. A receiving Prometheus needs
``--web.enable-remote-write-receiver`` and ``storage.tsdb.out_of_order_time_window`` (e.g.
``30d``) in prometheus.yml (2.42 supports it); newer Prometheus versions reject samples more
than 10 minutes ahead regardless. So this is off by default: the safe path is the gauges at now
in :mod:`foresight.forecast.writeback`.

Each series gets ``foresight_forecast_trajectory{<series labels>, task, namespace,
bound="point"|"lower"|"upper"}`` with one sample per horizon step at ``origin + h * step``
(non-finite values are skipped). The request is a protobuf ``WriteRequest`` (``remote_pb2``)
compressed with snappy block format (``cramjam``), with the remote-write 0.1.0 headers.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable

import cramjam
import numpy as np
import requests
from remote_pb2.remote_pb2 import WriteRequest

from foresight.timeseries import Forecast

from .client import RetryPolicy, call_with_retries
from .errors import PrometheusUnavailable, RemoteWriteError
from .labels import series_labels

__all__ = ["HEADERS", "TRAJECTORY_METRIC", "encode", "remote_write", "send", "trajectory_request"]

log = logging.getLogger(__name__)

TRAJECTORY_METRIC = "foresight_forecast_trajectory"
HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def trajectory_request(forecast: Forecast, *, task: str, namespace: str) -> WriteRequest:
    """A ``WriteRequest`` holding the forecast's point / lower / upper paths at future times."""
    req = WriteRequest()
    times_ms = (forecast.origin + forecast.step * np.arange(1, forecast.horizon + 1, dtype=np.int64)) * 1000
    for i, key in enumerate(forecast.keys):
        base = {**series_labels(key), "task": task, "namespace": namespace, "__name__": TRAJECTORY_METRIC}
        for bound, path in (("point", forecast.point), ("lower", forecast.lower), ("upper", forecast.upper)):
            ts = req.timeseries.add()
            # Remote write requires labels sorted by name.
            for name, value in sorted({**base, "bound": bound}.items()):
                if value != "":
                    ts.labels.add(name=name, value=value)
            for t, v in zip(times_ms, path[i], strict=True):
                if np.isfinite(v):
                    ts.samples.add(value=float(v), timestamp=int(t))
    return req


def encode(req: WriteRequest) -> bytes:
    """Protobuf bytes, snappy block-compressed as remote write requires."""
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


def send(
    url: str,
    payload: bytes,
    *,
    session: requests.Session | None = None,
    timeout: float = 10.0,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = _time.sleep,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> None:
    """POST an encoded ``WriteRequest`` to a remote-write ``url`` (``.../api/v1/write``)."""
    sess = session if session is not None else requests.Session()
    headers = dict(HEADERS)
    if bearer_token:
        headers["Authorization"] = f"Bearer {bearer_token}"

    def once() -> None:
        try:
            resp = sess.post(url, data=payload, headers=headers, auth=basic_auth, timeout=timeout)
        except requests.RequestException as exc:
            raise PrometheusUnavailable(url, f"remote write failed: {type(exc).__name__}") from exc
        if resp.status_code >= 500 or resp.status_code == 429:
            raise PrometheusUnavailable(url, f"HTTP {resp.status_code}: {resp.text[:300]}")
        if resp.status_code >= 400:
            raise RemoteWriteError(url, resp.status_code, resp.text[:500].strip())

    call_with_retries(once, retry if retry is not None else RetryPolicy(), sleep, f"remote write to {url}")


def remote_write(
    url: str,
    forecast: Forecast,
    *,
    task: str,
    namespace: str,
    session: requests.Session | None = None,
    timeout: float = 10.0,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = _time.sleep,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> int:
    """Write the forecast trajectory to ``url``; returns the number of samples sent."""
    req = trajectory_request(forecast, task=task, namespace=namespace)
    n = sum(len(ts.samples) for ts in req.timeseries)
    send(
        url,
        encode(req),
        session=session,
        timeout=timeout,
        retry=retry,
        sleep=sleep,
        bearer_token=bearer_token,
        basic_auth=basic_auth,
    )
    log.info("remote-wrote %d trajectory samples for %s/%s to %s", n, namespace, task, url)
    return n
