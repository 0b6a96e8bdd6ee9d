"""kopf handlers, one module (or package) per kind; :func:`register_all` puts them into a kopf registry."""

from __future__ import annotations

from typing import Any

from .accepting import register_accepting
from .classifierservice import register_classifierservice
from .context import HandlerContext
from .forecasttask import register_forecasttask
from .modellibrary import register_modellibrary
from .modelversion import register_modelversion
from .trainingjob import register_trainingjob

__all__ = ["HandlerContext", "register_all"]


def register_all(registry: Any, ctx: HandlerContext) -> None:
    """Register every kind's handlers into ``registry`` (a ``kopf.OperatorRegistry``)."""
    register_trainingjob(registry, ctx)
    register_forecasttask(registry, ctx)
    register_classifierservice(registry, ctx)
    register_modelversion(registry, ctx)
    register_modellibrary(registry, ctx)
    register_accepting(registry, ctx)
