"""ForecastTask: scheduled runs, one Job at a time, status from the runs' termination messages.

The handlers (:mod:`.registration`) are thin: create / resume / spec update, a timer every
``tick`` seconds and every change of a run Job call
:meth:`.controller.ForecastTaskController.reconcile`, which under a per-task lock checks the spec
and its Secrets, keeps the ConfigMap with the task YAML (and in scrape mode the forecast server,
:mod:`.forecast_server`) current, harvests finished runs (:mod:`.results`: the runtime's
:class:`~foresight.contract.forecast.ForecastRunResult` from the pod's termination message),
registers the model a training run saved as a ModelVersion (:mod:`.trained_models`), asks the
scheduler what to start given the run Jobs as history (:mod:`.runs`), starts at most one Job, and
writes status (:mod:`.status`) and the gauges (:mod:`.gauges`).

Failures of a run: bad input (PromQL syntax error with Prometheus' message, no series, too little
history, too many series) gives ``Ready=False`` with that reason and blocks the task until its
spec changes; a temporary one (Prometheus or Pushgateway unreachable) is retried with an
exponential backoff and turns ``Degraded`` True after ``degraded_after`` failures in a row, back
to False with the next success. Deleting a task stops its runs and, in pushgateway mode, deletes
its Pushgateway group (:mod:`.deletion`; a finalizer holds the deletion until then).
"""

from __future__ import annotations

from .registration import register_forecasttask

__all__ = ["register_forecasttask"]
