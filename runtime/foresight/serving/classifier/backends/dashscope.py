"""The DashScope backend: Alibaba's Qwen-VL models through the official ``dashscope`` SDK.

The image is downscaled and sent inline as a JPEG data URI (a ``file://`` image would go through
an OSS upload first). The SDK does not retry and its default timeout is 300 s, so this module
retries 429 / 5xx / timeouts with exponential backoff and always passes ``request_timeout``.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import requests

from foresight.api.classifierservice import Category
from foresight.contract.classifier import DashScopeConfig

from ..answers import parse_answer
from ..errors import ConfigError, UpstreamError
from ..images import CheckedImage, downscale_jpeg
from .base import BackendResult, ClassifierBackend

__all__ = ["DashScopeBackend"]

log = logging.getLogger(__name__)


def _answer_text(output: Any) -> str:
    """The text of the first choice of a multimodal-generation response."""
    choices = output["choices"] if isinstance(output, dict) else output.choices
    message = choices[0]["message"]
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


class DashScopeBackend(ClassifierBackend):
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
        # The SDK logs whole request bodies (the image) at DEBUG: keep it at INFO so no image bytes
        # reach the logs even when the root logger is verbose.
        logging.getLogger("dashscope").setLevel(max(logging.INFO, logging.getLogger("dashscope").level))
        # One pooled session sized for the concurrency, instead of the SDK's small shared pool.
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:  # never show the key
        return f"DashScopeBackend(model={self._settings.model!r}, base_url={self._settings.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def _once(self, data_uri: str) -> tuple[int, str, str, str]:
        """One SDK call: (status, text-or-message, code, request_id)."""
        kwargs: dict[str, Any] = {"request_timeout": self._settings.timeout_seconds, "session": self._session}
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
            return status, _answer_text(resp.output), "", rid
        return status, str(getattr(resp, "message", "") or ""), str(getattr(resp, "code", "") or ""), rid

    def classify(self, image: CheckedImage) -> BackendResult:
        jpeg = downscale_jpeg(image, max_side=self._settings.max_side, quality=self._settings.jpeg_quality)
        data_uri = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
        attempts = self._settings.max_retries + 1
        last: dict[str, Any] = {}
        for attempt in range(1, attempts + 1):
            try:
                status, text, code, rid = self._once(data_uri)
            except (requests.RequestException, ValueError, KeyError, IndexError, TypeError) as exc:
                # Timeouts, refused connections, malformed JSON or a body without choices.
                last = {
                    "upstream_status": None,
                    "upstream_code": type(exc).__name__,
                    "upstream_message": str(exc)[:300],
                }
            else:
                if status == 200:
                    parsed = parse_answer(text, self._categories, self._fallback)
                    return BackendResult(parsed.category, parsed.confidence, text[:500])
                last = {
                    "upstream_status": status,
                    "upstream_code": code,
                    "upstream_message": text[:300],
                    "upstream_request_id": rid,
                }
                if status != 429 and status < 500:
                    break  # 400 / 401 / 403: retrying will not help
            if attempt < attempts:
                delay = self._settings.backoff_seconds * 2 ** (attempt - 1)
                log.warning(
                    "dashscope call failed (attempt %d/%d, %s %s); retrying in %.2fs",
                    attempt,
                    attempts,
                    last.get("upstream_status"),
                    last.get("upstream_code"),
                    delay,
                )
                self._sleep(delay)
        raise UpstreamError(
            f"DashScope model {self._settings.model} failed after {attempt} attempt(s): "
            f"{last.get('upstream_status')} {last.get('upstream_code')} {last.get('upstream_message')}; "
            "the result was not cached, retry later",
            backend=self.name,
            attempts=attempt,
            **last,
        )
