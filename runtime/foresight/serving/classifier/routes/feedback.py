"""``POST /api/v1/feedback``: the true category of an earlier request, joined to the variant that answered it.

Late ground truth for an A/B experiment (and for plain accuracy). The request id comes from the
classify or check-cache answer; the service looks it up in its request log (within the retention
period), records whether its answer was right against the variant that gave it, and counts it in
``foresight_classifier_feedback_total{variant, correct}`` and in ``/stats/today``.

Idempotent per request id: the first label recorded counts. Sending the same label again answers
200 with ``recorded: false`` and counts nothing; a different label answers 409
``feedback_conflict`` naming the recorded one. An id the service never answered (or no longer
keeps, or that was answered with an error) is a 404 ``unknown_request``.
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from foresight.contract.classifier import FEEDBACK_PATH

from ..accounting import FeedbackEvent
from ..errors import BadRequest, FeedbackConflict, UnknownRequest
from ..schemas import AUTH_ERROR, FeedbackRequest, FeedbackResponse
from ..schemas import error_response as err
from ..store.base import FeedbackRecord
from .context import require_auth, state_of

__all__ = ["router"]

router = APIRouter(dependencies=[Depends(require_auth)])


@router.post(
    FEEDBACK_PATH,
    response_model=FeedbackResponse,
    summary="Give the true category of an earlier request (counted per variant, once per request)",
    responses={
        **AUTH_ERROR,
        404: err("No answered request with this id (in the retention period)."),
        409: err("This request already has feedback with another label (the first one counts)."),
        422: err("Malformed body, or a label that is not a category key."),
        503: err("The store is unavailable."),
    },
)
async def feedback(body: FeedbackRequest, request: Request) -> Response:
    state = state_of(request)
    service = state.service
    keys = [c.key for c in state.config.categories]
    if body.label not in keys:
        raise BadRequest(f"label {body.label!r} is not a category key: use one of {keys}", categories=keys)
    answered = await service.answered(body.request_id)
    if answered is None:
        raise UnknownRequest(
            f"no answered request with id {body.request_id!r} in the last "
            f"{state.config.cache.retention_days} days: use the request_id of a classify or "
            "check-cache answer (status 200)"
        )
    now = service.clock()
    record = FeedbackRecord(
        request_id=body.request_id,
        ts=now,
        day=service.ledger.day(now),
        variant=answered.variant,
        category=answered.category,
        label=body.label,
        correct=body.label == answered.category,
    )
    stored, recorded = await anyio.to_thread.run_sync(service.store.add_feedback, record)
    if recorded:
        service.ledger.add(FeedbackEvent(now, stored.variant, stored.correct))
    elif stored.label != body.label:
        raise FeedbackConflict(
            f"request {body.request_id} already has feedback {stored.label!r}; the first label counts "
            "and cannot be changed",
            label=stored.label,
        )
    return JSONResponse(
        {
            "request_id": stored.request_id,
            "variant": stored.variant or None,
            "category": stored.category,
            "label": stored.label,
            "correct": stored.correct,
            "recorded": recorded,
        }
    )
