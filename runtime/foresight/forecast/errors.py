"""How a ForecastTask run reports what went wrong: the one table from error type to condition.

A run never raises (:func:`foresight.forecast.pipeline.run_forecast_task`): whatever stops it
becomes a ``Failed`` result whose reason is a :class:`~foresight.api.forecasttask.ForecastReason`
and whose ``retryable`` tells the operator whether running again later can help. :data:`FAILURES`
is that mapping, and the only place it is written. An error is looked up by its class, then its
base classes in order, so the most specific row wins (a :class:`NoSeriesError` is also a
:class:`PrometheusError`, and reports ``NoSeries``).

The errors a run raises itself (not Prometheus', not the artifact store's) are defined here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from foresight.api.forecasttask import ForecastReason
from foresight.artifacts import ArtifactError
from foresight.prometheus.errors import (
    DuplicateSeriesError,
    InsufficientHistoryError,
    NoSeriesError,
    PrometheusError,
    PrometheusResponseError,
    PrometheusUnavailable,
    PromQLError,
    PushgatewayError,
    PushgatewayUnavailable,
    TooManySeriesError,
)

__all__ = [
    "FAILURES",
    "BacktestHistoryError",
    "Failure",
    "ForecastRunError",
    "OutputTooLargeError",
    "ReadBudgetError",
    "TrainingDiverged",
    "describe_failure",
    "failure_of",
]


class ForecastRunError(Exception):
    """The run cannot go on as the task asks; the message says what to change. Permanent."""


class TrainingDiverged(ForecastRunError):
    """A network's loss became non-finite or exploded: its forecasts would be garbage (``auto``
    drops such a candidate; a task with that one model fails with what to change)."""


class BacktestHistoryError(ForecastRunError):
    """Too little history for the backtest folds of the horizon the task asks for."""


class OutputTooLargeError(ForecastRunError):
    """The task's forecasts are too many for its output mode (the message says what to do)."""


class ReadBudgetError(ForecastRunError):
    """The history cannot be read within ``source.readBudget`` (the message says what to do)."""


class Failure(NamedTuple):
    """How one kind of error is reported."""

    reason: ForecastReason
    retryable: bool | None
    """``None``: as the error itself says (:attr:`PrometheusError.temporary`,
    :attr:`ArtifactError.retryable`)."""
    message: str = "{error}"
    """The condition message: ``{error}`` is the error's text, ``{type}`` its class name and
    ``{step}`` the step of the run that failed."""
    unexpected: bool = False
    """A bug or an environment problem rather than bad input or an outage: logged with its
    traceback."""


_R = ForecastReason

# fmt: off
FAILURES: Mapping[type[Exception], Failure] = MappingProxyType({
    # error                           reason                      retryable  message ("{error}")
    ForecastRunError:         Failure(_R.RUN_FAILED,              False),
    BacktestHistoryError:     Failure(_R.INSUFFICIENT_HISTORY,    False),
    OutputTooLargeError:      Failure(_R.OUTPUT_TOO_LARGE,        False),
    ReadBudgetError:          Failure(_R.READ_BUDGET_EXCEEDED,    False),
    # reading the history: bad input
    PromQLError:              Failure(_R.PROMQL_ERROR,            False),
    NoSeriesError:            Failure(_R.NO_SERIES,               False),
    DuplicateSeriesError:     Failure(_R.DUPLICATE_SERIES,        False),
    InsufficientHistoryError: Failure(_R.INSUFFICIENT_HISTORY,    False),
    TooManySeriesError:       Failure(_R.TOO_MANY_SERIES,         False),
    # servers down or answering nonsense
    PushgatewayUnavailable:   Failure(_R.PUSHGATEWAY_UNAVAILABLE, True),
    PrometheusUnavailable:    Failure(_R.PROMETHEUS_UNAVAILABLE,  True),
    PushgatewayError:         Failure(_R.PUSHGATEWAY_UNAVAILABLE, False),
    PrometheusResponseError:  Failure(_R.PROMETHEUS_UNAVAILABLE,  False),
    PrometheusError:          Failure(_R.RUN_FAILED,              None),
    ArtifactError:            Failure(_R.RUN_FAILED,              None,      "artifact store: {error}"),
    # anything else
    Exception:                Failure(_R.RUN_FAILED,              False,     "{step} failed: {type}: {error}",
                                      unexpected=True),
})
# fmt: on


def failure_of(exc: Exception) -> Failure:
    """The row of :data:`FAILURES` for ``exc``: its class's, else its nearest base class's."""
    for cls in type(exc).__mro__:
        if cls in FAILURES:
            return FAILURES[cls]
    raise AssertionError("unreachable: FAILURES has a row for Exception")


def describe_failure(exc: Exception, step: str) -> tuple[ForecastReason, bool, str]:
    """``(reason, retryable, message)`` of a run that ``exc`` stopped during ``step``."""
    failure = failure_of(exc)
    retryable = failure.retryable if failure.retryable is not None else _says_retryable(exc)
    return failure.reason, retryable, failure.message.format(error=exc, type=type(exc).__name__, step=step)


def _says_retryable(exc: Exception) -> bool:
    if isinstance(exc, PrometheusError):
        return exc.temporary
    if isinstance(exc, ArtifactError):
        return exc.retryable
    return False
