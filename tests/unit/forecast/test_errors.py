"""The one table from what stops a ForecastTask run to the condition it reports: every row.

Each case is an error a run can meet; together they must hit every row of ``FAILURES``, so a row
added without a case here fails the last test.
"""

from __future__ import annotations

import pytest
from foresight.artifacts import ArtifactError, ArtifactNotFoundError, StoreUnavailableError
from foresight.forecast.errors import (
    FAILURES,
    BacktestHistoryError,
    ForecastRunError,
    OutputTooLargeError,
    ReadBudgetError,
    describe_failure,
    failure_of,
)
from foresight.prometheus.errors import (
    DuplicateSeriesError,
    IngestionError,
    InsufficientHistoryError,
    NoSeriesError,
    PrometheusError,
    PrometheusResponseError,
    PrometheusUnavailable,
    PromQLError,
    PushgatewayError,
    PushgatewayUnavailable,
    RemoteWriteError,
    TooManySeriesError,
)


class _TemporaryPrometheusError(PrometheusError):
    temporary = True


CASES: list[tuple[Exception, type[Exception], str, bool, str]] = [
    # (error, the row it must hit, reason, retryable, message: "{error}" is the error's text)
    (ForecastRunError("output.horizons entry '90m' ..."), ForecastRunError, "RunFailed", False, "{error}"),
    (BacktestHistoryError("20 steps are too few"), BacktestHistoryError, "InsufficientHistory", False,
     "{error}"),
    (OutputTooLargeError("output.mode pushgateway refused"), OutputTooLargeError, "OutputTooLarge", False,
     "{error}"),
    (ReadBudgetError("the forecast series ... merges"), ReadBudgetError, "ReadBudgetExceeded", False,
     "{error}"),
    (PromQLError("sum(up", "parse error"), PromQLError, "PromQLError", False, "{error}"),
    (NoSeriesError("up", 0, 3600, 60), NoSeriesError, "NoSeries", False, "{error}"),
    (DuplicateSeriesError("up", {"user": "a"}, 2, ["user"], "aggregation is none"), DuplicateSeriesError,
     "DuplicateSeries", False, "{error}"),
    (InsufficientHistoryError("up", 3, 1, 5), InsufficientHistoryError, "InsufficientHistory", False,
     "{error}"),
    (TooManySeriesError("up", 20, 10, ["user"]), TooManySeriesError, "TooManySeries", False, "{error}"),
    (PushgatewayUnavailable("http://gw:9091", "refused", attempts=4), PushgatewayUnavailable,
     "PushgatewayUnavailable", True, "{error}"),
    (PrometheusUnavailable("http://prom:9090", "refused"), PrometheusUnavailable, "PrometheusUnavailable",
     True, "{error}"),
    (PushgatewayError("http://gw:9091", 400, "inconsistent labels"), PushgatewayError,
     "PushgatewayUnavailable", False, "{error}"),
    (PrometheusResponseError("http://prom:9090", 401, "unauthorized"), PrometheusResponseError,
     "PrometheusUnavailable", False, "{error}"),
    # PrometheusError's row: retryable as the error itself says.
    (RemoteWriteError("http://rw/api/v1/write", 400, "out of bounds"), PrometheusError, "RunFailed", False,
     "{error}"),
    (IngestionError("the result cannot become a panel"), PrometheusError, "RunFailed", False, "{error}"),
    (_TemporaryPrometheusError("try later"), PrometheusError, "RunFailed", True, "{error}"),
    # ArtifactError's row: retryable as the error says, the message names the store.
    (ArtifactNotFoundError("file:///models/x"), ArtifactError, "RunFailed", False, "artifact store: {error}"),
    (StoreUnavailableError("minio:9000", "connection refused"), ArtifactError, "RunFailed", True,
     "artifact store: {error}"),
    # Anything else: a bug or an environment problem, named with the step it happened in.
    (ValueError("operands could not be broadcast"), Exception, "RunFailed", False,
     "predict failed: ValueError: {error}"),
    (KeyError("trainedAt"), Exception, "RunFailed", False, "predict failed: KeyError: {error}"),
]  # fmt: skip


@pytest.mark.parametrize(("error", "row", "reason", "retryable", "message"), CASES,
                         ids=[type(c[0]).__name__ for c in CASES])  # fmt: skip
def test_each_error_reports_its_rows_reason_and_retryability(
    error: Exception, row: type[Exception], reason: str, retryable: bool, message: str
) -> None:
    assert failure_of(error) is FAILURES[row]
    assert describe_failure(error, "predict") == (reason, retryable, message.format(error=error))


def test_only_the_catch_all_row_is_unexpected() -> None:
    assert [cls for cls, f in FAILURES.items() if f.unexpected] == [Exception]


def test_every_row_of_the_table_has_a_case() -> None:
    assert {row for _, row, *_ in CASES} == set(FAILURES)
