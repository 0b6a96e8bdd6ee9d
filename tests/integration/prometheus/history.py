"""A small, exactly known history for the Prometheus integration tests (OpenMetrics text).

Seven days, hourly, ending at a whole hour a day before now:

- ``storage_used_bytes{user, group, storage_type, cluster}``:
  alice/ml/ssd/a = 100 + t, alice/ml/hdd/a = 1000 + 2t, bob/ml/ssd/a = 50 + t/2 with a gap
  (hours ``GAP``), carol/infra/ssd/b = 7 + t starting late (hour ``LATE`` on); ``t`` is the hour
  index from ``START``.
- ``storage_quota_bytes{user, cluster}``: a limit for alice (5000) and bob (800), none for carol.
- ``writes_total{user}`` (counter): +10 per hour, reset to 5 at hour ``RESET``.
"""

from __future__ import annotations

import time

import numpy as np

from tests.servers.prometheus import openmetrics

STEP = 3600
HOURS = 7 * 24
END = (int(time.time()) // STEP) * STEP - 24 * STEP
START = END - (HOURS - 1) * STEP
GAP = range(60, 65)
LATE = 72
RESET = 100

SERIES = {
    ("alice", "ml", "ssd", "a"): lambda t: 100.0 + t,
    ("alice", "ml", "hdd", "a"): lambda t: 1000.0 + 2 * t,
    ("bob", "ml", "ssd", "a"): lambda t: 50.0 + t / 2,
    ("carol", "infra", "ssd", "b"): lambda t: 7.0 + t,
}


def expected(user_key: tuple[str, str, str, str]) -> np.ndarray:
    """The grid values of one raw series (NaN where it has no sample)."""
    t = np.arange(HOURS, dtype=np.float64)
    row = np.array([SERIES[user_key](float(i)) for i in t])
    if user_key[0] == "bob":
        row[list(GAP)] = np.nan
    if user_key[0] == "carol":
        row[:LATE] = np.nan
    return row


def counter_values() -> list[float]:
    vals, v = [], 0.0
    for t in range(HOURS):
        v = 5.0 if t == RESET else v + 10.0 if t else 0.0
        vals.append(v)
    return vals


def history_text() -> str:
    used = []
    for (user, group, stype, cluster), fn in SERIES.items():
        samples = [
            (START + t * STEP, fn(t))
            for t in range(HOURS)
            if not (user == "bob" and t in GAP) and not (user == "carol" and t < LATE)
        ]
        labels = {"user": user, "group": group, "storage_type": stype, "cluster": cluster}
        used.append((labels, samples))
    quota = [
        ({"user": "alice", "cluster": "a"}, [(START + t * STEP, 5000.0) for t in range(HOURS)]),
        ({"user": "bob", "cluster": "a"}, [(START + t * STEP, 800.0) for t in range(HOURS)]),
    ]
    writes = [({"user": "alice"}, [(START + t * STEP, v) for t, v in enumerate(counter_values())])]
    return openmetrics(
        {
            "storage_used_bytes": ("gauge", used),
            "storage_quota_bytes": ("gauge", quota),
            "writes": ("counter", writes),
        }
    )
