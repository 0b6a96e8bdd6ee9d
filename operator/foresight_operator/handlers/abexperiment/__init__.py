"""ABExperiment: live traffic split, analysis from Prometheus, progressive steps, bandits, rollback.

:mod:`.registration` registers the kopf handlers (spec changes, a timer, deletion);
:mod:`.controller` does one pass (references, routing, the clock, one analysis per interval);
:mod:`.references` checks what must exist first; :mod:`.observe` reads the counters from
Prometheus. The analysis itself is :func:`foresight.experiment.policy.analyse`, pure; what is
written from its decision is built in :mod:`foresight_operator.builders.abexperiment`.
"""

from __future__ import annotations

from .controller import ABExperimentController
from .registration import register_abexperiment

__all__ = ["ABExperimentController", "register_abexperiment"]
