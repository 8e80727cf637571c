"""Executions: the filterable log, one execution's detail, replay of one or many failed ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from dripdrop.channels.base import CHANNELS
from dripdrop.errors import DripDropError, ValidationError
from dripdrop.web.dashboard import queries
from dripdrop.web.dashboard.pages.common import (
    Form,
    call,
    dd_of,
    execution_of,
    parse_id,
    redirect,
    router,
    run,
    tenant,
    who,
)
from dripdrop.web.dashboard.render import page
from dripdrop.web.routes.executions import STATES, executions_query

pages = router()
PAGE = 50


def _time(value: str, field: str) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError.single(field, "is not a date and time (2026-01-31T09:00)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _log(request: Request, statement: Any, adapter_id: Any) -> list[Any]:
    with dd_of(request).runtime.engine.begin() as conn:
        return queries.executions(conn, statement, adapter_id)


@pages.get("/executions")
async def executions(request: Request) -> Response:
    q = request.query_params
    state = q.get("state") or None
    if state is not None and state not in STATES:
        raise ValidationError.single("state", f"must be one of {', '.join(STATES)}")
    channel = q.get("channel") or None
    if channel is not None and channel not in CHANNELS:
        raise ValidationError.single("channel", f"must be one of {', '.join(CHANNELS)}")
    sequence_id = parse_id(q["sequence"], "sequence") if q.get("sequence") else None
    adapter_id = parse_id(q["adapter"], "adapter") if q.get("adapter") else None
    after = parse_id(q["after"], "after") if q.get("after") else None
    # A global session sees every tenant's executions; a tenant's, only its own.
    statement = executions_query(
        who(request),
        state=state,
        channel=channel,
        sequence_id=sequence_id,
        since=_time(q.get("since", ""), "since"),
        until=_time(q.get("until", ""), "until"),
        after=after,
        limit=PAGE,
    )
    items = await run(_log, request, statement, adapter_id)
    next_query = None
    if len(items) > PAGE:
        items = items[:PAGE]
        next_query = urlencode(
            {**{k: v for k, v in q.items() if k != "after"}, "after": str(items[-1].id)}
        )
    return page(
        request,
        "executions.html",
        section="executions",
        items=items,
        q=dict(q),
        states=STATES,
        channels=CHANNELS,
        next_query=next_query,
        sequences=await call(request, "list_sequences", tenant_key=tenant(request)),
        adapters=await call(request, "list_channel_adapters", tenant_key=tenant(request)),
        replayed=q.get("replayed"),
        failed_replays=q.get("failed_replays"),
    )


@pages.get("/executions/{execution_id}")
async def execution(request: Request, execution_id: str) -> Response:
    found = await execution_of(request, execution_id)
    enrollment = await call(request, "get_enrollment_by_id", found.enrollment_id)
    step = await call(request, "get_step", found.step_id)
    return page(
        request, "execution.html", section="executions", x=found, enrollment=enrollment, step=step
    )


@pages.post("/executions/{execution_id}/replay")
async def replay(request: Request, execution_id: str) -> Response:
    found = await execution_of(request, execution_id)
    again = await call(request, "replay", found.id)
    return redirect(request, f"/executions/{again.id}")


@pages.post("/executions/replay")
async def replay_many(request: Request) -> Response:
    """Replay every checked failed execution; those that cannot be replayed are counted."""
    form = await Form.of(request)
    done = failed = 0
    for raw in form.all("ids")[:PAGE]:
        try:
            found = await execution_of(request, parse_id(raw, "ids"))
            await call(request, "replay", found.id)
            done += 1
        except DripDropError:
            failed += 1
    return redirect(request, f"/executions?state=failed&replayed={done}&failed_replays={failed}")
