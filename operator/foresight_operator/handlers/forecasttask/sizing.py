"""Whether a task's output fits its output mode, before its next run starts.

:func:`foresight.api.output_size.check_output_size` on the best estimate of the task's series:
the last sharded run's plan (``status.shards.series``), else the last run's ``seriesCount``, else
``limits.maxSeries`` (nothing has run yet: the most the task allows). ``refuse`` stops the task
(``Ready=False``, reason ``OutputTooLarge``, what to do in the message) until its spec changes;
``warn`` is a Warning event when the verdict first turns to it (:func:`newly_warned`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foresight.api.forecasttask import ForecastTaskSpec
from foresight.api.output_size import OutputSizeVerdict, check_output_size

__all__ = ["estimated_series", "newly_warned", "output_verdict"]


def estimated_series(spec: ForecastTaskSpec, status: Mapping[str, Any]) -> int:
    """The task's series as best known (see the module docstring)."""
    planned = (status.get("shards") or {}).get("series")
    if spec.parallelism > 1 and planned:
        return int(planned)
    if status.get("seriesCount") is not None:
        return int(status["seriesCount"])
    return spec.limits.max_series


def output_verdict(spec: ForecastTaskSpec, status: Mapping[str, Any]) -> OutputSizeVerdict:
    return check_output_size(spec, estimated_series(spec, status))


def newly_warned(spec: ForecastTaskSpec, old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """The warning to post when the verdict turned to ``warn`` with this status write (or the spec
    changed and it still warns); ``None`` otherwise."""
    now = output_verdict(spec, new)
    if now.level != "warn":
        return None
    before = output_verdict(spec, old)
    if before.level == "warn" and old.get("observedGeneration") == new.get("observedGeneration"):
        return None
    return now.message
