"""A ModelLibrary's status from its fetch Jobs (pure): waiting, fetching, and the verdict of a finished one.

``status`` tells what the last fetch found (the counts, checksum, source health, quality: the
runtime's :class:`~foresight.contract.library.FetchResult` fields, each verdict replacing all of
them) and what the active pointer says (``active`` is true while *this* ModelLibrary's version is the
active one, which a failed fetch of a new version leaves as it was), plus how fetching goes:

=========== ============================ ===========================================================
phase       Ready condition               when
=========== ============================ ===========================================================
Pending     False, SecretNotFound /        a Secret or the source ConfigMap does not exist yet, or an
            ConfigMapNotFound / Waiting    older fetch Job is still stopping
Fetching    False, Fetching / Withdrawing  a fetch (or withdraw) Job runs
Ready       True, Active / Inactive        verified and stored; the active version, or withdrawn
Retrying    False, SourceUnreachable /     a retry can help; the next attempt is at nextRetryTime
            StoreUnavailable / FetchFailed (backoff doubling to 10 min), Degraded=True after
                                           ``degraded_after`` in a row
Conflict    False, ActiveConflict          another ModelLibrary holds the active version of the
                                           same library name (activeOwner); retried once it lets go
Failed      False, the verdict's reason    checksum, archive, schema, size: fix the source or spec
=========== ============================ ===========================================================

Each failure's message is the runtime's (what is wrong, with the case ids and fields), followed by
what it means for the active version and what to do (:data:`ADVICE`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from foresight.api.meta import ConditionType, Reason
from foresight.api.modellibrary import LibraryPhase, LibraryReason, ModelLibrarySpec
from foresight.contract.library import STATUS_FIELDS, FetchResult

from ...builders.modellibrary import FETCH_DEADLINE_SECONDS, FetchRun, public_store_uri
from ...reconcile import find_condition, format_time, parse_time, set_condition, true_condition
from ...reconcile.pods import ended, terminated, termination_message
from ...schedule import Backoff

__all__ = [
    "ADVICE",
    "Verdict",
    "conflict_status",
    "fetching_status",
    "folded_status",
    "read_verdict",
    "waiting_status",
]

Obj = dict[str, Any]
LAST_WORDS = 1500
"""Characters of a crashed pod's log tail quoted in the condition message."""

_PACK = "`foresight library pack DIR -o lib.tar.gz`"
ADVICE: dict[str, str] = {
    LibraryReason.CHECKSUM_MISMATCH: "The source is not the file that was pinned: if the publisher "
    "changed it on purpose, pin the new sha256 with a new version in the spec; otherwise restore it.",
    LibraryReason.SOURCE_UNREACHABLE: "Retried with backoff; check the URL or S3 endpoint and the "
    "network from the cluster.",
    LibraryReason.STORE_UNAVAILABLE: "Retried with backoff; check spec.store (the PVC, or the S3 "
    "endpoint and its credentials Secret).",
    LibraryReason.SOURCE_NOT_FOUND: "Publish the library there or fix spec.source.",
    LibraryReason.ACCESS_DENIED: "Grant the credentials read access, or fix "
    "spec.source.store.credentialsSecret.",
    LibraryReason.TOO_LARGE: "Split the library, or raise spec.limits (maxCasesMib, maxArchiveMib) if "
    "it is meant to be this large.",
    LibraryReason.UNSAFE_ARCHIVE: f"Rebuild the archive from the library's directory with {_PACK} "
    "and pin its sha256.",
    LibraryReason.INVALID_ARCHIVE: "Check it with `foresight library verify FILE`, fix it and "
    "publish it under a new version.",
    LibraryReason.INVALID_MANIFEST: "Fix library.json (`foresight library verify FILE` names the field).",
    LibraryReason.INVALID_CASES: "Fix the cases listed in status.invalidReasons (`foresight library "
    "verify FILE` lists them all) and publish a new version.",
    LibraryReason.INVALID_MODELS: "Fix the models' files or their sha256 in the manifest.",
    LibraryReason.EMPTY_LIBRARY: "A library needs at least one case: publish one with cases.",
    LibraryReason.VERSION_MISMATCH: "Set spec.version to the library's version, or publish the "
    "version pinned.",
    LibraryReason.VERSION_CONFLICT: "Published versions never change: give the changed library a "
    "new version.",
    LibraryReason.UNKNOWN_BUILTIN: "`foresight library list` shows the built-in libraries.",
    LibraryReason.FETCH_FAILED: "The fetch Job's log has the details; it is retried with backoff.",
}
"""What to do, per failure reason (appended to the runtime's message)."""

RETRYABLE_WITHOUT_RESULT = True
"""A pod that left no result (a crash, an out-of-memory kill, the deadline) is retried with backoff:
it says nothing about the library itself."""


@dataclass(frozen=True)
class Verdict:
    """How a finished fetch Job ended: the runtime's result, or why there is none."""

    result: FetchResult
    finished: datetime

    @property
    def ok(self) -> bool:
        return self.result.phase == LibraryPhase.READY

    @property
    def phase(self) -> LibraryPhase:
        if self.ok:
            return LibraryPhase.READY
        if self.result.reason == LibraryReason.ACTIVE_CONFLICT:
            return LibraryPhase.CONFLICT
        return LibraryPhase.RETRYING if self.result.retryable else LibraryPhase.FAILED


def read_verdict(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], *, now: datetime) -> Verdict:
    """The verdict of a finished fetch Job (pure): its pod's result, else the Job's own words."""
    last = ended(pods)
    term: Mapping[str, Any] = (terminated(last[-1]) or {}) if last else {}
    finished = parse_time(term.get("finishedAt")) or parse_time(
        (job.get("status") or {}).get("completionTime")
    )
    raw = termination_message(last[-1]) if last else ""
    result = FetchResult.from_termination_message(raw)
    if result is not None and result.reason:
        return Verdict(result, finished or now)
    failed: Mapping[str, Any] = true_condition(job, "Failed") or {}
    if failed.get("reason") == "DeadlineExceeded":
        message = f"the fetch did not finish within {FETCH_DEADLINE_SECONDS} s (a stalled download?)"
    else:
        message = (
            f"the fetch Job ended without a result ({failed.get('reason') or term.get('reason') or 'no pod'})"
        )
    if raw:
        message += f"; the pod's last words: {raw[-LAST_WORDS:]}"
    result = FetchResult(
        phase="Failed", reason=LibraryReason.FETCH_FAILED, message=message, retryable=RETRYABLE_WITHOUT_RESULT
    )
    return Verdict(result, finished or now)


class _Conditions:
    def __init__(self, status: Obj, generation: int | None, now: datetime) -> None:
        self.list: list[Obj] = [dict(c) for c in status.get("conditions") or []]
        self.generation = generation
        self.now = now

    def set(self, ctype: str, value: str, reason: str, message: str) -> None:
        self.list = set_condition(
            self.list, ctype, value, reason, message, generation=self.generation, now=self.now
        )

    def recovered(self, message: str) -> None:
        degraded = find_condition(self.list, ConditionType.DEGRADED)
        if degraded is not None and degraded.get("status") == "True":
            self.set(ConditionType.DEGRADED, "False", Reason.RECOVERED, message)


def waiting_status(current: Obj, *, generation: int | None, reason: str, message: str, now: datetime) -> Obj:
    """Phase Pending: the fetch waits for something (a Secret, the source ConfigMap, an older Job)."""
    status = dict(current)
    conds = _Conditions(status, generation, now)
    conds.set(ConditionType.READY, "False", reason, message)
    conds.set(ConditionType.PROGRESSING, "False", reason, message)
    status.update(phase=LibraryPhase.PENDING, observedGeneration=generation, conditions=conds.list)
    return status


def fetching_status(current: Obj, *, job: str, run: FetchRun, now: datetime) -> Obj:
    """Phase Fetching: a fetch (or withdraw) Job of ``run`` runs; earlier results stay until it ends."""
    status = dict(current)
    conds = _Conditions(status, run.generation, now)
    if run.action == "withdraw":
        reason, message = LibraryReason.WITHDRAWING, f"Job {job} takes this library out of the active pointer"
    else:
        attempt = f" (attempt {run.attempt})" if run.attempt > 1 else ""
        reason, message = LibraryReason.FETCHING, f"Job {job} fetches and verifies the library{attempt}"
    conds.set(ConditionType.READY, "False", reason, message)
    conds.set(ConditionType.PROGRESSING, "True", reason, message)
    status.update(phase=LibraryPhase.FETCHING, observedGeneration=run.generation, conditions=conds.list)
    status["fetchJob"] = job
    status.pop("nextRetryTime", None)
    return status


def _result_fields(spec: ModelLibrarySpec, result: FetchResult) -> Obj:
    wire = result.to_wire()
    fields = {key: wire[key] for key in STATUS_FIELDS if wire.get(key) is not None}
    for key in ("storedUri", "pointer"):
        if key in fields:
            fields[key] = public_store_uri(spec, fields[key])
    if fields.get("invalidReasons"):
        fields["invalidReasons"] = [str(r)[:1024] for r in fields["invalidReasons"][:10]]
    return fields


_KEPT_BY_WITHDRAW = ("source", "quality", "schemaVersion", "fetchedTime")


def _consequence(result: FetchResult) -> str:
    if result.active and result.active_version:
        return f"version {result.active_version} of this library stays active."
    if result.active_version and result.active_owner:
        return f"ModelLibrary {result.active_owner} holds the active version ({result.active_version})."
    return "Nothing of it was activated."


def folded_status(
    current: Obj,
    *,
    spec: ModelLibrarySpec,
    job: str,
    run: FetchRun,
    verdict: Verdict,
    now: datetime,
    degraded_after: int,
    backoff: Backoff,
    model_versions: Sequence[str] = (),
) -> Obj:
    """The status after the verdict of fetch Job ``job`` (of ``run``): every result field replaced.

    ``backoff`` spaces the retries of a retryable
    failure; ``model_versions`` are the ModelVersions made of the models it carries (when active).
    """
    status = {k: v for k, v in current.items() if k not in STATUS_FIELDS}
    result = verdict.result
    if result.action == "withdraw":  # no fetch: what the last fetch found of the source stays true
        status.update({k: current[k] for k in _KEPT_BY_WITHDRAW if k in current})
    status.update(_result_fields(spec, result))
    conds = _Conditions(status, run.generation, now)
    phase = verdict.phase
    reason = result.reason
    failures = int(current.get("consecutiveFailures") or 0)
    status.pop("nextRetryTime", None)
    if phase == LibraryPhase.READY:
        failures = 0
        conds.set(ConditionType.READY, "True", reason, result.message)
        conds.set(ConditionType.PROGRESSING, "False", reason, result.message)
        conds.recovered(f"Job {job} reached a verdict after earlier failures")
    elif phase == LibraryPhase.RETRYING:
        failures += 1
        retry_at = verdict.finished + backoff.delay(failures)
        if retry_at < now:
            retry_at = now
        status["nextRetryTime"] = format_time(retry_at)
        message = (
            f"{result.message} {_consequence(result)} Attempt {run.attempt} failed; the next starts at "
            f"{format_time(retry_at)}. {ADVICE.get(reason, '')}"
        ).strip()
        conds.set(ConditionType.READY, "False", reason, message)
        conds.set(ConditionType.PROGRESSING, "True", reason, f"retrying at {format_time(retry_at)}")
        if failures >= degraded_after:
            conds.set(
                ConditionType.DEGRADED, "True", reason, f"{failures} fetches in a row failed; last: {message}"
            )
    else:
        failures = 0
        advice = "" if phase == LibraryPhase.CONFLICT else ADVICE.get(reason, "")
        message = (
            f"{result.message} {'' if phase == LibraryPhase.CONFLICT else _consequence(result)} {advice}"
        )
        conds.set(ConditionType.READY, "False", reason, " ".join(message.split()))
        conds.set(ConditionType.PROGRESSING, "False", reason, "no fetch under way: it needs a change first")
        conds.recovered(f"Job {job} reached a verdict after earlier failures")
    status["consecutiveFailures"] = failures
    status["modelVersions"] = list(model_versions) if result.active else []
    status.update(phase=phase, observedGeneration=run.generation, conditions=conds.list, fetchJob=job)
    return status


def conflict_status(
    current: Obj, *, holder: str, holder_version: str | None, library: str, now: datetime
) -> Obj:
    """A ModelLibrary whose activation another one replaced (both activated at once; the pointer
    keeps the last write): ``Conflict``, naming the holder."""
    status = dict(current)
    generation = status.get("observedGeneration")
    conds = _Conditions(status, generation, now)
    message = (
        f"ModelLibrary {holder} activated library {library}"
        + (f" ({holder_version})" if holder_version else "")
        + " too, and holds the active pointer: two ModelLibraries cannot both be the active version of one "
        f"library name. This one becomes active once {holder} sets active: false or is deleted; to keep "
        "the other, set active: false here."
    )
    conds.set(ConditionType.READY, "False", LibraryReason.ACTIVE_CONFLICT, message)
    conds.set(
        ConditionType.PROGRESSING, "False", LibraryReason.ACTIVE_CONFLICT, "waiting for the library name"
    )
    status.update(
        phase=LibraryPhase.CONFLICT,
        active=False,
        activeOwner=holder,
        modelVersions=[],
        conditions=conds.list,
    )
    if holder_version:
        status["activeVersion"] = holder_version
    return status
