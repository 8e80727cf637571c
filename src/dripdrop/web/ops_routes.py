"""``/health`` (no key) and ``/metrics`` (Prometheus) of the web app.

``/metrics`` shows this process's metrics (the web app's, and a worker's when one runs in the
same process) and the queue gauges (due now, oldest due), refreshed at most every 15 s however
often it is scraped. Who may read it, by ``create_app`` options:

- by default, an API key with the ``read`` scope (``admin`` implies it) or, if set, the
  ``metrics_token`` (``Authorization: Bearer <metrics_token>``; env ``DRIPDROP_METRICS_TOKEN``
  for ``dripdrop web``), so a Prometheus server needs no API key;
- ``metrics_public=True``: anyone who can reach the app (behind a private network only).

Metrics carry schema, channel, provider, outcome and hook kind as labels: never an id, a
recipient or a tenant's data.
"""

from __future__ import annotations

import contextlib
import hmac
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

#: ``/health`` says ``lag: behind`` when the oldest due execution waits longer than this.
LAG_WARNING_SECONDS = 60.0


def health_status(dd: Any) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 200 while the database answers, 503 when it does not. The body
    has the schedule lag (seconds the oldest due execution has waited), never a secret."""
    from dripdrop.ops.queue import due_summary

    rt = dd.runtime
    try:
        with rt.engine.connect() as conn:
            _, oldest = due_summary(conn, rt.schema, rt.now(), cap=1000)
    except Exception:
        return 503, {"status": "degraded", "database": "unreachable"}
    lag = round(oldest or 0.0, 3)
    return 200, {
        "status": "ok",
        "database": "ok",
        "lag_seconds": lag,
        "lag": "behind" if lag > LAG_WARNING_SECONDS else "ok",
    }


def install(app: FastAPI, *, metrics_token: str | None, metrics_public: bool) -> None:
    """Add ``/health`` and ``/metrics`` to ``app`` (whose ``state.dd`` is set)."""

    @app.get("/health", tags=["health"])
    async def health() -> JSONResponse:
        """Liveness, database reachability and schedule lag (no API key needed)."""
        code, body = await run_in_threadpool(health_status, app.state.dd)
        return JSONResponse(body, status_code=code)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not metrics_public:
            await _authorize(request, metrics_token)
        from dripdrop.observability import metrics as m

        # A failed refresh keeps the gauges' last values: the rest is still worth a scrape.
        with contextlib.suppress(Exception):
            await run_in_threadpool(m.refresh_due, app.state.dd.runtime)
        body, content_type = m.exposition()
        return Response(body, media_type=content_type)


async def _authorize(request: Request, metrics_token: str | None) -> None:
    """The metrics token, or an API key with ``read``; else 401/403 (problem+json)."""
    from dripdrop.web.auth import _token, principal

    token = _token(request)
    if metrics_token and token and hmac.compare_digest(token.encode(), metrics_token.encode()):
        return
    who = await principal(request)
    if "read" not in who.scopes:
        raise HTTPException(403, "this API key lacks the 'read' scope")
