"""The ForecastTask gauges on the operator's ``/metrics``: the run queue, run state, last results.

Fed the status each reconcile wrote (:meth:`ForecastTaskMetrics.record`), so dashboards and alerts
see what ``kubectl get`` sees without calling the Kubernetes API.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Mapping
from typing import Any

from foresight.api.forecasttask import ForecastPhase
from prometheus_client import Gauge

from ...reconcile import parse_time

__all__ = ["ForecastTaskMetrics"]


class ForecastTaskMetrics:
    """The scheduled-runs queue, run state and last results per task, in the operator's registry.

    Every series of a task is removed when the task is deleted (``record(..., None, 0)``); a
    model that leaves ``status.backtest`` loses its backtest series.
    """

    def __init__(self, registry: Any) -> None:
        labels = ["namespace", "name"]
        self.queued = Gauge(
            "foresight_forecasttask_runs_queued",
            "Runs of a ForecastTask that are due and not started yet (the scheduled-runs queue).",
            labels,
            registry=registry,
        )
        self.next_run = Gauge(
            "foresight_forecasttask_next_run_timestamp_seconds",
            "When the next run of a ForecastTask is due (Unix seconds; absent when none is scheduled).",
            labels,
            registry=registry,
        )
        self.active = Gauge(
            "foresight_forecasttask_run_active",
            "1 while a run of the ForecastTask is under way, by run kind (train, predict).",
            [*labels, "kind"],
            registry=registry,
        )
        self.failures = Gauge(
            "foresight_forecasttask_consecutive_failures",
            "Failed runs of a ForecastTask since its last success.",
            labels,
            registry=registry,
        )
        self.series = Gauge(
            "foresight_forecasttask_series",
            "Series forecast by the last run of a ForecastTask.",
            labels,
            registry=registry,
        )
        self.last_predict = Gauge(
            "foresight_forecasttask_last_predict_timestamp_seconds",
            "End of the last successful prediction of a ForecastTask (Unix seconds).",
            labels,
            registry=registry,
        )
        self.last_train = Gauge(
            "foresight_forecasttask_last_train_timestamp_seconds",
            "End of the last successful training run of a ForecastTask (Unix seconds).",
            labels,
            registry=registry,
        )
        self.backtest = Gauge(
            "foresight_forecasttask_backtest_error",
            "Backtest error of each model of a ForecastTask's last training run (status.backtest), by "
            "metric: mase (mean absolute scaled error, season 1 day) and mae (mean absolute error).",
            [*labels, "model", "metric"],
            registry=registry,
        )
        self._backtest_keys: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._lock = threading.Lock()

    def _record_backtest(self, namespace: str, name: str, rows: Any) -> None:
        want: dict[tuple[str, str], float] = {}
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, Mapping) or not row.get("model"):
                continue
            for metric in ("mase", "mae"):
                value = row.get(metric)
                if isinstance(value, int | float) and math.isfinite(value):
                    want[(str(row["model"]), metric)] = float(value)
        for model, metric in self._backtest_keys.get((namespace, name), set()) - want.keys():
            with contextlib.suppress(KeyError):
                self.backtest.remove(namespace, name, model, metric)
        for (model, metric), value in want.items():
            self.backtest.labels(namespace, name, model, metric).set(value)
        if want:
            self._backtest_keys[(namespace, name)] = set(want)
        else:
            self._backtest_keys.pop((namespace, name), None)

    def record(self, namespace: str, name: str, status: Mapping[str, Any] | None, queued: int) -> None:
        with self._lock:
            if status is None:
                gauges = (self.queued, self.next_run, self.failures, self.series, self.last_predict,
                          self.last_train)  # fmt: skip
                for gauge in gauges:
                    with contextlib.suppress(KeyError):  # never recorded
                        gauge.remove(namespace, name)
                for kind in ("train", "predict"):
                    with contextlib.suppress(KeyError):
                        self.active.remove(namespace, name, kind)
                self._record_backtest(namespace, name, [])
                return
            self.queued.labels(namespace, name).set(queued)
            nxt = parse_time(status.get("nextRunTime"))
            if nxt is not None:
                self.next_run.labels(namespace, name).set(nxt.timestamp())
            else:
                with contextlib.suppress(KeyError):
                    self.next_run.remove(namespace, name)
            phase = status.get("phase")
            self.active.labels(namespace, name, "train").set(1 if phase == ForecastPhase.TRAINING else 0)
            self.active.labels(namespace, name, "predict").set(1 if phase == ForecastPhase.PREDICTING else 0)
            self.failures.labels(namespace, name).set(int(status.get("consecutiveFailures") or 0))
            if status.get("seriesCount") is not None:
                self.series.labels(namespace, name).set(int(status["seriesCount"]))
            last = parse_time(status.get("lastPredictTime"))
            if last is not None:
                self.last_predict.labels(namespace, name).set(last.timestamp())
            trained = parse_time(status.get("lastTrainTime"))
            if trained is not None:
                self.last_train.labels(namespace, name).set(trained.timestamp())
            self._record_backtest(namespace, name, status.get("backtest"))
