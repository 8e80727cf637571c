"""REST routes: executions, notifications (and their SSE stream), simulate.

``GET /executions`` lists newest first by id. Execution ids are UUIDv7 (time-ordered, see
dripdrop.ids), so ``ORDER BY id DESC`` is creation order and is served by the primary-key index
``pk_step_executions`` (an Index Scan Backward, no sort; ``since``/``until`` become bounds of
that scan); the filters (state, channel, tenant, sequence) are applied to the rows it walks,
and the LIMIT stops it early. No other index of ``step_executions`` fits: ``ix_..._due`` holds
only scheduled work, ``ix_..._finished`` only sent and failed work by time, the others lead with
an enrollment or step id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import Field
from sqlalchemy import and_, case, func, or_, tuple_
from sse_starlette.sse import EventSourceResponse

from dripdrop.definitions.common import as_uuid
from dripdrop.definitions.inputs import check_identifier
from dripdrop.definitions.sequences import get_sequence_row
from dripdrop.engine.notifications import topic_channel
from dripdrop.engine.simulate import MAX_UNTIL
from dripdrop.errors import NotFound, ValidationError
from dripdrop.inbound.events import EVENT_TYPES
from dripdrop.records import DeliveryEvent, Notification, StepExecution, from_row
from dripdrop.web.auth import Principal, require
from dripdrop.web.encode import encode, parse_cursor
from dripdrop.web.routes.common import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Body,
    dd_of,
    m,
    page,
    rows,
    select,
)

router = APIRouter(tags=["executions"])
X = m.StepExecution.__table__
E = m.Enrollment.__table__
N = m.Notification.__table__
D = m.DeliveryEvent.__table__

STATES = ("scheduled", "sending", "sent", "failed", "skipped", "cancelled")
# A scheduled row under a live lease is being delivered right now: it is "sending".
_LEASED = and_(X.c.state == "scheduled", X.c.locked_until > func.clock_timestamp())
_LIVE_STATE = case((_LEASED, "sending"), else_=X.c.state).label("live_state")


def _uuid7_floor(when: datetime) -> uuid.UUID:
    """The smallest UUIDv7 made at or after ``when`` (its top 48 bits are Unix milliseconds)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ms = max(0, int(when.timestamp() * 1000))
    return uuid.UUID(int=min(ms, (1 << 48) - 1) << 80)


def executions_query(
    who: Principal,
    *,
    state: str | None = None,
    channel: str | None = None,
    sequence_id: Any = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: uuid.UUID | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Any:
    """The statement behind ``GET /executions`` (one page plus one row)."""
    stmt = select(X, _LIVE_STATE).order_by(X.c.id.desc()).limit(limit + 1)
    if who.bound:
        stmt = stmt.where(X.c.tenant_key == who.tenant_key)
    if state == "sending":
        stmt = stmt.where(_LEASED)
    elif state == "scheduled":
        stmt = stmt.where(X.c.state == "scheduled", ~func.coalesce(_LEASED, False))
    elif state is not None:
        stmt = stmt.where(X.c.state == state)
    if channel is not None:
        stmt = stmt.where(X.c.channel == channel)
    if sequence_id is not None:
        stmt = stmt.where(
            X.c.enrollment_id.in_(select(E.c.id).where(E.c.sequence_id == sequence_id))
        )
    if since is not None:
        stmt = stmt.where(X.c.id >= _uuid7_floor(since))
    if until is not None:
        stmt = stmt.where(X.c.id < _uuid7_floor(until))
    if after is not None:
        stmt = stmt.where(X.c.id < after)
    return stmt


def _execution(row: Any) -> StepExecution:
    return from_row(StepExecution, row, state=row.live_state)


@router.get("/executions")
def list_executions(
    request: Request,
    who: Principal = require("read"),
    state: str | None = None,
    channel: str | None = None,
    sequence_key: str | None = None,
    tenant_key: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = None,
    delivery_status: str | None = None,
) -> dict[str, Any]:
    """Executions, newest first. ``since``/``until`` bound the time each was created (read
    from its time-ordered id); ``tenant_key`` picks the tenant of ``sequence_key``;
    ``delivery_status`` (delivered, bounced, complained, opened…) what providers reported."""
    if delivery_status is not None and delivery_status not in EVENT_TYPES:
        raise ValidationError.single("delivery_status", f"must be one of {', '.join(EVENT_TYPES)}")
    if state is not None and state not in STATES:
        raise ValidationError.single("state", f"must be one of {', '.join(STATES)}")
    if channel is not None:
        check_identifier(channel, "channel")
    parts = parse_cursor(cursor, 1)
    after = as_uuid(parts[0], "cursor") if parts else None
    sequence_id = None
    if sequence_key is not None:
        with dd_of(request).runtime.engine.begin() as conn:
            sequence_id = get_sequence_row(conn, sequence_key, who.tenant_for(tenant_key)).id
    stmt = executions_query(
        who,
        state=state,
        channel=channel,
        sequence_id=sequence_id,
        since=since,
        until=until,
        after=after,
        limit=limit,
    )
    if delivery_status is not None:
        stmt = stmt.where(X.c.delivery_status == delivery_status)
    items = [_execution(r) for r in rows(request, stmt)]
    return page(items, limit, lambda x: (x.id,))


def execution(request: Request, who: Principal, execution_id: str) -> StepExecution:
    return who.owns(dd_of(request).get_execution(as_uuid(execution_id, "execution_id")))


@router.get("/executions/{execution_id}")
def get_execution(execution_id: str, request: Request, who: Principal = require("read")) -> Any:
    return encode(execution(request, who, execution_id))


@router.get("/executions/{execution_id}/delivery-events")
def list_delivery_events(
    execution_id: str,
    request: Request,
    who: Principal = require("read"),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = None,
) -> dict[str, Any]:
    """What providers reported about an execution (``POST /inbound/…``), oldest first."""
    found = execution(request, who, execution_id)
    stmt = (
        select(D)
        .where(D.c.execution_id == found.id)
        .order_by(D.c.occurred_at, D.c.id)
        .limit(limit + 1)
    )
    if after := parse_cursor(cursor, 2):
        try:
            at = datetime.fromisoformat(str(after[0]))
        except ValueError:
            raise ValidationError.single("cursor", "is not a cursor this list returned") from None
        stmt = stmt.where(tuple_(D.c.occurred_at, D.c.id) > tuple_(at, as_uuid(after[1], "cursor")))
    items = [from_row(DeliveryEvent, r) for r in rows(request, stmt)]
    return page(items, limit, lambda e: (e.occurred_at, e.id))


@router.post("/executions/{execution_id}/replay", status_code=201)
def replay(execution_id: str, request: Request, who: Principal = require("write")) -> Any:
    """Run a failed execution again, as a new execution (422 unless it failed)."""
    found = execution(request, who, execution_id)
    return encode(dd_of(request).replay(found.id))


# --- notifications ------------------------------------------------------------------------


def _tenant_filter(who: Principal) -> Any:
    """Notifications of the caller's tenant: their own tenant_key, or their enrollment's."""
    return or_(
        N.c.tenant_key == who.tenant_key,
        N.c.enrollment_id.in_(select(E.c.id).where(E.c.tenant_key == who.tenant_key)),
    )


def _visible(request: Request, who: Principal, notification_id: Any) -> Any:
    """The notification's row, or NotFound (also for another tenant's)."""
    stmt = select(N).where(N.c.id == as_uuid(notification_id, "notification_id"))
    if who.bound:
        stmt = stmt.where(_tenant_filter(who))
    found = rows(request, stmt)
    if not found:
        raise NotFound(f"notification {notification_id} not found")
    return found[0]


@router.get("/notifications")
def list_notifications(
    request: Request,
    who: Principal = require("read"),
    topic: str | None = None,
    unread_only: bool = False,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = None,
) -> dict[str, Any]:
    """The in-app inbox (pub/sub provider ``postgres``), newest first; a topic's notifications
    when ``topic`` is given (served by ``ix_notifications_topic``)."""
    if topic is not None:
        check_identifier(topic, "topic")
    after = parse_cursor(cursor, 2)
    stmt = select(N).order_by(N.c.inserted_at.desc(), N.c.id.desc()).limit(limit + 1)
    if topic is not None:
        stmt = stmt.where(N.c.topic == topic)
    if unread_only:
        stmt = stmt.where(N.c.read_at.is_(None))
    if who.bound:
        stmt = stmt.where(_tenant_filter(who))
    if after:
        try:
            at = datetime.fromisoformat(str(after[0]))
        except ValueError:
            raise ValidationError.single("cursor", "is not a cursor this list returned") from None
        stmt = stmt.where(tuple_(N.c.inserted_at, N.c.id) < tuple_(at, as_uuid(after[1], "cursor")))
    items = [from_row(Notification, r) for r in rows(request, stmt)]
    return page(items, limit, lambda n: (n.inserted_at, n.id))


@router.post("/notifications/{notification_id}/read")
def mark_read(notification_id: str, request: Request, who: Principal = require("write")) -> Any:
    """Mark a notification read (already read: unchanged); answers the notification."""
    found = _visible(request, who, notification_id)
    dd_of(request).mark_read(found.id)
    return encode(from_row(Notification, _visible(request, who, found.id)))


def _message(row: Any) -> dict[str, Any]:
    """A notification as the stream sends it (the NOTIFY payload's shape)."""
    return {
        "id": str(row.id),
        "topic": row.topic,
        "event": row.event,
        "payload": encode(row.payload),
    }


def _stored_after(request: Request, who: Principal, topic: str, last_id: uuid.UUID) -> list[Any]:
    """The topic's notifications stored after ``last_id`` (none when it is unknown)."""
    last = N.alias("last")
    stmt = (
        select(N)
        .select_from(N.join(last, last.c.id == last_id))
        .where(
            N.c.topic == topic,
            tuple_(N.c.inserted_at, N.c.id) > tuple_(last.c.inserted_at, last.c.id),
        )
        .order_by(N.c.inserted_at, N.c.id)
        .limit(10_000)
    )
    if who.bound:
        stmt = stmt.where(_tenant_filter(who))
    return rows(request, stmt)


@router.get("/notifications/stream", response_class=EventSourceResponse)
async def notification_stream(
    request: Request,
    topic: str = Query(...),
    who: Principal = require("read"),
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
) -> Any:
    """Server-Sent Events: each new notification of ``topic`` as it is stored (``id`` is the
    notification's id, ``data`` is ``{id, topic, event, payload}``), from PostgreSQL
    LISTEN/NOTIFY. A reconnect with ``Last-Event-ID`` first gets those stored since that one."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    check_identifier(topic, "topic")
    last_id = as_uuid(last_event_id, "Last-Event-ID") if last_event_id else None
    rt = dd_of(request).runtime
    dsn = (
        make_url(rt.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        channel = topic_channel(rt.schema, topic)
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        # Listening before reading the backlog: nothing stored meanwhile is missed (the
        # ids already sent are skipped if they come again).
        backlog = (
            await run_in_threadpool(_stored_after, request, who, topic, last_id) if last_id else []
        )
    except BaseException:
        await conn.close()
        raise

    async def visible(message: dict[str, Any]) -> dict[str, Any] | None:
        """The full message (NOTIFY leaves out payloads above 8 kB), None when not ours."""
        if not who.bound and "payload" in message:
            return message
        stmt = select(N).where(N.c.id == as_uuid(message.get("id"), "id"))
        if who.bound:
            stmt = stmt.where(_tenant_filter(who))
        found = await run_in_threadpool(rows, request, stmt)
        return _message(found[0]) if found else None

    async def events() -> Any:
        try:
            sent: set[str] = set()
            for row in backlog:
                sent.add(str(row.id))
                yield {"id": str(row.id), "data": json.dumps(_message(row))}
            async for note in conn.notifies():
                try:
                    message = json.loads(note.payload)
                except ValueError:
                    continue
                if not isinstance(message, dict) or message.get("id") in sent:
                    continue
                full = await visible(message)
                if full is not None:
                    yield {"id": full["id"], "data": json.dumps(full)}
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(conn.close())

    return EventSourceResponse(events(), ping=15)


# --- simulate -----------------------------------------------------------------------------


#: How far a simulation may look (simulate's own limit, 3,660 days), in seconds.
MAX_SECONDS = MAX_UNTIL.total_seconds()


class SimulatedEvent(Body):
    after_seconds: float = Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    event_key: str
    event_data: dict[str, Any] | None = None


class SimulateIn(Body):
    data: dict[str, Any] | None = None
    events: list[SimulatedEvent] = []
    until_seconds: float | None = Field(None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    start: datetime | None = None
    subscriber: dict[str, Any] | None = None
    hook_values: dict[str, Any] | None = None
    tenant_key: str | None = None
    version_id: str | None = None


@router.post("/sequences/{key}/simulate")
def simulate(key: str, body: SimulateIn, request: Request, who: Principal = require("read")) -> Any:
    """What a subscriber with ``data`` would get, without sending or storing anything:
    ``{"entries": [{at, kind, step_key, channel, detail, recipient, payload}], "final_state"}``.
    ``events`` happen ``after_seconds`` after the start; ``until_seconds`` (default 30 days)
    is how far to look; ``version_id`` runs that version (a draft) instead of the active one."""
    events = [(timedelta(seconds=e.after_seconds), e.event_key, e.event_data) for e in body.events]
    until = timedelta(seconds=body.until_seconds) if body.until_seconds is not None else None
    timeline = dd_of(request).simulate(
        key,
        data=body.data,
        events=events,
        until=until,
        start=body.start,
        tenant_key=who.tenant_for(body.tenant_key),
        hook_values=body.hook_values,
        subscriber=body.subscriber,
        version_id=body.version_id,
    )
    return {"entries": encode(timeline.entries), "final_state": timeline.final_state}
