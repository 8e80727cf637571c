"""Claiming a batch of due executions with what they need, and recording a batch of outcomes.

Both run in one transaction each, with a handful of statements per batch whatever its size.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from dripdrop.db import models as m
from dripdrop.engine.notify import wake_workers
from dripdrop.engine.planning import execution_row, plan_step
from dripdrop.engine.process import Job, Outcome
from dripdrop.worker.queries import (
    CLAIM,
    CLAIM_ENROLLMENT,
    COMPLETE,
    ENROLLMENTS,
    EVENT_COUNTS,
    EVENTS_OF,
    q,
)

X = m.StepExecution.__table__

ADVANCE = """
UPDATE {s}.enrollments AS e
SET current_step_id = v.step_id,
    state = CASE v.action WHEN 'complete' THEN 'completed' WHEN 'halt' THEN 'cancelled'
            ELSE e.state END,
    completed_at = CASE WHEN v.action = 'complete' THEN CAST(:now AS timestamptz)
                   ELSE e.completed_at END,
    cancelled_at = CASE WHEN v.action = 'halt' THEN CAST(:now AS timestamptz)
                   ELSE e.cancelled_at END,
    updated_at = :now
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(id uuid, step_id uuid, action text)
WHERE e.id = v.id AND e.state IN ('active', 'paused')
"""


def claim_jobs(
    rt: Any,
    conn: Connection,
    limit: int,
    token: uuid.UUID,
    now: datetime,
    lease_seconds: float,
    enrollment_id: uuid.UUID | None = None,
) -> list[Job]:
    """Claim up to ``limit`` due executions (SKIP LOCKED) and load their definitions.
    ``enrollment_id`` restricts the claim to one enrollment (simulations)."""
    params = {
        "now": now,
        "limit": limit,
        "token": token,
        "worker": rt.worker_id,
        "lease": lease_seconds,
    }
    sql = CLAIM
    if enrollment_id is not None:
        params["enrollment_id"] = enrollment_id
        sql = CLAIM_ENROLLMENT
    rows = conn.execute(q(sql, rt.schema), params).all()
    if not rows:
        return []
    enrollments = {
        e.id: e
        for e in conn.execute(
            q(ENROLLMENTS, rt.schema), {"ids": list({r.enrollment_id for r in rows})}
        )
    }
    jobs: list[Job] = []
    for r in rows:
        enrollment = enrollments[r.enrollment_id]
        version = rt.defs.version(conn, enrollment.sequence_version_id)
        adapters = rt.defs.adapters(rt, conn, version.tenant_key)
        jobs.append(Job(r, token, enrollment, version, version.step(r.step_id), adapters))
    needs_counts = [
        j for j in jobs if j.step and any(c.condition_type == "event" for c in j.step.conditions)
    ]
    if needs_counts:
        counts: dict[Any, dict[str, int]] = {}
        for c in conn.execute(
            q(EVENT_COUNTS, rt.schema), {"ids": [j.enrollment.id for j in needs_counts]}
        ):
            counts.setdefault(c.enrollment_id, {})[c.event_key] = c.n
        for j in needs_counts:
            j.event_counts = counts.get(j.enrollment.id, {})
    return jobs


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _outcome_row(o: Outcome) -> dict[str, Any]:
    return {
        "id": str(o.job.execution.id),
        "token": str(o.job.token),
        "state": o.state,
        "scheduled_for": _iso(o.scheduled_for),
        "executed_at": _iso(o.executed_at),
        "failed_at": _iso(o.failed_at),
        "retry_count": o.retry_count,
        "recipient": o.recipient,
        "payload": o.payload,
        "response": o.response,
        "error_message": o.error_message,
        "adapter_id": str(o.adapter_id) if o.adapter_id else None,
        "held": o.held,
    }


def record_outcomes(rt: Any, conn: Connection, outcomes: list[Outcome], now: datetime) -> set[Any]:
    """Write outcomes (only where this worker still holds the lease) and move enrollments on:
    schedule each next step, complete finished enrollments, stop halted ones."""
    if not outcomes:
        return set()
    rows = json.dumps([_outcome_row(o) for o in outcomes], default=str)
    confirmed = {r.id for r in conn.execute(q(COMPLETE, rt.schema), {"rows": rows, "now": now})}
    moving = [o for o in outcomes if o.job.execution.id in confirmed and (o.advances or o.halts)]
    if not moving:
        return confirmed
    next_steps = {
        o.job.execution.id: o.job.version.step_after(o.job.execution.step_id)
        for o in moving
        if o.advances
    }
    waiting_on_events = [
        o.job.enrollment.id
        for o in moving
        if (s := next_steps.get(o.job.execution.id)) and s.timing.get("type") == "event"
    ]
    events: dict[Any, list[tuple[str, Any, datetime]]] = {}
    if waiting_on_events:
        for ev in conn.execute(q(EVENTS_OF, rt.schema), {"ids": waiting_on_events}):
            events.setdefault(ev.enrollment_id, []).append(
                (ev.event_key, ev.event_data, ev.occurred_at)
            )
    inserts: list[dict[str, Any]] = []
    advance: list[dict[str, Any]] = []
    due_now = False
    for o in moving:
        enrollment = o.job.enrollment
        if o.halts:
            advance.append(
                {
                    "id": str(enrollment.id),
                    "step_id": str(o.job.execution.step_id),
                    "action": "halt",
                }
            )
            continue
        step = next_steps[o.job.execution.id]
        if step is None:
            advance.append({"id": str(enrollment.id), "step_id": None, "action": "complete"})
            continue
        plan = plan_step(
            step,
            enrollment_start=enrollment.started_at,
            previous_done=o.job.execution.scheduled_for or now,
            events=events.get(enrollment.id, ()),
        )
        row = execution_row(
            enrollment_id=enrollment.id, step=step, plan=plan, tenant_key=enrollment.tenant_key
        )
        row["held"] = enrollment.state == "paused"
        inserts.append(row)
        advance.append({"id": str(enrollment.id), "step_id": str(step.id), "action": "next"})
        due_now = due_now or (plan.scheduled_for is not None and plan.scheduled_for <= now)
    if inserts:
        conn.execute(insert(X), inserts)
    conn.execute(q(ADVANCE, rt.schema), {"rows": json.dumps(advance), "now": now})
    if due_now:
        wake_workers(conn, rt.schema)
    return confirmed


def release_jobs(rt: Any, conn: Connection, token: uuid.UUID, ids: list[Any]) -> None:
    """Give claimed executions back (graceful shutdown before they ran)."""
    from dripdrop.worker.queries import RELEASE

    conn.execute(q(RELEASE, rt.schema), {"token": token, "ids": ids})


def recover_leases(rt: Any, conn: Connection) -> int:
    """Executions whose worker died (lease expired) become scheduled again."""
    from dripdrop.worker.queries import RECOVER_LEASES

    return len(conn.execute(q(RECOVER_LEASES, rt.schema)).all())


def next_due_at(rt: Any, conn: Connection) -> datetime | None:
    from dripdrop.worker.queries import next_due

    return next_due(conn, rt.schema)


__all__ = ["claim_jobs", "next_due_at", "record_outcomes", "recover_leases", "release_jobs"]
