"""The classifier service's HTTP routes, one router per concern.

- :mod:`.classify`: ``POST /api/v1/classify`` and ``POST /api/v1/classify/check-cache``;
- :mod:`.feedback`: ``POST /api/v1/feedback``;
- :mod:`.stats`: ``GET /api/v1/stats/today``;
- :mod:`.health`: ``GET /api/v1/health``, ``GET /api/v1/routing`` and the service's own ``/metrics``;
- :mod:`.admin`: the admin page at ``/``.

No route closes over the service: each takes what it needs from the :class:`.context.ClassifierState`
that :func:`foresight.serving.classifier.app.create_app` keeps on the application, so one process
can hold several independent apps (as the tests do).
"""

from __future__ import annotations

from fastapi import APIRouter

from . import admin, classify, feedback, health, stats

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (classify.router, feedback.router, stats.router, health.router, admin.router)
