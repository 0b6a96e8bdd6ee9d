"""The labels Foresight writes a forecast series under, wherever it writes it.

Gauges at now (:mod:`foresight.forecast.writeback`, pushed or scraped) and the remote-written
trajectory (:mod:`foresight.prometheus.remote_write`) carry a series' own labels next to the
labels Foresight adds; both name them with :func:`series_labels`, so a series keeps the same
label set on every path.

Names are sanitised to valid Prometheus label names. A series label that clashes with a label
Foresight adds (``task``, ``namespace``, ``horizon``, ``bound``, ``metric``, ``model``, ``kind``)
or that the Pushgateway / scrape owns (``job``, ``instance``) is renamed with a ``series_``
prefix: a per-namespace storage metric keeps its own ``namespace`` as ``series_namespace``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from foresight.api.forecasttask import OUTPUT_LABELS

__all__ = ["RESERVED_LABELS", "series_labels"]

RESERVED_LABELS = OUTPUT_LABELS
"""Label names Foresight or the Pushgateway set (the API's one definition); series labels with these
names get ``series_``."""

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def _sanitise(name: str) -> str:
    out = _INVALID.sub("_", name) or "_"
    if out[0].isdigit():
        out = "_" + out
    if out.startswith("__"):  # reserved for Prometheus' internal labels
        out = "series" + out
    if out in RESERVED_LABELS:
        out = "series_" + out
    return out


def series_labels(key: Mapping[str, str]) -> dict[str, str]:
    """A series key as write-back labels: sanitised names, ``series_`` prefix on clashes."""
    out: dict[str, str] = {}
    for name, value in key.items():
        if name == "__name__":
            continue
        new = _sanitise(name)
        if new in out:
            raise ValueError(
                f"series labels {sorted(key)} collide after sanitising ({name!r} -> {new!r}); rename one "
                "with label_replace in the query"
            )
        out[new] = value
    return out
