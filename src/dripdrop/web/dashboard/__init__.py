"""The dashboard: server-rendered pages (Jinja2 + htmx) at the web app's root.

``install(app)`` adds its routes and its static files (htmx, its SSE extension, one CSS and one
JS file, all inside the wheel) to the app made by :func:`dripdrop.web.create_app`. See
docs/dashboard.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Serve the dashboard from ``app`` (its ``state.dd`` and ``state.authorize``)."""
    from dripdrop.web.dashboard.pages import ROUTERS

    app.state.dashboard_keys = {}  # key id → (checked at, still a live admin key)
    app.mount("/static", StaticFiles(directory=STATIC), name="dashboard-static")
    for router in ROUTERS:
        app.include_router(router)


__all__ = ["install"]
