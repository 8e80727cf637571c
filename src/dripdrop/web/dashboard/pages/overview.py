"""Overview: what the engine is doing now, live (Server-Sent Events, htmx's SSE extension)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sse_starlette.sse import EventSourceResponse

from dripdrop.web.dashboard import queries
from dripdrop.web.dashboard.pages.common import dd_of, router, run, tenant, who
from dripdrop.web.dashboard.render import env, page

pages = router()
#: Seconds between two updates of the live numbers.
REFRESH_SECONDS = 2.0
#: A stream ends after this long (the browser reconnects): no connection lives forever.
STREAM_SECONDS = 300.0


def _numbers(request: Request) -> queries.Overview:
    """The overview's numbers, shared by every open overview of this app with the same scope
    for REFRESH_SECONDS (ten open dashboards cost the database one read every two seconds, not
    ten). A global session counts every tenant's work; a tenant's session only its own."""
    scope = tenant(request) if who(request).bound else queries.EVERY_TENANT
    key = ("tenant", scope) if scope is not queries.EVERY_TENANT else ("every",)
    state = request.app.state
    cache: dict[tuple[Any, ...], tuple[float, queries.Overview]] | None = getattr(
        state, "dashboard_overview", None
    )
    if cache is None:
        cache = state.dashboard_overview = {}
    cached = cache.get(key)
    now = time.monotonic()
    if cached is not None and now - cached[0] < REFRESH_SECONDS * 0.9:
        return cached[1]
    rt = dd_of(request).runtime
    with rt.engine.begin() as conn:
        numbers = queries.overview(conn, rt.now(), scope)
    if len(cache) > 1000:  # one entry per tenant with an open overview
        cache.clear()
    cache[key] = (now, numbers)
    return numbers


def _chart(numbers: queries.Overview) -> dict[str, Any]:
    """Bars of the sends-per-minute chart, in SVG user units (drawn without inline styles)."""
    peak = max((n for _, n in numbers.per_minute), default=0) or 1
    width, height, gap = 300, 60, 2
    step = width / max(len(numbers.per_minute), 1)
    bars = []
    for i, (at, n) in enumerate(numbers.per_minute):
        h = round(height * n / peak, 1) if n else 0
        bars.append(
            {
                "x": round(i * step, 1),
                "w": round(step - gap, 1),
                "h": h,
                "y": height - h,
                "label": f"{at:%H:%M} UTC: {n} sent",
            }
        )
    return {"bars": bars, "width": width, "height": height, "peak": peak}


def _stats_html(request: Request, numbers: queries.Overview) -> str:
    return env.get_template("_overview_stats.html").render(
        n=numbers, chart=_chart(numbers), base=(request.scope.get("root_path") or "").rstrip("/")
    )


@pages.get("/")
async def overview(request: Request) -> Response:
    numbers = await run(_numbers, request)
    return page(
        request,
        "overview.html",
        section="overview",
        stats=_stats_html(request, numbers),
        n=numbers,
    )


@pages.get("/overview/stats")
async def stats(request: Request) -> Response:
    """The live block alone (what the stream sends; also for clients without SSE)."""
    from fastapi.responses import HTMLResponse

    return HTMLResponse(_stats_html(request, await run(_numbers, request)))


@pages.get("/overview/stream")
async def stream(request: Request) -> Response:
    """``event: stats`` with the live block's HTML every REFRESH_SECONDS, while it changes."""

    async def events() -> AsyncIterator[dict[str, str]]:
        last = None
        loop = asyncio.get_running_loop()
        until = loop.time() + STREAM_SECONDS
        while loop.time() < until and not await request.is_disconnected():
            html = _stats_html(request, await run(_numbers, request))
            if html != last:
                last = html
                yield {"event": "stats", "data": html}
            await asyncio.sleep(REFRESH_SECONDS)

    return EventSourceResponse(events(), ping=15)
