"""A history for the sharded-read tests: many label sets, awkward label values (OpenMetrics text).

Five days, hourly, ending at a whole hour a day before now. SYNTHETIC values, exactly known:

- ``storage_used_bytes{user, group, storage_type, cluster}``: every user x storage type x
  cluster combination that :func:`present` keeps, value ``base + t`` (``t`` the hour index). Users
  include quotes, backslashes, regex metacharacters, dots, Chinese, and one series with no
  ``user`` label at all. Some series start late, some stop early, one has a gap.
- ``storage_quota_bytes{user, cluster}``: a quota for most users (a join partner without
  ``storage_type`` / ``group``).
- ``cluster_capacity_bytes{cluster}``: one per cluster (a join partner without ``user``).
- ``writes{user, cluster}`` (counter): +3 per hour, reset once.
"""

from __future__ import annotations

import time

from tests.servers.prometheus import openmetrics

STEP = 3600
HOURS = 5 * 24
END = (int(time.time()) // STEP) * STEP - 24 * STEP
START = END - (HOURS - 1) * STEP

USERS = [
    "alice", "bob", "carol", 'o"brien', "back\\slash", "dot.user", "a|b", "star*", "(paren)", "张三",
    "dollar$1", "u10", "u11", "u12", "u13", "u14", "u15", "u16", "u17", "",
]  # fmt: skip
STORAGE = ["ssd", "hdd", "nvme"]
CLUSTERS = ["a", "b"]


def present(ui: int, si: int, ci: int) -> bool:
    """Which user x storage x cluster combinations exist (not a full cross product)."""
    return (ui + 2 * si + ci) % 3 != 0


def window(ui: int, si: int, ci: int) -> range:
    """The hours a series has samples (late starts, early stops)."""
    n = ui * 7 + si * 3 + ci
    if n % 5 == 0:
        return range(30, HOURS)  # starts late
    if n % 7 == 0:
        return range(0, HOURS - 40)  # stops early
    return range(HOURS)


def history_text() -> str:
    used = []
    for ui, user in enumerate(USERS):
        for si, stype in enumerate(STORAGE):
            for ci, cluster in enumerate(CLUSTERS):
                if not present(ui, si, ci):
                    continue
                labels = {"group": "ml" if ui % 2 else "infra", "storage_type": stype, "cluster": cluster}
                if user:
                    labels["user"] = user
                base = 1000.0 * ui + 100.0 * si + 10.0 * ci
                hours = [t for t in window(ui, si, ci) if not (ui == 1 and 50 <= t < 55)]
                used.append((labels, [(START + t * STEP, base + t) for t in hours]))
    quota = [
        (
            {"user": u, "cluster": c} if u else {"cluster": c},
            [(START + t * STEP, 1e6 + ui) for t in range(HOURS)],
        )
        for ui, u in enumerate(USERS)
        for c in CLUSTERS
        if ui % 4 != 3
    ]
    capacity = [
        ({"cluster": c}, [(START + t * STEP, 1e9 * (i + 1)) for t in range(HOURS)])
        for i, c in enumerate(CLUSTERS)
    ]
    writes = []
    for user in USERS[:10]:
        for c in CLUSTERS:
            v, samples = 0.0, []
            for t in range(HOURS):
                v = 1.0 if t == 60 else v + 3.0
                samples.append((START + t * STEP, v))
            writes.append(({"user": user, "cluster": c}, samples))
    return openmetrics(
        {
            "storage_used_bytes": ("gauge", used),
            "storage_quota_bytes": ("gauge", quota),
            "cluster_capacity_bytes": ("gauge", capacity),
            "writes": ("counter", writes),
        }
    )
