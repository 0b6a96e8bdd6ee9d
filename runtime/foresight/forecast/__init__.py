"""Forecasting: features, models (baselines, statistical, neural, ``auto``), backtests and thresholds.

Everything here maps a :class:`foresight.timeseries.Panel` to a :class:`foresight.timeseries.Forecast`;
ingestion from Prometheus and write-back live in sibling modules owned elsewhere.
"""
