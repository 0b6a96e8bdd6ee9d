"""Calendar features, scaling and label ids."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from foresight.forecast.features import CalendarConfig, LabelVocabulary, calendar_features, robust_scale


def test_calendar_follows_the_local_time_zone() -> None:
    # 2026-03-02 09:00 in Shanghai (UTC+8) is 01:00 UTC, a Monday.
    t = int(datetime(2026, 3, 2, 9, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp())
    cfg = CalendarConfig(time_zone="Asia/Shanghai", day_start_hour=8, day_end_hour=20)
    f = calendar_features([t, t + 12 * 3600], cfg)
    assert f.shape == (2, cfg.n_features) == (2, 5)
    np.testing.assert_allclose(f[0, :2], [np.sin(2 * np.pi * 9 / 24), np.cos(2 * np.pi * 9 / 24)], atol=1e-12)
    assert f[:, 4].tolist() == [1.0, 0.0]  # 09:00 is day, 21:00 is night
    utc = calendar_features([t], CalendarConfig())
    assert utc[0, 4] == 0.0  # 01:00 UTC is night
    with pytest.raises(ValueError, match="IANA"):
        calendar_features([t], CalendarConfig(time_zone="Mars/Olympus"))


def test_robust_scale_has_a_floor_and_handles_nan_rows() -> None:
    v = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [7.0] * 5, [np.nan] * 5])
    s = robust_scale(v)
    assert s.center.tolist() == [3.0, 7.0, 0.0]
    assert s.scale[0] == 2.0 and s.scale[1] == pytest.approx(7e-3) and s.scale[2] == 1.0
    np.testing.assert_allclose(s.invert(s.apply(v))[:2], v[:2])


def test_label_vocabulary_maps_unknown_to_zero() -> None:
    vocab = LabelVocabulary.fit([{"user": "bob", "cluster": "a"}, {"user": "alice", "cluster": "a"}])
    assert vocab.names == ["cluster", "user"] and vocab.cardinalities == [2, 3]
    ids = vocab.encode([{"user": "alice", "cluster": "a"}, {"user": "mallory"}])
    assert ids.tolist() == [[1, 1], [0, 0]]
    assert LabelVocabulary.from_dict(vocab.to_dict()).ids == vocab.ids
