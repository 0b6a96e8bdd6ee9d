"""The image bytes of a ``classify`` request: a multipart ``file`` field or base64 in JSON.

A body larger than the upload limit allows (base64 inflates by 4/3, multipart adds headers) is
refused before it is read, from its ``Content-Length`` when the client sent one, otherwise as soon
as the stream passes the limit.
"""

from __future__ import annotations

import base64
import binascii
import json

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.types import Message

from .errors import ImageRejected
from .schemas import ImageBase64Request

__all__ = ["read_upload"]


async def read_upload(request: Request, limit: int) -> bytes:
    """The uploaded image's bytes (not yet checked to be an image); ``limit`` is the upload limit."""
    body = await _read_body(request, limit)
    ctype = request.headers.get("content-type", "").lower()
    if ctype.startswith("multipart/form-data"):
        return await _multipart_file(request, body)
    if ctype.startswith("application/json"):
        return _base64_image(body)
    raise ImageRejected(
        'send multipart/form-data with a `file` field, or JSON {"image_base64": ...}',
        status=415,
        code="unsupported_media_type",
    )


async def _read_body(request: Request, limit: int) -> bytes:
    # base64 inflates by 4/3; multipart adds headers. Anything beyond this is refused unread.
    body_limit = limit * 4 // 3 + 64 * 1024
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > body_limit:
        raise ImageRejected(
            f"request body is {declared} bytes, the upload limit is {limit}",
            status=413,
            code="upload_too_large",
            limit=limit,
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > body_limit:
            raise ImageRejected(
                f"request body exceeds the upload limit of {limit} bytes",
                status=413,
                code="upload_too_large",
                limit=limit,
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def _multipart_file(request: Request, body: bytes) -> bytes:
    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
    except Exception as exc:  # malformed multipart: starlette raises several types
        raise ImageRejected(f"malformed multipart body: {exc}", status=422, code="bad_request") from exc
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ImageRejected(
            "multipart upload needs the image in a form field named `file`",
            status=422,
            code="bad_request",
        )
    data = await upload.read()
    await form.close()
    return data


def _base64_image(body: bytes) -> bytes:
    try:
        payload = ImageBase64Request.model_validate_json(body)
    except ValidationError as exc:
        raise ImageRejected(
            'JSON body must be {"image_base64": "..."}',
            status=422,
            code="bad_request",
            errors=json.loads(exc.json(include_url=False, include_input=False)),
        ) from exc
    text = payload.image_base64
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageRejected("image_base64 is not valid base64", status=422, code="bad_request") from exc
