"""Model inputs derived from a panel: calendar features, per-series scaling and label ids.

Calendar features matter for the storage-quota story (writes by day, cleanups at night, quieter
weekends), and they must follow the cluster's local time, hence the IANA time zone. Scaling lets
one global model learn from series whose sizes differ by orders of magnitude (an SSD quota in TiB
next to an object-store quota in PiB). Label ids let that global model tell users / groups apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from foresight.timeseries import FloatArray

__all__ = [
    "CalendarConfig",
    "LabelVocabulary",
    "Scaling",
    "calendar_features",
    "robust_scale",
]


@dataclass(frozen=True)
class CalendarConfig:
    """Which calendar features to compute and in which local time."""

    hour_of_day: bool = True
    """Hour of day as sin/cos (2 columns): the daily rhythm."""
    day_of_week: bool = True
    """Day of week as sin/cos (2 columns): weekday / weekend differences."""
    day_night: bool = True
    """A 0/1 flag, 1 between ``day_start_hour`` (inclusive) and ``day_end_hour`` (exclusive)."""
    day_start_hour: int = 8
    day_end_hour: int = 20
    time_zone: str = "UTC"
    """IANA zone name (e.g. ``Asia/Shanghai``); features follow local time, DST included."""

    @property
    def n_features(self) -> int:
        return 2 * int(self.hour_of_day) + 2 * int(self.day_of_week) + int(self.day_night)

    def to_dict(self) -> dict[str, object]:
        return {
            "hour_of_day": self.hour_of_day,
            "day_of_week": self.day_of_week,
            "day_night": self.day_night,
            "day_start_hour": self.day_start_hour,
            "day_end_hour": self.day_end_hour,
            "time_zone": self.time_zone,
        }


def calendar_features(timestamps: npt.ArrayLike, config: CalendarConfig | None = None) -> FloatArray:
    """Calendar features for Unix-second ``timestamps``: shape ``(len(timestamps), n_features)``.

    Columns, in order, for the enabled features: hour sin, hour cos, weekday sin, weekday cos,
    day flag. Hours include minutes as a fraction so sub-hourly steps get distinct values.
    """
    cfg = config or CalendarConfig()
    ts = np.asarray(timestamps, dtype=np.int64)
    try:
        zone = ZoneInfo(cfg.time_zone)
    except Exception as exc:  # ZoneInfoNotFoundError or a malformed key
        raise ValueError(
            f"unknown time zone {cfg.time_zone!r}: use an IANA name such as 'UTC' or 'Asia/Shanghai'"
        ) from exc
    # Local time per timestamp; offsets change with DST so the conversion is per element. Distinct
    # hours are few compared to the grid, so convert each distinct hour start once.
    hour_start = ts - ts % 3600
    uniq, inverse = np.unique(hour_start, return_inverse=True)
    local_hour = np.empty(len(uniq), dtype=np.float64)
    local_dow = np.empty(len(uniq), dtype=np.float64)
    for i, t in enumerate(uniq):
        dt = datetime.fromtimestamp(int(t), tz=UTC).astimezone(zone)
        # dt.minute is non-zero in zones with half-hour offsets (e.g. Asia/Kolkata).
        local_hour[i] = dt.hour + dt.minute / 60.0
        local_dow[i] = dt.weekday()
    hour = local_hour[inverse] + (ts % 3600) / 3600.0
    # Seconds past the hour can carry a half-hour zone past midnight; wrap into [0, 24).
    dow = (local_dow[inverse] + np.floor(hour / 24.0)) % 7
    hour = hour % 24.0
    cols: list[FloatArray] = []
    if cfg.hour_of_day:
        cols += [np.sin(2 * np.pi * hour / 24.0), np.cos(2 * np.pi * hour / 24.0)]
    if cfg.day_of_week:
        day_pos = dow + hour / 24.0
        cols += [np.sin(2 * np.pi * day_pos / 7.0), np.cos(2 * np.pi * day_pos / 7.0)]
    if cfg.day_night:
        hod = np.floor(hour)
        if cfg.day_start_hour <= cfg.day_end_hour:
            flag = (hod >= cfg.day_start_hour) & (hod < cfg.day_end_hour)
        else:  # a "day" that wraps midnight, e.g. a night shift 20..6
            flag = (hod >= cfg.day_start_hour) | (hod < cfg.day_end_hour)
        cols.append(flag.astype(np.float64))
    if not cols:
        return np.zeros((len(ts), 0), dtype=np.float64)
    return np.stack(cols, axis=1).astype(np.float64)


@dataclass(frozen=True)
class Scaling:
    """Per-series affine scaling: ``scaled = (x - center) / scale``."""

    center: FloatArray
    scale: FloatArray

    def apply(self, values: FloatArray) -> FloatArray:
        return (values - self.center[:, None]) / self.scale[:, None]

    def invert(self, values: FloatArray) -> FloatArray:
        return values * self.scale[:, None] + self.center[:, None]


def robust_scale(
    values: FloatArray, method: Literal["robust", "standard"] = "robust", *, rel_floor: float = 1e-3
) -> Scaling:
    """Per-row scaling statistics of ``values`` (shape ``(n_series, n_steps)``), NaN-aware.

    ``robust`` uses median / IQR, ``standard`` mean / std. The scale has a floor of
    ``rel_floor * |center|`` (and 1.0 for an all-zero row) so a flat series does not blow up its
    scaled values; an all-NaN row gets center 0, scale 1.
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.shape[0]
    center = np.zeros(n)
    scale = np.ones(n)
    has = np.isfinite(v).any(axis=1)
    if has.any():
        vv = v[has]
        if method == "robust":
            c = np.nanmedian(vv, axis=1)
            q75, q25 = np.nanpercentile(vv, [75, 25], axis=1)
            s = q75 - q25
            # An IQR of zero (a mostly flat series with rare jumps) falls back to std.
            s = np.where(s > 0, s, np.nanstd(vv, axis=1))
        elif method == "standard":
            c = np.nanmean(vv, axis=1)
            s = np.nanstd(vv, axis=1)
        else:
            raise ValueError(f"unknown scaling method {method!r}: use 'robust' or 'standard'")
        floor = np.maximum(rel_floor * np.abs(c), 1e-12)
        s = np.where(s > floor, s, np.where(np.abs(c) > 0, floor, 1.0))
        center[has] = c
        scale[has] = s
    return Scaling(center=center, scale=scale)


@dataclass
class LabelVocabulary:
    """Integer ids per label value, per label name; id 0 means unknown (unseen at fit time)."""

    names: list[str]
    ids: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def fit(cls, keys: Sequence[Mapping[str, str]], names: Sequence[str] | None = None) -> LabelVocabulary:
        """Build the vocabulary from the series keys (every label name present, unless ``names``)."""
        label_names = sorted({k for key in keys for k in key}) if names is None else list(names)
        ids: dict[str, dict[str, int]] = {}
        for name in label_names:
            values = sorted({key[name] for key in keys if name in key})
            ids[name] = {v: i + 1 for i, v in enumerate(values)}
        return cls(names=label_names, ids=ids)

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table sizes, one per label name (unknown id 0 included)."""
        return [len(self.ids[n]) + 1 for n in self.names]

    def encode(self, keys: Sequence[Mapping[str, str]]) -> npt.NDArray[np.int64]:
        """Ids shaped ``(len(keys), len(names))``; unseen values and missing labels map to 0."""
        out = np.zeros((len(keys), len(self.names)), dtype=np.int64)
        for i, key in enumerate(keys):
            for j, name in enumerate(self.names):
                out[i, j] = self.ids[name].get(key.get(name, ""), 0)
        return out

    def to_dict(self) -> dict[str, object]:
        return {"names": self.names, "ids": self.ids}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> LabelVocabulary:
        names = [str(n) for n in data["names"]]  # type: ignore[attr-defined]
        raw = data["ids"]
        assert isinstance(raw, Mapping)
        ids = {str(n): {str(v): int(i) for v, i in m.items()} for n, m in raw.items()}
        return cls(names=names, ids=ids)
