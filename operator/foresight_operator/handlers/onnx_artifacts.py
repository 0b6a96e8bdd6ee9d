"""Where a ModelVersion's ONNX file is, for the serving pods: ``pvc://<claim>/<path>`` or a clear wait.

A ClassifierService with ``backend.onnx`` and every variant of an ABExperiment name a ModelVersion
the serving pods must load; both resolve it here, so both say the same thing about the same
problem: the ModelVersion is missing, not Ready yet (its verify Job runs), Ready without an ONNX
artifact (a torch model never exported: waiting will not help), or its ONNX file is not on a PVC
(pods mount claims only). An ONNX artifact is a ``.onnx`` file or a model directory holding
``model.onnx``. Each is a :class:`~foresight_operator.reconcile.WaitError` whose message
names the field to fix.
"""

from __future__ import annotations

from urllib.parse import urlparse

from foresight.api.classifierservice import ClassifierReason
from foresight.api.meta import ConditionType

from ..builders.classifierservice import OnnxModel
from ..reconcile import MODEL_VERSIONS, WaitError, find_condition
from .context import HandlerContext

__all__ = ["MODEL_VERSION_NOT_READY", "UNSUPPORTED_ARTIFACT", "resolve_onnx_artifact"]

ONNX_MAIN_FILE = "model.onnx"
"""The ONNX model of a directory artifact (the format foresight.modelversion.loaders reads)."""
MODEL_VERSION_NOT_READY = ClassifierReason.MODEL_VERSION_NOT_READY.value
UNSUPPORTED_ARTIFACT = ClassifierReason.UNSUPPORTED_ARTIFACT.value


def resolve_onnx_artifact(
    ctx: HandlerContext,
    namespace: str,
    mv_name: str,
    *,
    field: str,
    waiting: str,
    not_found_reason: str = MODEL_VERSION_NOT_READY,
) -> OnnxModel:
    """The ONNX file of ModelVersion ``namespace/mv_name``.

    ``field``: the spec field that names it (said in the messages); ``waiting``: what waits for it
    ("the ClassifierService is deployed"); ``not_found_reason``: the condition reason of a missing one.
    """
    wait = max(ctx.settings.retry_delay, 5.0)
    mv = ctx.kube.get(MODEL_VERSIONS, mv_name, namespace)
    if mv is None:
        raise WaitError(
            f"ModelVersion {namespace}/{mv_name} not found: create it (or fix {field}); {waiting} once it "
            "is Ready with an ONNX artifact",
            reason=not_found_reason,
            delay=wait,
        )
    mstatus = mv.get("status") or {}
    ready = find_condition(mstatus.get("conditions"), ConditionType.READY)
    uri = (mstatus.get("onnx") or {}).get("uri")
    mspec = mv.get("spec") or {}
    if not uri and mspec.get("framework") == "onnx":
        uri = (mspec.get("artifact") or {}).get("uri")
    if ready is None or ready.get("status") != "True":
        why = f" ({ready.get('reason')})" if ready is not None and ready.get("reason") else ""
        raise WaitError(
            f"ModelVersion {namespace}/{mv_name} is not Ready yet{why}; waiting: {waiting} once it is "
            "Ready with an ONNX artifact (its status.onnx.uri, or spec.artifact.uri with framework onnx)",
            reason=MODEL_VERSION_NOT_READY,
            delay=wait,
        )
    if not uri:
        # Ready is final for this spec: the verify Job already ran (and exported, when asked to), so
        # waiting would not bring an ONNX file.
        raise WaitError(
            f"ModelVersion {namespace}/{mv_name} is Ready but has no ONNX artifact (framework "
            f"{mspec.get('framework') or 'torch'}, no status.onnx): set spec.optimize.onnx: true on it "
            f"(torch models) so it is exported, or name a ModelVersion with framework onnx in {field}",
            reason=UNSUPPORTED_ARTIFACT,
            delay=max(ctx.settings.retry_delay, 60.0),
        )
    parsed = urlparse(str(uri))
    if parsed.scheme != "pvc" or not parsed.netloc or not parsed.path.strip("/"):
        raise WaitError(
            f"ModelVersion {namespace}/{mv_name}'s ONNX artifact {uri} is not on a PVC: serving pods mount "
            "pvc://<claim>/<path> artifacts only; optimise it to a PVC store",
            reason=UNSUPPORTED_ARTIFACT,
            delay=max(ctx.settings.retry_delay, 60.0),
        )
    path = parsed.path.strip("/")
    if not path.endswith(".onnx"):
        # A model directory (as training publishes it, with a manifest): its ONNX model is model.onnx.
        path = f"{path}/{ONNX_MAIN_FILE}"
    return OnnxModel(claim=parsed.netloc, path=path)
