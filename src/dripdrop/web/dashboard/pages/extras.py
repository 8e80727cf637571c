"""The entry point of the AI template builder (the ``ai`` extra)."""

from __future__ import annotations

import importlib
import importlib.util

from fastapi import Request
from fastapi.responses import Response

from dripdrop.web.dashboard.pages.common import router
from dripdrop.web.dashboard.render import page

pages = router()


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


@pages.get("/template-builder")
async def template_builder(request: Request) -> Response:
    available = False
    if _module_exists("dripdrop.ai"):
        ai = importlib.import_module("dripdrop.ai")
        available = bool(getattr(ai, "available", lambda: False)())
    return page(request, "template_builder.html", section="template_builder", available=available)
