"""The in-app inbox of the PostgreSQL pub/sub provider: store, NOTIFY, list, mark read."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import Connection, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from dripdrop.db import models as m
from dripdrop.definitions.common import as_uuid
from dripdrop.definitions.inputs import boolean, check_all, identifier, integer
from dripdrop.errors import ValidationError
from dripdrop.ids import new_id
from dripdrop.records import Notification, from_row

N = m.Notification.__table__


def topic_channel(schema: str, topic: str) -> str:
    """The NOTIFY channel of a topic (apps LISTEN on it)."""
    return f"dripdrop_{schema}:{topic}"[:63]


def store_notification(
    rt: Any, conn: Connection, topic: str, event: str | None, payload: Any, message: Any
) -> Notification:
    """Add a notification to the inbox and NOTIFY listeners of its topic (on commit).

    Once per execution: delivering the same execution again (its worker died before recording
    the outcome, or its lease ran out) returns the stored notification and notifies no one."""
    enrollment_id = message.metadata.get("enrollment_id")
    execution_id = uuid.UUID(message.execution_id)
    row = conn.execute(
        pg_insert(N)
        .values(
            id=new_id(),
            topic=topic,
            event=event,
            payload=payload,
            enrollment_id=uuid.UUID(enrollment_id) if enrollment_id else None,
            execution_id=execution_id,
            inserted_at=rt.now(),
            updated_at=rt.now(),
        )
        .on_conflict_do_nothing(
            index_elements=[N.c.execution_id], index_where=N.c.execution_id.is_not(None)
        )
        .returning(N)
    ).one_or_none()
    if row is None:  # a redelivery: its listeners were told the first time
        return from_row(
            Notification, conn.execute(select(N).where(N.c.execution_id == execution_id)).one()
        )
    body = json.dumps(
        {"id": str(row.id), "topic": topic, "event": event, "payload": payload}, default=str
    )
    if len(body.encode()) > 7900:  # NOTIFY payloads are capped at 8000 bytes
        body = json.dumps({"id": str(row.id), "topic": topic, "event": event})
    conn.execute(
        text("SELECT pg_notify(:ch, :body)"), {"ch": topic_channel(rt.schema, topic), "body": body}
    )
    return from_row(Notification, row)


def list_notifications(
    rt: Any, conn: Connection, topic: str, *, unread_only: bool = False, limit: int = 50
) -> list[Notification]:
    """A topic's notifications, newest first (at most ``limit``, 1 to 1,000)."""
    check_all(
        {"topic": topic, "unread_only": unread_only, "limit": limit},
        {"topic": identifier(), "unread_only": boolean(), "limit": integer(1, 1_000)},
    )
    stmt = select(N).where(N.c.topic == topic).order_by(N.c.inserted_at.desc()).limit(limit)
    if unread_only:
        stmt = stmt.where(N.c.read_at.is_(None))
    return [from_row(Notification, r) for r in conn.execute(stmt)]


def mark_read(rt: Any, conn: Connection, notification_ids: Any) -> int:
    """Mark notifications read (one id or a list); returns how many changed."""
    many = isinstance(notification_ids, list | tuple | set | frozenset)
    ids = list(notification_ids) if many else [notification_ids]
    if len(ids) > 10_000:
        raise ValidationError.single("notification_ids", "at most 10,000 ids at a time")
    ids = [as_uuid(i, "notification_ids") for i in ids]
    now = rt.now()
    result = conn.execute(
        update(N).where(N.c.id.in_(ids), N.c.read_at.is_(None)).values(read_at=now, updated_at=now)
    )
    return result.rowcount or 0
