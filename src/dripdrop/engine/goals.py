"""What an event does to an enrollment beyond waking event steps: a version's goal (conversion,
and the exit unless the goal lets the enrollment go on) and digests that have gathered enough
events. Called by ``record_event`` under the enrollment's row lock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from dripdrop.db import models as m
from dripdrop.engine.defs import VersionDef
from dripdrop.engine.enrollments import cancel_scheduled
from dripdrop.engine.flow import digest_window
from dripdrop.engine.planning import is_subset

E = m.Enrollment.__table__
X = m.StepExecution.__table__
EV = m.Event.__table__


def goal_of(version: VersionDef) -> dict[str, Any] | None:
    """The version's goal: ``config["goal"] = {"event_key": ..., "trigger_data": {...},
    "continue": False}``."""
    goal = version.config.get("goal")
    return goal if isinstance(goal, dict) and goal.get("event_key") else None


def reach_goal(
    conn: Connection,
    version: VersionDef,
    enrollment: Any,
    event_key: str,
    event_data: Any,
    now: datetime,
) -> bool:
    """Mark the enrollment converted when the event is its version's goal (the first time),
    crediting the last step sent; end it unless the goal says ``continue``. True when the
    enrollment ended."""
    goal = goal_of(version)
    if goal is None or goal["event_key"] != event_key:
        return False
    if not is_subset(goal.get("trigger_data") or {}, event_data or {}):
        return False
    values: dict[str, Any] = {"updated_at": now}
    if enrollment.converted_at is None:
        values["converted_at"] = now
        values["conversion_step_id"] = (
            select(X.c.step_id)
            .where(X.c.enrollment_id == enrollment.id, X.c.state == "sent")
            .order_by(X.c.executed_at.desc())
            .limit(1)
            .scalar_subquery()
        )
    ends = not goal.get("continue", False)
    if ends:
        cancel_scheduled(conn, enrollment.id, now, "cancelled: goal reached")
        values.update(state="completed", completed_at=now, exit_reason="goal")
    conn.execute(update(E).where(E.c.id == enrollment.id).values(**values))
    return ends


def close_digests(
    conn: Connection, version: VersionDef, enrollment: Any, event_key: str, now: datetime
) -> bool:
    """A digest waiting for ``event_key`` with ``max_events`` is due now once that many events
    have gathered in its window. True when one was made due."""
    steps = [
        s
        for s in version.steps
        if (d := s.config.get("digest")) and d.get("event_key") == event_key and d.get("max_events")
    ]
    woke = False
    for step in steps:
        digest = step.config["digest"]
        since = max(now - digest_window(digest), enrollment.started_at)
        count = conn.execute(
            select(func.count())
            .select_from(EV)
            .where(
                EV.c.enrollment_id == enrollment.id,
                EV.c.event_key == event_key,
                EV.c.occurred_at >= since,
            )
        ).scalar_one()
        if count >= int(digest["max_events"]):
            woke |= (
                conn.execute(
                    update(X)
                    .where(
                        X.c.enrollment_id == enrollment.id,
                        X.c.step_id == step.id,
                        X.c.state == "scheduled",
                        X.c.scheduled_for > now,
                    )
                    .values(scheduled_for=now, updated_at=now)
                ).rowcount
                > 0
            )
    return woke
