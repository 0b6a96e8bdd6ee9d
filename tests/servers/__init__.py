"""Real servers for integration and end-to-end tests, started on 127.0.0.1 and stopped by their owner.

- :mod:`tests.servers.prometheus`: Prometheus and Pushgateway (Debian packages), history backfill
  with ``promtool``, and the apt-based installer that skips or fails cleanly.
"""
