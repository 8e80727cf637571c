"""The few reads the dashboard needs that no public operation answers: the overview's live
numbers, enrollment search, an enrollment's events, the execution log with the dashboard's
filters. Each runs under a short statement timeout so a page can never hang on a huge table.

The overview reads only indexed paths: due work and its lag walk the partial index
``ix_step_executions_due`` (bounded by LIMIT); sends and failures of the last hour are one range
scan of the partial index ``ix_step_executions_finished`` (``executed_at`` of sent and failed
executions, migration 0015), so their cost follows the last hour's traffic, not the table's size
(``bench/overview.py`` measures it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, text

from dripdrop.db import models as m
from dripdrop.definitions.common import tenant_clause
from dripdrop.records import Enrollment, Event, StepExecution, from_row

X = m.StepExecution.__table__
E = m.Enrollment.__table__
EV = m.Event.__table__
S = m.Sequence.__table__
#: A count above this is shown as "10,000+": counting further costs more than it tells.
COUNT_CAP = 10_000
#: The sends-per-minute chart covers this many minutes.
CHART_MINUTES = 30
#: ``tenant_key`` of a read that is not limited to one tenant (a global session's).
EVERY_TENANT: Any = object()
#: The states the overview counts as finished work (sends, and failures).
FINISHED = ("sent", "failed")


def _timeout(conn: Connection, ms: int = 2000) -> None:
    conn.execute(text(f"SET LOCAL statement_timeout = {int(ms)}"))


@dataclass
class ChannelHealth:
    channel: str
    sent: int = 0
    failed: int = 0
    due: int = 0

    @property
    def error_rate(self) -> float:
        done = self.sent + self.failed
        return self.failed / done if done else 0.0


@dataclass
class Overview:
    now: datetime
    per_minute: list[tuple[datetime, int]] = field(default_factory=list)
    due_now: int = 0
    in_flight: int = 0
    failed_last_hour: int = 0
    oldest_due_lag: timedelta | None = None
    channels: list[ChannelHealth] = field(default_factory=list)
    sequences: int = 0

    @property
    def sent_last_minute(self) -> int:
        return self.per_minute[-1][1] if self.per_minute else 0

    @property
    def sent_in_chart(self) -> int:
        return sum(n for _, n in self.per_minute)


def finished_window(now: datetime, tenant_key: Any = EVERY_TENANT) -> Any:
    """Sends and failures of the last hour by minute, channel and state: one range scan of
    ``ix_step_executions_finished`` (``executed_at`` of sent and failed executions; a failure's
    ``executed_at`` is its ``failed_at``), never the whole history."""
    minute = func.date_trunc("minute", X.c.executed_at).label("minute")
    stmt = (
        select(minute, X.c.channel, X.c.state, func.count().label("n"))
        .where(
            X.c.state.in_(FINISHED),
            X.c.executed_at >= now - timedelta(hours=1),
            X.c.executed_at <= now,
        )
        .group_by(minute, X.c.channel, X.c.state)
    )
    if tenant_key is not EVERY_TENANT:
        stmt = stmt.where(tenant_clause(X, tenant_key))
    return stmt


def overview(conn: Connection, now: datetime, tenant_key: Any = EVERY_TENANT) -> Overview:
    """The overview's numbers at ``now`` (the instance's clock): every tenant's by default, or
    only ``tenant_key``'s (None: the global rows)."""
    _timeout(conn)
    out = Overview(now=now)
    due = and_(X.c.state == "scheduled", ~X.c.held, X.c.scheduled_for <= now)
    if tenant_key is not EVERY_TENANT:
        due = and_(due, tenant_clause(X, tenant_key))
    leased = X.c.locked_until > now
    # In index order: a plan for any parameters (a prepared statement's generic plan) still
    # walks ix_step_executions_due rather than the table, also with a tenant's filter.
    capped = (
        select(X.c.id, X.c.channel, X.c.locked_until)
        .where(due)
        .order_by(X.c.scheduled_for)
        .limit(COUNT_CAP + 1)
    )
    rows = conn.execute(capped).all()
    out.due_now = sum(1 for r in rows if not (r.locked_until and r.locked_until > now))
    out.in_flight = sum(1 for r in rows if r.locked_until and r.locked_until > now)
    oldest = conn.execute(
        select(X.c.scheduled_for)
        .where(due, or_(X.c.locked_until.is_(None), ~leased))
        .order_by(X.c.scheduled_for)
        .limit(1)
    ).scalar()
    out.oldest_due_lag = (now - oldest) if oldest is not None else None

    start = (now - timedelta(minutes=CHART_MINUTES - 1)).replace(second=0, microsecond=0)
    counts: dict[datetime, int] = {}
    health: dict[str, ChannelHealth] = {}
    for at, channel, state, n in conn.execute(finished_window(now, tenant_key)):
        item = health.setdefault(channel, ChannelHealth(channel))
        if state == "sent":
            item.sent += n
            if at >= start:
                counts[at] = counts.get(at, 0) + n
        else:
            item.failed += n
            out.failed_last_hour += n
    out.per_minute = [
        (at, counts.get(at, 0))
        for at in (start + timedelta(minutes=i) for i in range(CHART_MINUTES))
    ]
    for r in rows:
        health.setdefault(r.channel, ChannelHealth(r.channel)).due += 1
    out.channels = sorted(health.values(), key=lambda h: h.channel)
    sequences = select(func.count()).select_from(S)
    if tenant_key is not EVERY_TENANT:
        sequences = sequences.where(tenant_clause(S, tenant_key))
    out.sequences = conn.execute(sequences).scalar() or 0
    return out


def search_enrollments(
    conn: Connection,
    *,
    subscriber: str | None = None,
    sequence_id: uuid.UUID | None = None,
    version_id: uuid.UUID | None = None,
    state: str | None = None,
    before: uuid.UUID | None = None,
    limit: int = 50,
    tenant_key: Any = EVERY_TENANT,
) -> list[Enrollment]:
    """Enrollments newest first (ids are time-ordered). ``subscriber`` is an id, or
    ``Type:id`` to use the (type, id) index. ``tenant_key`` keeps only that tenant's (None: the
    global ones); by default every tenant's."""
    _timeout(conn)
    stmt = select(E).order_by(E.c.id.desc()).limit(limit + 1)
    if tenant_key is not EVERY_TENANT:
        stmt = stmt.where(tenant_clause(E, tenant_key))
    if subscriber:
        kind, sep, ident = subscriber.partition(":")
        if sep and kind and ident:
            stmt = stmt.where(E.c.subscriber_type == kind, E.c.subscriber_id == ident)
        else:
            stmt = stmt.where(E.c.subscriber_id == subscriber)
    if sequence_id is not None:
        stmt = stmt.where(E.c.sequence_id == sequence_id)
    if version_id is not None:
        stmt = stmt.where(E.c.sequence_version_id == version_id)
    if state:
        stmt = stmt.where(E.c.state == state)
    if before is not None:
        stmt = stmt.where(E.c.id < before)
    return [from_row(Enrollment, r) for r in conn.execute(stmt)]


def enrollment_events(conn: Connection, enrollment_id: uuid.UUID) -> list[Event]:
    _timeout(conn)
    rows = conn.execute(
        select(EV).where(EV.c.enrollment_id == enrollment_id).order_by(EV.c.occurred_at).limit(500)
    )
    return [from_row(Event, r) for r in rows]


def executions(conn: Connection, statement: Any, adapter_id: uuid.UUID | None) -> list[Any]:
    """The execution log's page: the REST API's statement, plus the adapter filter."""
    _timeout(conn, 5000)
    if adapter_id is not None:
        statement = statement.where(X.c.adapter_id == adapter_id)
    return [from_row(StepExecution, r, state=r.live_state) for r in conn.execute(statement)]


def adapter_of_executions(conn: Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Which adapter delivered each execution (not part of the public record)."""
    if not ids:
        return {}
    rows = conn.execute(select(X.c.id, X.c.adapter_id).where(X.c.id.in_(ids)))
    return {r.id: r.adapter_id for r in rows}
