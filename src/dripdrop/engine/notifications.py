"""The in-app inbox of the PostgreSQL pub/sub provider: store, NOTIFY, list, mark read."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import Connection, insert, select, text, update

from dripdrop.db import models as m
from dripdrop.ids import new_id
from dripdrop.records import Notification, from_row

N = m.Notification.__table__


def topic_channel(schema: str, topic: str) -> str:
    """The NOTIFY channel of a topic (apps LISTEN on it)."""
    return f"dripdrop_{schema}:{topic}"[:63]


def store_notification(
    rt: Any, conn: Connection, topic: str, event: str | None, payload: Any, message: Any
) -> Notification:
    """Add a notification to the inbox and NOTIFY listeners of its topic (on commit)."""
    enrollment_id = message.metadata.get("enrollment_id")
    row = conn.execute(
        insert(N)
        .values(
            id=new_id(),
            topic=topic,
            event=event,
            payload=payload,
            enrollment_id=uuid.UUID(enrollment_id) if enrollment_id else None,
            execution_id=uuid.UUID(message.execution_id),
            inserted_at=rt.now(),
            updated_at=rt.now(),
        )
        .returning(N)
    ).one()
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
    """A topic's notifications, newest first."""
    stmt = select(N).where(N.c.topic == topic).order_by(N.c.inserted_at.desc()).limit(limit)
    if unread_only:
        stmt = stmt.where(N.c.read_at.is_(None))
    return [from_row(Notification, r) for r in conn.execute(stmt)]


def mark_read(rt: Any, conn: Connection, notification_ids: Any) -> int:
    """Mark notifications read (one id or a list); returns how many changed."""
    ids = (
        notification_ids if isinstance(notification_ids, list | tuple | set) else [notification_ids]
    )
    ids = [i if isinstance(i, uuid.UUID) else uuid.UUID(str(i)) for i in ids]
    now = rt.now()
    result = conn.execute(
        update(N).where(N.c.id.in_(ids), N.c.read_at.is_(None)).values(read_at=now, updated_at=now)
    )
    return result.rowcount or 0
