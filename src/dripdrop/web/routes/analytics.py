"""Analytics (``read``): a sequence's funnel and delivery performance, and adapter health.

Both are answered from the hourly rollups (dripdrop.engine.analytics), never by scanning
executions. A bound key sees only its tenant's sequences and adapters (another tenant's: 404).
This router is included before the definitions router: ``/adapters/health`` must not be taken
for ``/adapters/{adapter_id}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from dripdrop.web.auth import Principal, require
from dripdrop.web.encode import encode
from dripdrop.web.routes.common import dd_of
from dripdrop.web.routes.sequences import sequence

router = APIRouter(tags=["analytics"])


@router.get("/sequences/{sequence_id}/analytics")
async def sequence_analytics(
    sequence_id: str,
    request: Request,
    who: Principal = require("read"),
    version_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Any:
    """The version's funnel (enrolled → each step → completed / exited / cancelled), drop-off
    per step, and delivery performance per channel and per provider over [since, until)
    (RFC 3339 times with an offset; the last 30 days by default), rounded out to whole hours.
    ``version_id`` defaults to the active version; ``versions`` lists each version's totals."""

    def answer() -> Any:
        found = sequence(request, who, sequence_id)
        return dd_of(request).sequence_analytics(
            found.id, version_id=version_id, since=since, until=until
        )

    return encode(await run_in_threadpool(answer))


@router.get("/adapters/health")
async def adapter_health(
    request: Request,
    who: Principal = require("read"),
    adapter_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Per channel adapter: sends, error rate, p50/p95 latency (ms) over [since, until) (the
    last 24 hours by default). A bound key sees its tenant's adapters; others every tenant's."""
    scope: dict[str, Any] = {"tenant_key": who.tenant_key} if who.bound else {"every_tenant": True}
    items = await run_in_threadpool(
        dd_of(request).adapter_health, adapter_id, since=since, until=until, **scope
    )
    return {"items": encode(items), "next_cursor": None}
