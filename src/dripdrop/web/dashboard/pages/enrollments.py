"""Enrollments: search and filter; one enrollment's timeline (what happened, and what is planned
according to simulate); pause, resume, unenroll, track an event."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from dripdrop.errors import DripDropError, ValidationError
from dripdrop.web.dashboard import queries
from dripdrop.web.dashboard.pages.common import (
    Form,
    call,
    dd_of,
    enrollment_of,
    parse_id,
    redirect,
    router,
    run,
    tenant,
    who,
)
from dripdrop.web.dashboard.pages.sequences import sequence_by_id
from dripdrop.web.dashboard.render import page

pages = router()
STATES = ("active", "paused", "completed", "cancelled")
PAGE = 50
#: How far past now the planned future of an enrollment is simulated.
_HORIZON = timedelta(days=90)


def _search(request: Request, **filters: Any) -> list[Any]:
    with dd_of(request).runtime.engine.begin() as conn:
        return queries.search_enrollments(conn, limit=PAGE, **filters)


@pages.get("/enrollments")
async def enrollments(request: Request) -> Response:
    q = request.query_params
    filters: dict[str, Any] = {"subscriber": q.get("subscriber", "").strip() or None}
    if who(request).bound:
        filters["tenant_key"] = tenant(request)
    if q.get("sequence"):
        filters["sequence_id"] = parse_id(q["sequence"], "sequence")
    if q.get("version"):
        filters["version_id"] = parse_id(q["version"], "version")
    if q.get("state"):
        if q["state"] not in STATES:
            raise ValidationError.single("state", f"must be one of {', '.join(STATES)}")
        filters["state"] = q["state"]
    if q.get("before"):
        filters["before"] = parse_id(q["before"], "before")
    items = await run(_search, request, **filters)
    more = len(items) > PAGE
    items = items[:PAGE]
    sequences = await call(request, "list_sequences", tenant_key=tenant(request))
    names = {s.id: s for s in sequences}
    next_query = None
    if more:
        params = {k: v for k, v in q.items() if k != "before"}
        params["before"] = str(items[-1].id)
        from urllib.parse import urlencode

        next_query = urlencode(params)
    return page(
        request,
        "enrollments.html",
        section="enrollments",
        items=items,
        sequences=sequences,
        names=names,
        states=STATES,
        q=dict(q),
        next_query=next_query,
    )


def _events(request: Request, enrollment_id: Any) -> list[Any]:
    with dd_of(request).runtime.engine.begin() as conn:
        return queries.enrollment_events(conn, enrollment_id)


async def _planned(request: Request, enrollment: Any, seq: Any, events: list[Any]) -> Any:
    """The enrollment's future according to simulate: its version (active or not) replayed from
    its start with its data and the events it had, keeping what comes after now. None when it
    cannot be run (finished)."""
    if enrollment.state not in ("active", "paused"):
        return None
    now = dd_of(request).runtime.now()
    start = enrollment.started_at
    past = [
        (e.occurred_at - start, e.event_key, e.event_data)
        for e in events
        if e.occurred_at and e.occurred_at >= start
    ]
    try:
        timeline = await call(
            request,
            "simulate",
            seq.key,
            data=enrollment.data or {},
            events=past,
            start=start,
            until=(now - start) + _HORIZON,
            tenant_key=seq.tenant_key,
            version_id=enrollment.sequence_version_id,
        )
    except DripDropError:
        return None
    return [e for e in timeline.entries if e.at > now and e.kind != "event"]


@pages.get("/enrollments/{enrollment_id}")
async def enrollment(request: Request, enrollment_id: str) -> Response:
    found = await enrollment_of(request, enrollment_id)
    seq = await sequence_by_id(request, found.sequence_id)
    executions = await call(request, "list_executions", found.id)
    events = await run(_events, request, found.id)
    steps = {s.id: s for s in await call(request, "list_steps", found.sequence_version_id)}
    planned = await _planned(request, found, seq, events)
    return page(
        request,
        "enrollment.html",
        section="enrollments",
        e=found,
        seq=seq,
        executions=executions,
        events=events,
        steps=steps,
        planned=planned,
        error=request.query_params.get("error"),
    )


@pages.post("/enrollments/{enrollment_id}/{action}")
async def act(request: Request, enrollment_id: str, action: str) -> Response:
    found = await enrollment_of(request, enrollment_id)
    form = await Form.of(request)
    if action == "pause":
        await call(request, "pause_enrollment", found.id)
    elif action == "resume":
        await call(request, "resume_enrollment", found.id)
    elif action == "unenroll":
        seq = await sequence_by_id(request, found.sequence_id)
        await call(
            request,
            "unenroll",
            seq.key,
            found.subscriber_type,
            found.subscriber_id,
            tenant_key=found.tenant_key,
        )
    elif action == "events":
        errors: dict[str, list[str]] = {}
        data = form.json("event_data", errors, None)
        if errors:
            raise ValidationError(errors)
        await call(
            request,
            "track_event",
            found.id,
            form.get("event_key").strip(),
            data,
            tenant_key=found.tenant_key,
        )
    else:
        from dripdrop.errors import NotFound

        raise NotFound(f"no action {action!r}")
    return redirect(request, f"/enrollments/{found.id}")
