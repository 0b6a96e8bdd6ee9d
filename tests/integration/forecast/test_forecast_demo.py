"""``foresight demo`` (``make run``), small and quick: real Prometheus path and in-memory fallback."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from foresight.run.demo import run_demo

pytestmark = pytest.mark.integration


def test_demo_loads_a_real_prometheus_and_reads_its_forecasts_back(
    prometheus_installed: None, tmp_path: Path
) -> None:
    out = io.StringIO()
    code = run_demo(tmp_path / "demo", use_prometheus=True, series=6, quick=True, stdout=out)
    text = out.getvalue()
    assert code == 0, text
    assert "SYNTHETIC" in text and "real Prometheus at http://127.0.0.1:" in text
    assert "scraped 6 foresight_time_to_threshold_seconds series from the Pushgateway" in text
    assert "foresight_exhaustion_alert == 1" in text  # the alert expression on the chosen rule's verdict
    assert "Bands:              level 0.8; out-of-sample coverage" in text
    assert "Alert:              rule " in text and "real crossing(s) in" in text
    for needle in ("READY", "ForecastsWritten", "vs predict_linear", "TIME-TO-95%", "lstm epoch 1/3"):
        assert needle in text
    png = tmp_path / "demo" / "forecast-vs-actual.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(
        csv.reader(line for line in (tmp_path / "demo" / "forecasts.csv").open() if not line.startswith("#"))
    )
    assert len(rows) == 1 + 6 and rows[0][:4] == ["group", "user", "storage_type", "cluster"]
    assert "foresight_forecast_upper{" in (tmp_path / "demo" / "metrics.prom").read_text()


def test_demo_without_prometheus_serves_the_history_from_memory_and_says_so(tmp_path: Path) -> None:
    out = io.StringIO()
    code = run_demo(tmp_path / "demo", use_prometheus=False, series=4, quick=True, stdout=out)
    text = out.getvalue()
    assert code == 0, text
    assert "NO real Prometheus (--no-prometheus given)" in text and "FROM MEMORY" in text
    assert "NOT pushed (no Pushgateway)" in text
    assert (tmp_path / "demo" / "forecast-vs-actual.png").exists()
