"""The SYNTHETIC storage-quota data set."""

from __future__ import annotations

import numpy as np
from foresight.forecast.synthetic import make_storage_dataset, storage_openmetrics, to_openmetrics
from foresight.timeseries import Panel


def test_usage_sits_in_the_85_95_band_with_real_crossers() -> None:
    ds = make_storage_dataset(n_series=24, days=14, seed=3)
    assert ds.metadata["synthetic"] is True and "SYNTHETIC" in ds.metadata["description"]
    assert ds.panel.capacity is not None
    frac = ds.truth / ds.panel.capacity[:, None]
    assert ((frac >= 0.85) & (frac <= 0.95)).mean() > 0.95
    crossers = [i for i, s in enumerate(ds.scenario) if s == "crosser"]
    others = [i for i, s in enumerate(ds.scenario) if s != "crosser"]
    assert crossers and (frac[crossers].max(axis=1) >= 0.95).all()
    assert (frac[others].max(axis=1) < 0.95).all()
    labels = {k for key in ds.panel.keys for k in key}
    assert labels == {"cluster", "storage_type", "group", "user"}
    assert len({tuple(sorted(k.items())) for k in ds.panel.keys}) == 24
    assert 0 < np.isnan(ds.panel.values).mean() < 0.05


def test_bursts_write_fast_and_delete_fast() -> None:
    ds = make_storage_dataset(n_series=12, days=10, seed=1)
    assert ds.panel.capacity is not None
    frac = ds.truth / ds.panel.capacity[:, None]
    jumps = np.diff(frac, axis=1)
    # A burst writes >= 1% of quota in one hour and removes it about as fast.
    assert (jumps > 0.01).sum() > 10 and (jumps < -0.01).sum() > 10
    assert np.all(ds.panel.covariates["write_rate"][np.isfinite(ds.panel.covariates["write_rate"])] >= 0)


def test_deterministic_for_a_seed() -> None:
    a, b = make_storage_dataset(n_series=6, days=3, seed=7), make_storage_dataset(n_series=6, days=3, seed=7)
    np.testing.assert_array_equal(a.panel.values, b.panel.values)
    assert a.scenario == b.scenario
    c = make_storage_dataset(n_series=6, days=3, seed=8)
    assert not np.array_equal(np.nan_to_num(a.panel.values), np.nan_to_num(c.panel.values))


def test_openmetrics_text() -> None:
    panel = Panel(start=3600, step=60, keys=[{"user": 'a"b'}], values=np.array([[1.5, np.nan, 2.0]]),
                  capacity=np.array([10.0]))  # fmt: skip
    text = to_openmetrics(panel, "m_bytes", capacity_metric="q_bytes")
    lines = text.splitlines()
    assert lines[-1] == "# EOF" and text.endswith("\n")
    assert 'm_bytes{user="a\\"b"} 1.5 3600' in lines and 'm_bytes{user="a\\"b"} 2.0 3720' in lines
    assert sum(line.startswith("m_bytes{") for line in lines) == 2  # the NaN sample is skipped
    assert sum(line.startswith("q_bytes{") for line in lines) == 3
    full = storage_openmetrics(make_storage_dataset(n_series=2, days=1))
    for name in ("foresight_demo_storage_used_bytes", "foresight_demo_storage_quota_bytes",
                 "foresight_demo_storage_write_bytes_rate"):  # fmt: skip
        assert f"# TYPE {name} gauge" in full
