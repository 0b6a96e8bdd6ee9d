"""Running resources on this machine: ``foresight run -f FILE [--local]`` and ``foresight demo``.

The runner core is :func:`foresight.forecast.runner.run_forecast_task`; this package wires it to
real (or in-memory) Prometheus, Pushgateway and artifact stores, reads the environment once, and
formats what people read.
"""
