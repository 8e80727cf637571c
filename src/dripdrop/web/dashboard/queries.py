"""The few reads the dashboard needs that no public operation answers: the overview's live
numbers, enrollment search, an enrollment's events, the execution log with the dashboard's
filters. Each runs under a short statement timeout so a page can never hang on a huge table.

The overview reads only indexed paths where it can: due work and its lag walk the partial index
``ix_step_executions_due`` (bounded by LIMIT); sends and failures of the last minutes read the
executions finished in that window.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, text

from dripdrop.db import models as m
from dripdrop.records import Enrollment, Event, StepExecution, from_row

X = m.StepExecution.__table__
E = m.Enrollment.__table__
EV = m.Event.__table__
S = m.Sequence.__table__
#: A count above this is shown as "10,000+": counting further costs more than it tells.
COUNT_CAP = 10_000
#: The sends-per-minute chart covers this many minutes.
CHART_MINUTES = 30


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


def overview(conn: Connection, now: datetime) -> Overview:
    """The overview's numbers at ``now`` (the instance's clock)."""
    _timeout(conn)
    out = Overview(now=now)
    due = and_(X.c.state == "scheduled", ~X.c.held, X.c.scheduled_for <= now)
    leased = X.c.locked_until > now
    capped = select(X.c.id, X.c.channel, X.c.locked_until).where(due).limit(COUNT_CAP + 1)
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
    minute = func.date_trunc("minute", X.c.executed_at)
    counts = dict(
        conn.execute(
            select(minute, func.count())
            .where(X.c.state == "sent", X.c.executed_at >= start, X.c.executed_at <= now)
            .group_by(minute)
        ).all()
    )
    out.per_minute = [
        (at, counts.get(at, 0))
        for at in (start + timedelta(minutes=i) for i in range(CHART_MINUTES))
    ]
    hour_ago = now - timedelta(hours=1)
    health: dict[str, ChannelHealth] = {}
    finished = conn.execute(
        select(X.c.channel, X.c.state, func.count())
        .where(
            or_(
                and_(X.c.state == "sent", X.c.executed_at >= hour_ago),
                and_(X.c.state == "failed", X.c.failed_at >= hour_ago),
            )
        )
        .group_by(X.c.channel, X.c.state)
    ).all()
    for channel, state, n in finished:
        item = health.setdefault(channel, ChannelHealth(channel))
        if state == "sent":
            item.sent = n
        else:
            item.failed = n
            out.failed_last_hour += n
    for r in rows:
        health.setdefault(r.channel, ChannelHealth(r.channel)).due += 1
    out.channels = sorted(health.values(), key=lambda h: h.channel)
    out.sequences = conn.execute(select(func.count()).select_from(S)).scalar() or 0
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
) -> list[Enrollment]:
    """Enrollments newest first (ids are time-ordered). ``subscriber`` is an id, or
    ``Type:id`` to use the (type, id) index."""
    _timeout(conn)
    stmt = select(E).order_by(E.c.id.desc()).limit(limit + 1)
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
