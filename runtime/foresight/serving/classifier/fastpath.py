"""The two hot paths answered below the framework: a check-cache hit and a classify of cached bytes.

Most of a cached request's time in FastAPI goes to the framework (routing, dependency resolution,
body validation, response classes), not to the lookup. These parsers read exactly the bodies well
behaved clients send (a JSON ``{"sha256": ...}``; a multipart body with one ``file`` part, or JSON
``{"image_base64": ...}``) so that :mod:`.front` can answer an in-process cache hit with the same
bytes the routes would send. Anything else (another shape, a miss, a body over the limit) returns
None and goes through FastAPI as usual, where it is validated, answered or refused in full.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

__all__ = ["check_cache_sha", "multipart_boundary", "upload_bytes"]

_CHECK_BODY = re.compile(rb'\s*\{\s*"sha256"\s*:\s*"([0-9a-fA-F]{64})"\s*\}\s*')
_BOUNDARY = re.compile(rb'boundary="?([^";,\s]{1,200})"?')


def check_cache_sha(body: bytes) -> str | None:
    """The lower-case SHA-256 of a check-cache body, or None when it is not the plain shape
    ``{"sha256": "<64 hex digits>"}`` (whitespace allowed; anything else: the full parser)."""
    m = _CHECK_BODY.fullmatch(body)
    return m.group(1).decode().lower() if m else None


def multipart_boundary(content_type: bytes) -> bytes | None:
    if not content_type.lower().startswith(b"multipart/form-data"):
        return None
    m = _BOUNDARY.search(content_type)
    return m.group(1) if m else None


def _one_file_part(body: bytes, boundary: bytes) -> bytes | None:
    delimiter = b"--" + boundary
    if not body.startswith(delimiter + b"\r\n"):
        return None
    head_end = body.find(b"\r\n\r\n", len(delimiter))
    if head_end < 0:
        return None
    head = body[len(delimiter) + 2 : head_end].lower()
    if (
        b'name="file"' not in head
        or b"content-disposition: form-data" not in head
        or b"content-transfer-encoding" in head
    ):
        return None
    closing = b"\r\n" + delimiter + b"--"
    end = body.rfind(closing)
    if end < head_end or body[end + len(closing) :].strip() != b"":
        return None
    data = body[head_end + 4 : end]
    if b"\r\n" + delimiter in data:  # a second part: the full parser decides
        return None
    return data


def _base64_image(body: bytes) -> bytes | None:
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("image_base64"), str):
        return None
    text: str = obj["image_base64"]
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def upload_bytes(content_type: bytes, body: bytes) -> bytes | None:
    """The image bytes of a classify body in one of the common shapes, or None."""
    ctype = content_type.lower()
    if ctype.startswith(b"application/json"):
        return _base64_image(body)
    boundary = multipart_boundary(content_type)
    if boundary is None:
        return None
    return _one_file_part(body, boundary)
