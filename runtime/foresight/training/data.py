"""Turning a dataset into something a task can read.

``file:///path`` and plain paths are used in place (a PVC mount in a pod, a directory in local
mode); ``s3://bucket/key`` is downloaded through ``foresight.artifacts`` into a work directory
(a single object, or every object under a prefix for a folder of images). A PromQL dataset is
read from Prometheus into a :class:`~foresight.timeseries.Panel` by the forecast ingestion
(:func:`foresight.forecast.ingest.ingest`), its errors turned into training reasons.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .config import PromQLDatasetConfig
from .errors import DatasetError, PrometheusUnavailableError, PromQLDatasetError, TrainingConfigError

if TYPE_CHECKING:
    from foresight.timeseries import Panel

__all__ = ["load_promql_panel", "resolve_dataset"]


def resolve_dataset(uri: str, workdir: Path, s3: Any | None = None) -> Path:
    """A local path holding the dataset at ``uri``; raises :class:`DatasetError` when it is absent."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme else uri)
        if not path.exists():
            raise DatasetError(f"dataset {uri} does not exist: check dataset.uri and the volume mount")
        return path
    if parsed.scheme != "s3":
        raise TrainingConfigError(
            f"unsupported dataset URI {uri!r}: use a path, file:///path or s3://bucket/key"
        )
    try:
        from foresight import artifacts
    except ImportError as exc:
        raise TrainingConfigError(f"{uri}: s3:// datasets need foresight.artifacts (foresight[s3])") from exc
    store = artifacts.open_store(f"s3://{parsed.netloc}", s3=s3)
    key = parsed.path.lstrip("/")
    target = workdir / "dataset" / (Path(key).name or "data")
    try:
        if store.exists(key):
            store.get_file(key, target)
        else:
            # A prefix: download every object under it (a folder of labelled images).
            prefix = key.rstrip("/") + "/"
            listed = store.list(prefix)
            if not listed:
                raise DatasetError(f"dataset {uri} not found: no object or prefix with that key")
            for info in listed:
                store.get_file(info.key, target / info.key[len(prefix) :])
    except (DatasetError, artifacts.AccessDeniedError):
        # Credentials are the job's to report (reason BadCredentials, see training.job), not a
        # missing dataset.
        raise
    except Exception as exc:
        # Artifact errors already say what to do (credentials, bucket); keep them attached.
        raise DatasetError(f"cannot fetch dataset {uri}: {exc}") from exc
    return target


def load_promql_panel(cfg: PromQLDatasetConfig, *, end: float) -> Panel:
    """The panel of ``cfg.query`` over ``[end - lookback, end]`` at ``cfg.step``.

    Raises :class:`PromQLDatasetError` (Prometheus rejected the query, with its own message),
    :class:`PrometheusUnavailableError` (unreachable or 5xx after retries: retryable),
    :class:`DatasetError` (no series, too little history, too many series) and
    :class:`TrainingConfigError` (a bad duration, an answer that is not Prometheus', duplicate
    series with ``aggregation: none``).
    """
    from foresight.forecast.ingest import load_panel
    from foresight.forecast.pipeline import go_duration_seconds
    from foresight.prometheus.client import PrometheusClient
    from foresight.prometheus.errors import (
        IngestionError,
        PrometheusResponseError,
        PrometheusUnavailable,
        PromQLError,
    )

    try:
        step = go_duration_seconds(cfg.step)
        lookback = go_duration_seconds(cfg.lookback)
    except ValueError as exc:
        raise TrainingConfigError(f"dataset.promql: {exc}") from exc
    if step <= 0 or lookback < step:
        raise TrainingConfigError(
            f"dataset.promql: step {cfg.step} must be positive and lookback {cfg.lookback} at least one "
            "step: lengthen the lookback or shorten the step"
        )
    prom = PrometheusClient(cfg.url)
    try:
        return load_panel(
            prom,
            cfg.query,
            start=end - lookback,
            end=end,
            step=step,
            group_by=cfg.group_by,
            aggregate=cfg.aggregation,
            max_series=cfg.max_series,
        )
    except PromQLError as exc:
        raise PromQLDatasetError(
            f"{exc}; fix dataset.promql.query (run it in the Prometheus UI at {cfg.url} to check)"
        ) from exc
    except PrometheusUnavailable as exc:
        raise PrometheusUnavailableError(f"dataset.promql.url: {exc}") from exc
    except PrometheusResponseError as exc:
        raise TrainingConfigError(
            f"dataset.promql.url {cfg.url} does not answer as Prometheus' HTTP API does (HTTP "
            f"{exc.status}: {exc.detail}): point it at Prometheus' base URL, without /api/v1, one "
            "that needs no authentication"
        ) from exc
    except IngestionError as exc:
        raise DatasetError(str(exc)) from exc
    except ValueError as exc:  # aggregation none with series sharing the groupBy labels
        raise TrainingConfigError(f"dataset.promql: {exc}") from exc
