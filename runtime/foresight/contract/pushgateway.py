"""Where a Pushgateway keeps a group: the URL both the runtime (push) and the operator (delete) use.

A group is ``job`` plus a grouping key (a ForecastTask's is
:func:`foresight.contract.forecast.pushgateway_group`); its URL is
``<gateway>/metrics/job/<job>/<label>/<value>...``, labels sorted, in the Pushgateway's path
encoding: a value with ``/`` or a space is base64url with the label suffixed ``@base64``, an empty
value is ``@base64/=``, anything else is URL-quoted (the same rules as ``prometheus_client``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from urllib.parse import quote_plus, urlparse

__all__ = ["group_url"]


def _segment(label: str, value: str) -> str:
    if value == "":
        return f"{label}@base64/="
    if "/" in value or " " in value:
        return f"{label}@base64/{base64.urlsafe_b64encode(value.encode()).decode()}"
    return f"{label}/{quote_plus(value)}"


def group_url(gateway_url: str, *, job: str, grouping_key: Mapping[str, str]) -> str:
    """The URL of group ``job`` + ``grouping_key`` on the Pushgateway at ``gateway_url``.

    A gateway given without a scheme (``pgw:9091``) is reached over plain HTTP.
    """
    gateway = gateway_url if urlparse(gateway_url).scheme in ("http", "https") else f"http://{gateway_url}"
    path = "/".join(_segment(str(k), str(v)) for k, v in [("job", job), *sorted(grouping_key.items())])
    return f"{gateway.rstrip('/')}/metrics/{path}"
