"""SYNTHETIC storage-quota data set (semi-synthetic, generated; NOT real measurements).

No real per-user storage-quota series is public, so the capacity story of seed 001 is exercised
on this generator. Each series is one (cluster, storage type, group, user) quota whose usage sits
at 85-95% of the quota: writes by day and cleanups at night in the cluster's local time, quieter
weekends, slow growth, noise, and write bursts followed by fast deletes (the pattern that makes
``predict_linear`` cry wolf). Some series really cross 95% (a sustained ramp), some approach it
and retreat (a cleanup), the rest stay in the band. Occasional scrape gaps are NaN.

Every returned object says ``synthetic: True`` in its metadata; ground truth (which series cross
and when) comes with it so threshold alerts can be scored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from foresight.timeseries import FloatArray, Panel

__all__ = [
    "STORAGE_METRICS",
    "StorageDataset",
    "make_storage_dataset",
    "storage_openmetrics",
    "to_openmetrics",
]

STORAGE_METRICS: Mapping[str, str] = {
    "used": "foresight_demo_storage_used_bytes",
    "quota": "foresight_demo_storage_quota_bytes",
    "write_rate": "foresight_demo_storage_write_bytes_rate",
}

_USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
_GROUPS = {"alice": "vision", "bob": "vision", "carol": "nlp", "dave": "nlp", "erin": "speech",
           "frank": "speech", "grace": "infra", "heidi": "infra"}  # fmt: skip
_CLUSTERS = [("gpu-east", "Asia/Shanghai"), ("gpu-west", "Europe/Berlin")]
_TYPES = {"ssd": 20 * 2**40, "hdd": 200 * 2**40, "object": 800 * 2**40}  # typical quota, bytes
_DEFAULT_START = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp())  # a Monday, UTC midnight


@dataclass
class StorageDataset:
    """The SYNTHETIC data set: a panel plus ground truth."""

    panel: Panel
    """Usage in bytes; ``covariates["write_rate"]`` in bytes/s; ``capacity`` = quota in bytes."""
    truth: FloatArray
    """Usage without gaps or measurement noise, same shape as ``panel.values`` (for scoring)."""
    scenario: list[str]
    """Per series: ``steady``, ``crosser`` (really crosses 95%) or ``approach_retreat``."""
    metadata: dict[str, Any]
    """Always contains ``synthetic: True`` and a description; also the generator settings."""

    def will_cross(self, origin: int, horizon: int, ratio: float = 0.95) -> npt.NDArray[np.bool_]:
        """Ground truth: does the true usage reach ``ratio * quota`` within ``horizon`` steps after
        column ``origin`` (while below it at ``origin``)?"""
        assert self.panel.capacity is not None
        thr = self.panel.capacity * ratio
        window = self.truth[:, origin + 1 : origin + 1 + horizon]
        return (self.truth[:, origin] < thr) & (window >= thr[:, None]).any(axis=1)


def make_storage_dataset(
    n_series: int = 48,
    days: int = 30,
    step: int = 3600,
    seed: int = 0,
    start: int = _DEFAULT_START,
    crosser_fraction: float = 0.2,
    approach_fraction: float = 0.15,
    gap_fraction: float = 0.01,
    cross_window: tuple[float, float] = (0.67, 0.97),
) -> StorageDataset:
    """Generate the SYNTHETIC storage-quota panel (deterministic for a seed).

    Args:
        n_series: number of quotas; keys cycle over 2 clusters x 3 storage types x 8 users
            (users get a numeric suffix past 48 series).
        days: length of history.
        step: grid step in seconds.
        seed: random seed; the same seed gives the same data.
        start: Unix seconds of the first column (aligned down to ``step``).
        crosser_fraction: share of series that really cross 95% of quota.
        approach_fraction: share that approach 95% and retreat.
        gap_fraction: share of (series, step) cells that are missing (in short runs).
        cross_window: where in the history (as fractions of ``days``) the crossers reach 95%; the
            demo moves it to the end so that some cross within its hidden next day.
    """
    rng = np.random.default_rng(seed)
    start = start - start % step
    n_steps = int(days * 86400 // step)
    ts = start + step * np.arange(n_steps, dtype=np.int64)
    keys, zones = _series_keys(n_series)
    clocks = {zone: _LocalClock.of(zone, ts) for zone in set(zones)}
    scenario = _scenarios(rng, n_series, crosser_fraction, approach_fraction)

    frac = np.zeros((n_series, n_steps))
    writes = np.zeros((n_series, n_steps))  # fraction of quota written per step
    quota = np.zeros(n_series)
    t_days = np.arange(n_steps) * step / 86400.0
    for i in range(n_series):
        # The draws per series stay in this order: the same seed gives the same data.
        quota[i] = _TYPES[keys[i]["storage_type"]] * math.exp(rng.normal(0, 0.3))
        frac[i], writes[i] = _usage(
            rng, scenario[i], clocks[zones[i]], t_days, days=days, step=step, cross_window=cross_window
        )

    truth = frac * quota[:, None]
    noise = 1 + rng.normal(0, 0.0005, size=truth.shape)
    values = truth * noise
    write_rate = writes * quota[:, None] / step * (1 + rng.normal(0, 0.05, size=truth.shape)).clip(0)
    _punch_gaps(rng, [values, write_rate], int(gap_fraction * values.size))
    panel = Panel(start=start, step=step, keys=keys, values=values, covariates={"write_rate": write_rate},
                  capacity=quota)  # fmt: skip
    metadata = {
        "synthetic": True,
        "description": "SYNTHETIC semi-synthetic storage-quota usage generated by "
        "foresight.forecast.synthetic (not real measurements)",
        "seed": seed,
        "n_series": n_series,
        "days": days,
        "step": step,
        "time_zones": dict(_CLUSTERS),
        "metrics": dict(STORAGE_METRICS),
    }
    return StorageDataset(panel=panel, truth=truth, scenario=scenario, metadata=metadata)


def _series_keys(n_series: int) -> tuple[list[dict[str, str]], list[str]]:
    """Each series' labels and its cluster's time zone: cluster, then storage type, then user vary."""
    keys: list[dict[str, str]] = []
    zones: list[str] = []
    types = list(_TYPES)
    for i in range(n_series):
        cluster, zone = _CLUSTERS[i % len(_CLUSTERS)]
        stype = types[(i // len(_CLUSTERS)) % len(types)]
        base_user = _USERS[(i // (len(_CLUSTERS) * len(types))) % len(_USERS)]
        rnd = i // (len(_CLUSTERS) * len(types) * len(_USERS))
        user = base_user if rnd == 0 else f"{base_user}{rnd + 1}"
        keys.append({"cluster": cluster, "storage_type": stype, "group": _GROUPS[base_user], "user": user})
        zones.append(zone)
    return keys, zones


@dataclass(frozen=True)
class _LocalClock:
    """Local hour of day (fractional) and weekday of every grid time, in one time zone."""

    hour: FloatArray
    weekday: FloatArray

    @classmethod
    def of(cls, zone: str, ts: npt.NDArray[np.int64]) -> _LocalClock:
        z = ZoneInfo(zone)
        dts = [datetime.fromtimestamp(int(t), tz=UTC).astimezone(z) for t in ts]
        return cls(
            hour=np.array([d.hour + d.minute / 60 for d in dts]),
            weekday=np.array([d.weekday() for d in dts], dtype=np.float64),
        )


def _scenarios(rng: np.random.Generator, n_series: int, crosser: float, approach: float) -> list[str]:
    """``crosser``, ``approach_retreat`` or ``steady`` per series, in the given shares."""
    n_cross = round(crosser * n_series)
    n_approach = round(approach * n_series)
    order = rng.permutation(n_series)
    scenario = ["steady"] * n_series
    for j in order[:n_cross]:
        scenario[j] = "crosser"
    for j in order[n_cross : n_cross + n_approach]:
        scenario[j] = "approach_retreat"
    return scenario


def _usage(
    rng: np.random.Generator,
    scenario: str,
    clock: _LocalClock,
    t_days: FloatArray,
    *,
    days: int,
    step: int,
    cross_window: tuple[float, float] = (0.67, 0.97),
) -> tuple[FloatArray, FloatArray]:
    """One quota's usage (a fraction of the quota) and the fraction written per step."""
    per_hour = 3600 / step
    hour = clock.hour
    weekend = clock.weekday >= 5
    amp = rng.uniform(0.01, 0.025) * np.where(weekend, 0.4, 1.0)
    # Writes by day (08-20 local), cleanups at night: usage rises through the day and falls
    # back overnight; the daily shape is a smooth bump so steps are continuous.
    day_pos = np.clip((hour - 8) / 12, 0, 1)
    night_pos = np.where(hour >= 20, (hour - 20) / 12, np.where(hour < 8, (hour + 4) / 12, 0))
    daily = np.where(
        (hour >= 8) & (hour < 20), np.sin(0.5 * np.pi * day_pos), np.cos(0.5 * np.pi * night_pos)
    )
    base = rng.uniform(0.86, 0.895) + rng.uniform(0, 0.0005) * t_days
    level = base + amp * daily
    if scenario == "crosser":
        level = _crossing(rng, level, base + amp * daily, base + amp * 0.5, t_days, days, cross_window)
    elif scenario == "approach_retreat":
        peak_day = rng.uniform(0.4, 0.95) * days
        width = rng.uniform(1.0, 2.5)
        target = rng.uniform(0.925, 0.94)
        bump = np.clip(1 - np.abs(t_days - peak_day) / width, 0, None)
        level = level + (target - (base + amp)) * bump
    # Bursts are kept under 94% so they are false alarms for predict_linear, not real crossings.
    burst = _bursts(rng, days=days, n_steps=level.size, step=step)
    level = level + np.minimum(burst, np.clip(0.94 - level, 0, None))
    # Write rate: background writes by day plus the positive part of usage increases.
    inc = np.diff(level, prepend=level[0])
    writes = np.clip(inc, 0, None) + 0.2 * amp * np.where((hour >= 8) & (hour < 20), 1.0, 0.2) / per_hour
    return level, writes


def _crossing(
    rng: np.random.Generator, level: FloatArray, band: FloatArray, mid: FloatArray, t_days: FloatArray,
    days: int, window: tuple[float, float] = (0.67, 0.97),
) -> FloatArray:  # fmt: skip
    """A sustained ramp that reaches 95% within ``window`` of the history (by default its last
    third); once well over, an admin frees space a day later (usage returns to the ``band``)."""
    cross_day = rng.uniform(*window) * days
    ramp_days = rng.uniform(3, 6)
    ramp_start = cross_day - ramp_days
    need = 0.955 - mid
    ramp = np.clip((t_days - ramp_start) / ramp_days, 0, None)
    level = level + need * ramp
    freed = t_days > cross_day + 1.0
    return np.where(freed, band, level)


def _bursts(rng: np.random.Generator, *, days: int, n_steps: int, step: int) -> FloatArray:
    """Write bursts: fast writes over 1-3 h, held 1-4 h, deleted over 1-2 h."""
    per_hour = 3600 / step
    n_bursts = rng.poisson(days / 2.5)
    burst = np.zeros(n_steps)
    for _ in range(n_bursts):
        b0 = rng.uniform(0, days) * 86400 / step
        up, hold, down = (rng.uniform(1, 3), rng.uniform(1, 4), rng.uniform(1, 2))
        size = rng.uniform(0.02, 0.05)
        x = np.arange(n_steps) - b0
        rise = np.clip(x / (up * per_hour), 0, 1)
        fall = np.clip((x - (up + hold) * per_hour) / (down * per_hour), 0, 1)
        burst += size * (rise - fall)
    return burst


def _punch_gaps(rng: np.random.Generator, arrays: list[FloatArray], n_cells: int) -> None:
    """Short runs of NaN (1-6 steps) at the same places in every array, about ``n_cells`` in all."""
    n_series, n_steps = arrays[0].shape
    made = 0
    while made < n_cells:
        i = int(rng.integers(n_series))
        length = int(rng.integers(1, 7))
        s0 = int(rng.integers(1, max(2, n_steps - length - 1)))
        for a in arrays:
            a[i, s0 : s0 + length] = np.nan
        made += length


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(name: str, help_text: str, keys: list[dict[str, str]], ts: npt.NDArray[np.int64],
            values: FloatArray, extra_labels: Mapping[str, str]) -> list[str]:  # fmt: skip
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for key, row in zip(keys, values, strict=True):
        labels = {**extra_labels, **key}
        label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        prefix = f"{name}{{{label_text}}}" if label_text else name
        for t, v in zip(ts.tolist(), row.tolist(), strict=True):
            if math.isfinite(v):
                lines.append(f"{prefix} {v!r} {t}")
    return lines


def to_openmetrics(
    panel: Panel,
    metric_name: str,
    *,
    help_text: str = "Foresight series",
    covariates: Mapping[str, str] | None = None,
    capacity_metric: str | None = None,
    extra_labels: Mapping[str, str] | None = None,
) -> str:
    """The panel as OpenMetrics text for ``promtool tsdb create-blocks-from openmetrics``.

    Gauges, timestamps in seconds, NaN samples skipped, ends with ``# EOF``. ``covariates`` maps a
    covariate name to the metric name to write it as; ``capacity_metric`` also writes the capacity
    (constant over time) as its own gauge.
    """
    ts = panel.timestamps()
    extra = dict(extra_labels or {})
    lines = _family(metric_name, help_text, panel.keys, ts, panel.values, extra)
    for cov, name in (covariates or {}).items():
        if cov not in panel.covariates:
            raise KeyError(f"panel has no covariate {cov!r}; it has {sorted(panel.covariates)}")
        lines += _family(name, f"{help_text} ({cov})", panel.keys, ts, panel.covariates[cov], extra)
    if capacity_metric is not None:
        if panel.capacity is None:
            raise ValueError("capacity_metric given but the panel has no capacity")
        cap = np.repeat(panel.capacity[:, None], panel.n_steps, axis=1)
        lines += _family(capacity_metric, f"{help_text} (capacity)", panel.keys, ts, cap, extra)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def storage_openmetrics(dataset: StorageDataset) -> str:
    """The SYNTHETIC storage data set as OpenMetrics text with the three ``foresight_demo_*`` metrics."""
    return to_openmetrics(
        dataset.panel,
        STORAGE_METRICS["used"],
        help_text="SYNTHETIC demo storage usage in bytes (generated, not real data)",
        covariates={"write_rate": STORAGE_METRICS["write_rate"]},
        capacity_metric=STORAGE_METRICS["quota"],
    )
