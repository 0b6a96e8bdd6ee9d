"""A ForecastTask's work: from Prometheus history to forecasts, thresholds and gauges.

Models map a :class:`foresight.timeseries.Panel` to a :class:`foresight.timeseries.Forecast`;
around them:

- :mod:`.pipeline`: one run of a task end to end (ingest, train or load, predict, write back),
  with :mod:`.result` (what a run reports), :mod:`.persistence` (what it keeps in its artifact
  store) and :mod:`.errors` (which error reports which condition);
- :mod:`.ingest`: PromQL history into a panel; :mod:`.features`: calendar features;
- :mod:`.models` (one per model, by name) and :mod:`.auto` (per-series choice among candidates);
- :mod:`.backtest` (rolling origin) and :mod:`.accuracy` (MAE, MASE, coverage);
- :mod:`.threshold`: time to threshold and anomaly flags;
- :mod:`.writeback`: the gauges at now; :mod:`.scrape`: the server of a scrape-mode task's gauges;
- :mod:`.synthetic` (the SYNTHETIC storage-quota data set) and :mod:`.plot` (forecast vs actual).
"""
