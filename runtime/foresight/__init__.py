"""Foresight: the shared runtime package (forecasting, training, serving, Prometheus I/O, artifacts)."""

__version__ = "0.1.0"
