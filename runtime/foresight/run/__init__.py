"""``foresight run -f FILE [--local]``, ``foresight serve forecasts`` and ``foresight demo``.

The entry points that run a ForecastTask's work in this process, in its Job pod or on a laptop:
they read the environment once, wire the forecast pipeline
(:func:`foresight.forecast.pipeline.run_forecast_task`) or the scrape server
(:mod:`foresight.forecast.scrape`) to real or in-memory Prometheus, Pushgateway and artifact
stores, and format what people read. A ClassifierService's local run is
:mod:`foresight.serving.local`, a TrainingJob's is ``foresight train``
(:mod:`foresight.training.job`).

- :mod:`.local`: ``foresight run``; :mod:`.serve_forecasts`: ``foresight serve forecasts``;
- :mod:`.demo`: ``foresight demo`` (``make run``), with :mod:`.localprom` (a real local
  Prometheus + Pushgateway) and :mod:`.memory` (an in-memory stand-in when they cannot run);
- :mod:`.report`: the kubectl-like status, backtest and forecast tables.
"""
