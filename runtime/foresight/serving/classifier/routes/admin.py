"""The admin page at ``/``: upload an image, see its result, today's statistics (``admin.html``)."""

from __future__ import annotations

import json
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from foresight.contract.classifier import ClassifierConfig

from .context import state_of

__all__ = ["render_admin_page", "router"]

router = APIRouter()


@router.get("/", include_in_schema=False)
async def admin(request: Request) -> HTMLResponse:
    return HTMLResponse(state_of(request).admin_page)


def render_admin_page(config: ClassifierConfig, *, auth: bool) -> str:
    """``admin.html`` with the service's categories, prompt and backend filled in."""
    template = (
        resources.files("foresight.serving.classifier").joinpath("admin.html").read_text(encoding="utf-8")
    )
    data = {
        "categories": [c.model_dump() for c in config.categories],
        "prompt": config.render_prompt(),
        "backend": config.backend.type,
        "auth": auth,
    }
    # "</" would end the <script> element early.
    return template.replace("__CONFIG_JSON__", json.dumps(data, ensure_ascii=False).replace("</", "<\\/"))
