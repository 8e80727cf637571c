"""Tracking events: exits, and waking event steps whose trigger matches."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from dripdrop.db import models as m
from dripdrop.definitions.common import get_row
from dripdrop.definitions.inputs import check_identifier, check_tenant, gather
from dripdrop.engine.enrollments import (
    cancel_scheduled,
    check_json,
    enrollments_of,
    subscriber_key,
)
from dripdrop.engine.goals import close_digests, reach_goal
from dripdrop.engine.notify import wake_workers
from dripdrop.engine.planning import event_matches
from dripdrop.errors import ValidationError
from dripdrop.ids import new_id
from dripdrop.records import Event, from_row
from dripdrop.runtime import Runtime

E = m.Enrollment.__table__
X = m.StepExecution.__table__
EV = m.Event.__table__

EVENT_TYPES = ("user_action", "milestone", "custom")


def record_event(
    rt: Runtime,
    conn: Connection,
    enrollment: Any,
    event_key: str,
    event_data: dict[str, Any],
    event_type: str,
) -> Event:
    """Store the event and apply it to the (locked) enrollment."""
    now = rt.now()
    row = conn.execute(
        insert(EV)
        .values(
            id=new_id(),
            enrollment_id=enrollment.id,
            event_type=event_type,
            event_key=event_key,
            event_data=event_data,
            occurred_at=now,
            tenant_key=enrollment.tenant_key,
        )
        .returning(EV)
    ).one()
    if enrollment.state not in ("active", "paused"):
        return from_row(Event, row)
    version = rt.defs.version(conn, enrollment.sequence_version_id)
    if event_key in version.exit_events:
        cancel_scheduled(conn, enrollment.id, now, f"cancelled: exit event {event_key!r}")
        conn.execute(
            update(E)
            .where(E.c.id == enrollment.id)
            .values(state="completed", completed_at=now, updated_at=now, exit_reason="exit_event")
        )
        return from_row(Event, row)
    if reach_goal(conn, version, enrollment, event_key, event_data, now):
        return from_row(Event, row)
    if close_digests(conn, version, enrollment, event_key, now) and enrollment.state == "active":
        wake_workers(conn, rt.schema)
    waiting = conn.execute(
        select(X.c.id, X.c.step_id)
        .where(
            X.c.enrollment_id == enrollment.id,
            X.c.state == "scheduled",
            X.c.waiting_for == event_key,
        )
        .with_for_update()
    ).all()
    woke = False
    for w in waiting:
        step = version.step(w.step_id)
        if step is not None and event_matches(step.timing, event_key, event_data):
            conn.execute(
                update(X)
                .where(X.c.id == w.id)
                .values(waiting_for=None, scheduled_for=now, updated_at=now)
            )
            woke = True
    if woke and enrollment.state == "active":
        wake_workers(conn, rt.schema)
    return from_row(Event, row)


def _check(event_key: Any, event_data: Any, event_type: Any, tenant_key: Any) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    if event_key is None or event_key == "":
        errors["event_key"] = ["is required"]
    else:
        gather(errors, check_identifier, event_key, "event_key")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        errors["event_type"] = [f"must be one of {', '.join(EVENT_TYPES)}"]
    gather(errors, check_tenant, tenant_key, "tenant_key")
    data = gather(errors, check_json, event_data, "event_data")
    if errors:
        raise ValidationError(errors)
    return data


def track_event(
    rt: Runtime,
    conn: Connection,
    enrollment_id: Any,
    event_key: str,
    event_data: dict[str, Any] | None = None,
    *,
    event_type: str = "custom",
    tenant_key: str | None = None,
) -> Event:
    """Record an event on one enrollment: it may exit the enrollment or trigger an event step."""
    data = _check(event_key, event_data, event_type, tenant_key)
    enrollment = get_row(conn, E, enrollment_id, "enrollment", lock=True)
    if tenant_key is not None and enrollment.tenant_key != tenant_key:
        raise ValidationError.single("tenant_key", "the enrollment belongs to another tenant")
    return record_event(rt, conn, enrollment, event_key, data, event_type)


def track(
    rt: Runtime,
    conn: Connection,
    subscriber: dict[str, Any],
    event_key: str,
    event_data: dict[str, Any] | None = None,
    *,
    event_type: str = "custom",
    tenant_key: str | None = None,
) -> list[Event]:
    """Record an event on each of the subscriber's active (or paused) enrollments."""
    stype, sid = subscriber_key(subscriber)
    data = _check(event_key, event_data, event_type, tenant_key)
    return [
        record_event(rt, conn, e, event_key, data, event_type)
        for e in enrollments_of(conn, stype, sid, tenant_key)
    ]
