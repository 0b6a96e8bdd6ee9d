"""The DashScope backend: Alibaba's Qwen-VL models through the official ``dashscope`` SDK.

The image is downscaled and sent inline as a JPEG data URI (a ``file://`` image would go through
an OSS upload first). The SDK does not retry 429 / 5xx and its default timeout is 300 s, so this
module retries them with exponential backoff, within the request's deadline:

- each attempt's timeout is ``timeoutSeconds`` cut to what is left of the deadline, and no attempt
  starts with less than :data:`MIN_ATTEMPT_SECONDS` left;
- the wait before a retry is the backoff (``backoffSeconds`` doubling per retry) or the upstream's
  ``Retry-After``, whichever is longer; a wait that would end past the deadline is not made;
- 400 / 401 / 403 (a bad request or key) are not retried;
- the SDK logs a traceback for every failed attempt (``logger.exception``); that is replaced by
  one warning line per attempt from this module (:class:`_QuietSdkErrors`).
"""

from __future__ import annotations

import base64
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from foresight.api.classifierservice import Category
from foresight.contract.classifier import DashScopeConfig

from ..answers import parse_answer
from ..errors import (
    ConfigError,
    UpstreamError,
    UpstreamThrottled,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from ..images import CheckedImage, downscale_jpeg
from .base import BackendResult, ClassifierBackend, OnCall

__all__ = ["MIN_ATTEMPT_SECONDS", "DashScopeBackend", "retry_after_seconds"]

log = logging.getLogger(__name__)

MIN_ATTEMPT_SECONDS = 0.05
"""An attempt with less time than this left before the deadline is not started."""
MAX_RETRY_AFTER_SECONDS = 3600.0
"""A larger ``Retry-After`` is taken as this (a broken header must not park a client for days)."""


class _QuietSdkErrors(logging.Filter):
    """Drops the SDK's per-attempt tracebacks: this module logs one line per attempt instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None


_SDK_FILTER = _QuietSdkErrors()


def retry_after_seconds(
    headers: Mapping[str, Any] | None, now: Callable[[], float] = time.time
) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) from response headers, capped, or None."""
    if not headers:
        return None
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if value is None:
        return None
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now()
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


def _answer_text(output: Any) -> str:
    """The text of the first choice of a multimodal-generation response."""
    choices = output["choices"] if isinstance(output, dict) else output.choices
    message = choices[0]["message"]
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


@dataclass
class _Attempt:
    """What one attempt left behind for the error a client gets."""

    status: int | None = None
    code: str = ""
    message: str = ""
    request_id: str = ""
    retry_after: float | None = None
    timed_out: bool = False

    def detail(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "upstream_status": self.status,
            "upstream_code": self.code,
            "upstream_message": self.message[:300],
        }
        if self.request_id:
            out["upstream_request_id"] = self.request_id
        return out


class DashScopeBackend(ClassifierBackend[str]):
    name = "dashscope"

    def __init__(
        self,
        settings: DashScopeConfig,
        *,
        api_key: str,
        prompt: str,
        categories: Sequence[Category],
        fallback: str = "other",
        pool_size: int = 64,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not api_key:
            raise ConfigError(
                f"the DashScope API key is empty: set the environment variable "
                f"{settings.api_key_env} (from the Secret named in the ClassifierService)"
            )
        import dashscope  # heavy import, only when this backend is used

        self._call = dashscope.MultiModalConversation.call
        self._settings = settings
        self._api_key = api_key
        self._prompt = prompt
        self._categories = list(categories)
        self._fallback = fallback
        self._sleep = sleep
        self._monotonic = monotonic
        sdk_log = logging.getLogger("dashscope")
        # The SDK logs whole request bodies (the image) at DEBUG: keep it at INFO so no image bytes
        # reach the logs even when the root logger is verbose.
        sdk_log.setLevel(max(logging.INFO, sdk_log.level))
        if _SDK_FILTER not in sdk_log.filters:
            sdk_log.addFilter(_SDK_FILTER)
        # One pooled session sized for the concurrency, instead of the SDK's small shared pool.
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:  # never show the key
        return f"DashScopeBackend(model={self._settings.model!r}, base_url={self._settings.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def prepare(self, image: CheckedImage) -> str:
        """The image as a downscaled JPEG data URI."""
        jpeg = downscale_jpeg(image, max_side=self._settings.max_side, quality=self._settings.jpeg_quality)
        return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")

    def _once(self, data_uri: str, timeout: float) -> tuple[int, str, _Attempt]:
        """One SDK call: (status, answer text, what to report if it failed)."""
        kwargs: dict[str, Any] = {"request_timeout": timeout, "session": self._session}
        if self._settings.base_url:
            kwargs["base_address"] = self._settings.base_url
        resp: Any = self._call(
            model=self._settings.model,
            messages=[{"role": "user", "content": [{"image": data_uri}, {"text": self._prompt}]}],
            api_key=self._api_key,
            **kwargs,
        )
        status = int(getattr(resp, "status_code", 0) or 0)
        rid = str(getattr(resp, "request_id", "") or "")
        if status == 200:
            return status, _answer_text(resp.output), _Attempt(status=200, request_id=rid)
        return (
            status,
            "",
            _Attempt(
                status=status,
                code=str(getattr(resp, "code", "") or ""),
                message=str(getattr(resp, "message", "") or ""),
                request_id=rid,
                retry_after=retry_after_seconds(getattr(resp, "headers", None)),
            ),
        )

    def classify(self, prepared: str, *, deadline: float, on_call: OnCall) -> BackendResult:
        s = self._settings
        attempts = s.max_retries + 1
        last = _Attempt()
        made = 0
        out_of_time = False
        for attempt in range(1, attempts + 1):
            left = deadline - self._monotonic()
            if left < MIN_ATTEMPT_SECONDS:
                out_of_time = True
                break
            made = attempt
            timeout = min(s.timeout_seconds, left)
            try:
                status, text, last = self._once(prepared, timeout)
            except (requests.RequestException, ValueError, KeyError, IndexError, TypeError) as exc:
                # Timeouts, refused connections, malformed JSON or a body without choices.
                on_call(False)
                timed_out = isinstance(exc, requests.Timeout)
                last = _Attempt(code=type(exc).__name__, message=str(exc), timed_out=timed_out)
                out_of_time = timed_out and timeout < s.timeout_seconds
            else:
                on_call(status == 200)
                if status == 200:
                    parsed = parse_answer(text, self._categories, self._fallback)
                    return BackendResult(parsed.category, parsed.confidence, parsed.certain, text[:500])
                if status != 429 and status < 500:
                    break  # 400 / 401 / 403: retrying will not help
            if attempt == attempts or out_of_time:
                break
            delay = max(s.backoff_seconds * 2 ** (attempt - 1), last.retry_after or 0.0)
            if self._monotonic() + delay > deadline - MIN_ATTEMPT_SECONDS:
                out_of_time = True
                break
            log.warning(
                "dashscope call failed (attempt %d/%d: %s %s); retrying in %.2fs",
                attempt, attempts, last.status, last.code, delay,
            )  # fmt: skip
            self._sleep(delay)
        raise self._failure(last, made, out_of_time)

    def _failure(self, last: _Attempt, attempts: int, out_of_time: bool) -> UpstreamError:
        s = self._settings
        detail = {"backend": self.name, "attempts": attempts, **last.detail()}
        what = f"DashScope model {s.model} failed after {attempts} attempt(s): {last.status} {last.code}"
        log.warning("%s %s", what, last.message[:200])
        if last.status in (429, 503):
            # The client may come back when the upstream said; without a hint, after our next backoff.
            wait = last.retry_after if last.retry_after is not None else s.backoff_seconds * 2**attempts
            cls = UpstreamThrottled if last.status == 429 else UpstreamUnavailable
            return cls(
                f"{what} (the upstream is {'throttling' if last.status == 429 else 'unavailable'}); "
                "nothing was cached: retry after the Retry-After seconds",
                retry_after=max(1.0, wait),
                **detail,
            )
        if out_of_time:
            return UpstreamTimeout(
                f"{what} and the request's deadline ran out; nothing was cached, retry later",
                **detail,
            )
        return UpstreamError(f"{what} {last.message[:300]}; the result was not cached, retry later", **detail)
