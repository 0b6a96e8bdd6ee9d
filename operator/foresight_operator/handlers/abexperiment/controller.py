"""The ABExperiment controller: references, routing, then one analysis per ``analysisInterval``.

:meth:`ABExperimentController.reconcile` runs under a per-experiment lock on a freshly read object
(the timer's copy can be a tick old, and a second analysis on stale state would count an interval
twice):

1. parse the spec into the analysis's config (an invalid one: ``Ready=False InvalidSpec``,
   phase Failed);
2. the references (:mod:`.references`): the ClassifierService, every variant's ONNX ModelVersion,
   no older experiment routing the same service;
3. the state the last analysis left in ``status.analysisState`` (restored after an operator
   restart; a spec change other than ``suspend`` starts the experiment over), and the routing
   ConfigMap with its weights (written only when the split differs);
4. the service's pods load every variant: only then does the experiment's clock start (the first
   analysis is one interval later);
5. when an analysis is due: the counters from Prometheus (:mod:`.observe`), ``analyse()``, the
   status with the evidence and the decision, the new weights into the routing ConfigMap, events
   (a Warning for a rollback or a failure), and ``/metrics``.

A problem at any step is ``Ready=False`` with its reason and what to fix (a Warning event when
the reason changes), never an exception into kopf: the timer keeps ticking and the next tick
tries again. Nothing is routed to a candidate until step 4 passes, so a broken reference leaves
the service serving its own model.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from foresight.api.abexperiment import AB_EXPERIMENT, ABExperimentSpec, ExperimentPhase, ExperimentReason
from foresight.api.meta import ConditionType, Reason
from foresight.contract.experiment import routing_configmap_name
from foresight.experiment.config import ExperimentConfig
from foresight.experiment.decision import Action, Decision
from foresight.experiment.policy import analyse
from foresight.experiment.spec import experiment_config, metric_sources, selector_matchers
from foresight.experiment.state import ExperimentState, Observation, initial_state
from foresight.kube import CONFIGMAPS, KubeApiError
from pydantic import ValidationError

from ...builders.abexperiment import (
    build_routing,
    experiment_status,
    read_routing,
    ready_from_record,
    weights_text,
)
from ...reconcile import (
    AB_EXPERIMENTS,
    SpecError,
    WaitError,
    ensure_child,
    find_condition,
    format_time,
    owner_labels,
    parse_time,
    set_condition,
    write_status,
)
from ...reconcile.locks import KeyedLocks
from ...reconcile.updates import configmap_update
from ...schedule import Backoff
from ..common import parse_spec
from ..context import HandlerContext
from .observe import PrometheusFactory, bearer_token, prometheus_http, read_observation
from .references import require_models, require_routing_owner, require_service, variants_loaded
from .waits import CAP, Waits

__all__ = ["ABExperimentController", "restore_state", "spec_fingerprint", "state_blob"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]
KIND = AB_EXPERIMENT.kind
IN_PROGRESS = frozenset({ExperimentReason.MODEL_VERSION_NOT_READY, ExperimentReason.VARIANTS_NOT_LOADED})
"""Problems that are work under way (a Normal event, not a Warning)."""
DECISION_EVENTS = {
    Action.ROLLBACK: ("Warning", "RolledBack"),
    Action.FAIL: ("Warning", "Failed"),
    Action.PROMOTE: ("Normal", "Promoted"),
    Action.STEP_FORWARD: ("Normal", "StepForward"),
    Action.REWEIGHT: ("Normal", "BanditReweighted"),
}


def spec_fingerprint(spec: ABExperimentSpec) -> str:
    """What the analysis's state is valid for: the spec without ``suspend`` (pausing keeps the state)."""
    wire = {k: v for k, v in spec.to_wire().items() if k != "suspend"}
    return hashlib.sha256(json.dumps(wire, sort_keys=True).encode()).hexdigest()[:16]


def state_blob(state: ExperimentState, fingerprint: str) -> Obj:
    """``status.analysisState``: the spec fingerprint and the state as one JSON string.

    A string, not an object: the status is written as a JSON merge patch, in which a ``null``
    deletes a key, and the state's nulls carry meaning (an unbounded confidence sequence, a split
    still settling), so they must come back as written.
    """
    return {"spec": fingerprint, "state": state.model_dump_json(by_alias=True)}


def restore_state(blob: Any, fingerprint: str) -> ExperimentState | None:
    """The state in ``status.analysisState`` when it was made for this spec, else None (start over)."""
    if (
        not isinstance(blob, Mapping)
        or blob.get("spec") != fingerprint
        or not isinstance(blob.get("state"), str)
    ):
        return None
    try:
        return ExperimentState.model_validate_json(blob["state"])
    except ValidationError as exc:
        log.warning("status.analysisState does not parse (%s); the experiment starts over", exc)
        return None


class ABExperimentController:
    def __init__(
        self,
        ctx: HandlerContext,
        prometheus: PrometheusFactory = prometheus_http,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self.ctx = ctx
        self.prometheus = prometheus
        self._locks = KeyedLocks()
        scale = ctx.settings.experiment_time_scale
        self.waits = Waits(
            backoff
            or Backoff(base=timedelta(seconds=max(0.5, ctx.settings.retry_delay * scale)), cap=CAP * scale)
        )

    def forget(self, namespace: str, name: str) -> None:
        self._locks.forget(namespace, name)
        self.waits.cleared(namespace, name)
        self.ctx.metrics.record_status(KIND, namespace, name, None)

    # --- entry points ----------------------------------------------------------------------------

    def reconcile(self, body: Mapping[str, Any]) -> None:
        """One pass over ABExperiment ``body`` (never raises: problems become conditions)."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        with self._locks.lock(ns, name), self.ctx.metrics.timed(KIND):
            result = "ok"
            fresh: Mapping[str, Any] = body
            try:
                got = self.ctx.kube.get(AB_EXPERIMENTS, name, ns)
                if got is None or got["metadata"].get("deletionTimestamp"):
                    self.waits.cleared(ns, name)
                    return
                fresh = got
                try:
                    self._reconcile(got)
                except SpecError as exc:
                    result = "invalid"
                    self._problem(got, exc.reason, exc.message, invalid=True)
                    self.waits.failed(got, self.ctx.clock(), until_spec_changes=True)
                except WaitError as exc:
                    result = "retry"
                    self._problem(got, exc.reason, exc.message)
                    self.waits.failed(got, self.ctx.clock())
                else:
                    self.waits.cleared(ns, name)
            except KubeApiError as exc:
                result = "retry"
                log.warning("ABExperiment %s/%s: Kubernetes API error: %s", ns, name, exc)
                self.ctx.metrics.errors.labels(kind=KIND, reason=Reason.API_ERROR).inc()
                self.waits.failed(fresh, self.ctx.clock())
            self.ctx.metrics.reconciles.labels(kind=KIND, result=result).inc()

    def due(self, body: Mapping[str, Any], now: datetime) -> bool:
        """Whether a tick should reconcile (cheap: reads the timer's copy of the status only).

        A finished experiment (promoted, rolled back, failed) waits for a spec change or an
        operator restart; one with a problem when its backoff is over or what it waits for changed
        (:mod:`.waits`); a running one when its next analysis is due or ``suspend`` was toggled.
        """
        status = body.get("status") or {}
        ready = find_condition(status.get("conditions"), ConditionType.READY) or {}
        if ready.get("reason") in _PROBLEMS or not status.get("analysisState"):
            meta = body["metadata"]
            return self.waits.due(meta["namespace"], meta["name"], now)
        phase = status.get("phase")
        if phase in (ExperimentPhase.PROMOTED, ExperimentPhase.ROLLED_BACK, ExperimentPhase.FAILED):
            return False
        if bool((body.get("spec") or {}).get("suspend")) != (phase == ExperimentPhase.SUSPENDED):
            return True
        nxt = parse_time(status.get("nextAnalysisTime"))
        return nxt is None or now >= nxt

    # --- the pass --------------------------------------------------------------------------------

    def _config(self, spec: ABExperimentSpec, namespace: str, name: str) -> ExperimentConfig:
        try:
            return experiment_config(
                spec, name=f"{namespace}/{name}", time_scale=self.ctx.settings.experiment_time_scale
            )
        except (ValueError, ValidationError) as exc:
            raise SpecError(f"the spec cannot be analysed: {exc}") from exc

    def _reconcile(self, body: Obj) -> None:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        spec = parse_spec(ABExperimentSpec, body.get("spec"))
        config = self._config(spec, ns, name)
        service = require_service(self.ctx, ns, spec)
        require_models(self.ctx, ns, spec)
        require_routing_owner(self.ctx, body, spec)
        fingerprint = spec_fingerprint(spec)
        blob = (body.get("status") or {}).get("analysisState")
        state = restore_state(blob, fingerprint)
        now = self.ctx.clock()
        weights = state.weights if state is not None else initial_state(config, now).weights
        self._route(body, service, spec, weights, now)
        variants_loaded(self.ctx, ns, name, spec)
        if state is None:
            self._start(body, spec, config, fingerprint, now)
            return
        if state.finished_action is not None:
            self._clear_problem(body, now)
            return
        phase = (body.get("status") or {}).get("phase")
        toggled = config.suspend != (phase == ExperimentPhase.SUSPENDED)
        if now < self._next(config, state) and not toggled:
            self._clear_problem(body, now)
            return
        observation = (state.last or Observation()) if config.suspend else self._observe(spec, ns, state, now)
        decision = analyse(config, state, observation, now)
        if decision.action in (Action.NO_DATA, Action.FAIL) and not observation.traffic:
            selector = ", ".join(m.render() for m in selector_matchers(spec, ns))
            decision = decision.model_copy(
                update={
                    "message": decision.message + f"; Prometheus has no classify requests with a variant "
                    f"label for {{{selector}}}: check that it scrapes the service's pods and "
                    "spec.prometheus.selector"
                }
            )
        self._record(body, spec, config, decision, blob, fingerprint, now)

    @staticmethod
    def _next(config: ExperimentConfig, state: ExperimentState) -> datetime:
        last = state.last_analysis_at or state.started_at
        return last + timedelta(seconds=config.analysis_interval_seconds)

    def _observe(
        self, spec: ABExperimentSpec, namespace: str, state: ExperimentState, now: datetime
    ) -> Observation:
        client = self.prometheus(spec.prometheus.url, bearer_token(self.ctx, namespace, spec))
        return read_observation(
            client,
            spec.prometheus.url,
            metric_sources(spec),
            selector_matchers(spec, namespace),
            state.started_at,
            now,
        )

    def _route(
        self, body: Obj, service: Obj, spec: ABExperimentSpec, weights: Mapping[str, int], now: datetime
    ) -> None:
        """Write ``weights`` into the service's routing ConfigMap when the split there differs."""
        import kopf

        meta = body["metadata"]
        ns = meta["namespace"]
        experiment = f"{ns}/{meta['name']}"
        cm_name = routing_configmap_name(spec.service)
        current = read_routing(self.ctx.kube.get(CONFIGMAPS, cm_name, ns))
        want = {v.name: int(weights.get(v.name, 0)) for v in spec.variants}
        generation = int(meta.get("generation") or 0)
        if (
            current is not None
            and current.experiment == experiment
            and current.salt == meta["uid"]
            and current.generation == generation
            and current.stickiness_header == spec.stickiness_key
            and current.control == spec.variants[0].name
            and current.weights() == want
        ):
            return
        cm = build_routing(
            service=spec.service,
            namespace=ns,
            labels=owner_labels("ClassifierService", spec.service),
            experiment=experiment,
            salt=meta["uid"],
            generation=generation,
            stickiness_header=spec.stickiness_key,
            control=spec.variants[0].name,
            weights=want,
            now=now,
        )
        kopf.adopt(cm, owner=service)  # type: ignore[arg-type]
        try:
            _, created = ensure_child(
                self.ctx.kube, CONFIGMAPS, cm, owner_uid=service["metadata"]["uid"], update=configmap_update
            )
        except WaitError as exc:
            raise WaitError(
                f"ConfigMap {ns}/{cm_name} exists and is not ClassifierService {spec.service}'s: delete it "
                f"so the experiment can route the service ({exc.message})",
                reason=ExperimentReason.ROUTING_CONFLICT,
            ) from exc
        if created:
            self.ctx.post_event(
                body, "Normal", "RoutingCreated", f"ConfigMap {cm_name}: {weights_text(want)}"
            )

    # --- status ----------------------------------------------------------------------------------

    def _start(
        self, body: Obj, spec: ABExperimentSpec, config: ExperimentConfig, fingerprint: str, now: datetime
    ) -> None:
        """The clock starts: the initial state, the first analysis one interval from now."""
        meta = body["metadata"]
        state = initial_state(config, now)
        first = now + timedelta(seconds=config.analysis_interval_seconds)
        message = (
            f"variants served at {weights_text(state.weights)}; collecting samples, first analysis at "
            f"{format_time(first)}"
        )

        def compute(current: Obj) -> Obj:
            generation = current["metadata"].get("generation")
            status = {
                k: v
                for k, v in (current.get("status") or {}).items()
                if k in ("conditions", "decisionCounts")
            }
            status.update(
                phase=ExperimentPhase.SUSPENDED.value if config.suspend else ExperimentPhase.RUNNING.value,
                weights=weights_text(state.weights),
                samples=0,
                variants=[
                    {"name": v.name, "modelVersion": v.model_version, "weight": state.weights.get(v.name, 0)}
                    for v in spec.variants
                ],
                currentStep=0,
                decisions=[],
                nextAnalysisTime=format_time(first),
                analysisState=state_blob(state, fingerprint),
                observedGeneration=generation,
            )
            status["conditions"] = set_condition(
                status.get("conditions"),
                ConditionType.READY,
                "False",
                ExperimentReason.COLLECTING,
                message,
                generation=generation,
                now=now,
            )
            return status

        result = write_status(self.ctx.kube, AB_EXPERIMENTS, meta["namespace"], meta["name"], compute)
        self.ctx.metrics.record_status(KIND, meta["namespace"], meta["name"], result.new if result else None)
        self.ctx.post_event(body, "Normal", "Started", message)

    def _record(
        self,
        body: Obj,
        spec: ABExperimentSpec,
        config: ExperimentConfig,
        decision: Decision,
        based_on: Any,
        fingerprint: str,
        now: datetime,
    ) -> None:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        terminal = decision.state.finished_action is not None
        nxt = None if terminal else now + timedelta(seconds=config.analysis_interval_seconds)
        previous = (body.get("status") or {}).get("decision") or {}

        def compute(current: Obj) -> Obj | None:
            if (current.get("status") or {}).get("analysisState") != based_on:
                return None  # another pass analysed meanwhile: its result stands
            return experiment_status(
                current,
                spec,
                decision,
                now=now,
                next_analysis=nxt,
                state_blob=state_blob(decision.state, fingerprint),
                namespace=ns,
                name=name,
            )

        result = write_status(self.ctx.kube, AB_EXPERIMENTS, ns, name, compute)
        if result is None or not result.changed:
            return
        self.ctx.metrics.record_status(KIND, ns, name, result.new)
        service = require_service(self.ctx, ns, spec)
        self._route(body, service, spec, decision.weights, now)
        self._announce(body, decision, previous)

    def _announce(self, body: Obj, decision: Decision, previous: Mapping[str, Any]) -> None:
        event = DECISION_EVENTS.get(decision.action)
        if event is not None:
            self.ctx.post_event(body, event[0], event[1], decision.message)
        elif previous.get("reason") != str(decision.reason):
            warn = decision.reason in (ExperimentReason.SAMPLE_RATIO_MISMATCH, ExperimentReason.NO_DATA)
            self.ctx.post_event(body, "Warning" if warn else "Normal", str(decision.reason), decision.message)

    def _problem(self, body: Obj, reason: str, message: str, *, invalid: bool = False) -> None:
        """``Ready=False`` with ``reason``; a Warning event (Normal for work under way) when it is new."""
        meta = body["metadata"]
        now = self.ctx.clock()
        ready = find_condition((body.get("status") or {}).get("conditions"), ConditionType.READY) or {}

        def compute(current: Obj) -> Obj:
            generation = current["metadata"].get("generation")
            status = dict(current.get("status") or {})
            if invalid:
                status["phase"] = ExperimentPhase.FAILED.value
                status["observedGeneration"] = generation
            status.setdefault("phase", ExperimentPhase.PENDING.value)
            status["conditions"] = set_condition(
                status.get("conditions"),
                ConditionType.READY,
                "False",
                reason,
                message,
                generation=generation,
                now=now,
            )
            return status

        try:
            result = write_status(
                self.ctx.kube, AB_EXPERIMENTS, meta["namespace"], meta["name"], compute, current=body
            )
        except (KubeApiError, WaitError) as exc:
            log.warning(
                "could not write the status of ABExperiment %s/%s: %s", meta["namespace"], meta["name"], exc
            )
            return
        self.ctx.metrics.errors.labels(kind=KIND, reason=reason).inc()
        self.ctx.metrics.record_status(KIND, meta["namespace"], meta["name"], result.new if result else None)
        if ready.get("reason") != reason or (invalid and ready.get("message") != message):
            self.ctx.post_event(body, "Normal" if reason in IN_PROGRESS else "Warning", reason, message)

    def _clear_problem(self, body: Obj, now: datetime) -> None:
        """After a problem went away: ``Ready`` as the last decision left it (no analysis needed)."""
        status = body.get("status") or {}
        ready = find_condition(status.get("conditions"), ConditionType.READY) or {}
        if ready.get("reason") not in _PROBLEMS:
            return
        record = status.get("decision") or {}
        if record:
            cstatus, reason = ready_from_record(str(status.get("phase") or ""), str(record.get("reason")))
            message = str(record.get("message") or "")
        else:
            cstatus, reason = "False", ExperimentReason.COLLECTING.value
            message = f"collecting samples, first analysis at {status.get('nextAnalysisTime')}"
        meta = body["metadata"]

        def compute(current: Obj) -> Obj:
            new = dict(current.get("status") or {})
            new["conditions"] = set_condition(
                new.get("conditions"),
                ConditionType.READY,
                cstatus,
                reason,
                message,
                generation=current["metadata"].get("generation"),
                now=now,
            )
            return new

        result = write_status(
            self.ctx.kube, AB_EXPERIMENTS, meta["namespace"], meta["name"], compute, current=body
        )
        self.ctx.metrics.record_status(KIND, meta["namespace"], meta["name"], result.new if result else None)


_PROBLEMS = frozenset(
    {
        ExperimentReason.SERVICE_NOT_FOUND,
        ExperimentReason.MODEL_VERSION_NOT_FOUND,
        ExperimentReason.MODEL_VERSION_NOT_READY,
        ExperimentReason.UNSUPPORTED_ARTIFACT,
        ExperimentReason.ROUTING_CONFLICT,
        ExperimentReason.VARIANTS_NOT_LOADED,
        ExperimentReason.PROMETHEUS_UNAVAILABLE,
        ExperimentReason.PROMQL_ERROR,
        Reason.API_ERROR,
        Reason.SECRET_NOT_FOUND,
        Reason.INVALID_SPEC,
    }
)
"""Ready reasons that are the operator's problems, not the analysis's answers."""
