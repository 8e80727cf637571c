"""Enrolling subscribers and managing enrollments (pause, resume, unenroll, queries)."""

from __future__ import annotations

import functools
import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import Connection, and_, case, func, insert, select, text, update

from dripdrop.db import models as m
from dripdrop.definitions import inputs
from dripdrop.definitions.common import as_uuid, get_row, tenant_clause
from dripdrop.definitions.sequences import (
    check_sequence_lookup,
    get_sequence_row,
    get_sequence_with_active_version,
)
from dripdrop.engine.notify import channel_name, wake_workers
from dripdrop.engine.planning import execution_row, plan_step
from dripdrop.errors import AlreadyEnrolled, NotFound, ValidationError
from dripdrop.ids import new_id
from dripdrop.observability.tracing import traced_enroll
from dripdrop.records import Enrollment, StepExecution, from_row
from dripdrop.runtime import Runtime
from dripdrop.worker.queries import placeholders

E = m.Enrollment.__table__
X = m.StepExecution.__table__
V = m.SequenceVersion.__table__
ST = m.Step.__table__
EV = m.Event.__table__

ON_CONFLICT = ("raise", "ignore", "restart")

# A scheduled row under a live lease is being delivered right now: report it as "sending".
_LIVE_STATE = case(
    (and_(X.c.state == "scheduled", X.c.locked_until > func.clock_timestamp()), "sending"),
    else_=X.c.state,
).label("live_state")


def subscriber_key(subscriber: Any) -> tuple[str, str]:
    """``{"type": "User", "id": 7}`` → ("User", "7"); ids may be str, int or UUID."""
    if not isinstance(subscriber, dict):
        raise ValidationError.single("subscriber", 'must be a dict like {"type": "User", "id": 7}')
    return subscriber_fields(
        subscriber.get("type"), subscriber.get("id"), "subscriber.type", "subscriber.id"
    )


def subscriber_fields(
    stype: Any,
    sid: Any,
    type_field: str = "subscriber_type",
    id_field: str = "subscriber_id",
) -> tuple[str, str]:
    """A subscriber's type and id as stored: text of 1 to 255 characters (inputs.MAX_ID_LENGTH),
    the id given as str, int or UUID."""
    # Written for speed: enroll_many runs it for every one of millions of items.
    cap = inputs.MAX_ID_LENGTH
    errors: dict[str, list[str]] = {}
    if not isinstance(stype, str) or not stype:
        errors[type_field] = ["is required (a string such as 'User')"]
    elif problem := inputs.text_problem(stype, cap):
        errors[type_field] = [problem]
    text = ""
    if isinstance(sid, str):
        text = sid
        if problem := inputs.text_problem(sid, cap):
            errors[id_field] = [problem]
    elif isinstance(sid, int) and not isinstance(sid, bool):
        # 2**800 has 241 digits; str() of an int past ~4300 digits raises.
        if sid.bit_length() > 800 and (sid.bit_length() > 4 * cap or len(str(sid)) > cap):
            errors[id_field] = [f"is too long (at most {cap} characters)"]
        else:
            text = str(sid)
    elif isinstance(sid, uuid.UUID):
        text = str(sid)
    else:
        errors[id_field] = ["is required (a string, integer or UUID)"]
    if not text and id_field not in errors:
        errors[id_field] = ["must not be empty"]
    if errors:
        raise ValidationError(errors)
    return stype, text


def check_json(value: Any, field: str) -> dict[str, Any]:
    """A JSON object for data, metadata or event_data (None is {}); see inputs.check_json."""
    return inputs.check_json(value, field) or {}


def active_version_id(seq: Any) -> uuid.UUID:
    """The active version id of a get_sequence_with_active_version row; a ValidationError on
    ``sequence_key`` when the sequence is inactive or has no active version."""
    if not seq.active:
        raise ValidationError.single("sequence_key", f"sequence {seq.key!r} is not active")
    if seq.active_version_id is None:
        raise ValidationError.single("sequence_key", f"sequence {seq.key!r} has no active version")
    return seq.active_version_id


def _schedule_first(rt: Runtime, conn: Connection, enrollment: Any, first: Any, now: Any) -> None:
    """The first execution of a new enrollment (waking the workers when it is due now)."""
    plan = plan_step(first, enrollment_start=enrollment.started_at, previous_done=None)
    conn.execute(
        insert(X).values(
            **execution_row(
                enrollment_id=enrollment.id, step=first, plan=plan, tenant_key=enrollment.tenant_key
            )
        )
    )
    if plan.scheduled_for is not None and plan.scheduled_for <= now:
        wake_workers(conn, rt.schema)


def start_enrollment(rt: Runtime, conn: Connection, enrollment: Any, now: Any) -> Any:
    """Schedule the first active step of a (new or restarted) enrollment; return the row."""
    version = rt.defs.version(conn, enrollment.sequence_version_id)
    first = version.first_step()
    if first is None:
        return conn.execute(
            update(E)
            .where(E.c.id == enrollment.id)
            .values(
                state="completed",
                completed_at=now,
                current_step_id=None,
                updated_at=now,
                exit_reason="completed",
            )
            .returning(E)
        ).one()
    _schedule_first(rt, conn, enrollment, first, now)
    return conn.execute(
        update(E)
        .where(E.c.id == enrollment.id)
        .values(current_step_id=first.id, updated_at=now)
        .returning(E)
    ).one()


def cancel_scheduled(conn: Connection, enrollment_id: uuid.UUID, now: Any, reason: str) -> None:
    conn.execute(
        update(X)
        .where(X.c.enrollment_id == enrollment_id, X.c.state == "scheduled")
        .values(state="cancelled", error_message=reason, updated_at=now, held=False)
    )


@traced_enroll  # a span, linked from the executions it causes (when tracing is on)
def enroll(
    rt: Runtime,
    conn: Connection,
    sequence_key: str,
    subscriber: dict[str, Any],
    data: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    on_conflict: str = "raise",
    *,
    tenant_key: str | None = None,
) -> Enrollment:
    """Enroll a subscriber in the sequence's active version and schedule its first step."""
    stype, sid = subscriber_key(subscriber)
    # JSON text for the INSERT, checked on the way (inputs.json_text walks a value in full only
    # when its text could hide a problem).
    data_json = inputs.json_text(data, "data") if data is not None else "{}"
    metadata_json = inputs.json_text(metadata, "metadata") if metadata is not None else "{}"
    data, metadata = data or {}, metadata or {}
    inputs.check_choice(on_conflict, "on_conflict", ON_CONFLICT)
    check_sequence_lookup(sequence_key, tenant_key)
    now = rt.now()

    def lookup() -> Any:
        return get_sequence_with_active_version(conn, sequence_key, tenant_key)

    # The sequence and its active version come from the definitions cache; the INSERT only
    # writes while that version is still the active one, so a stale entry costs a retry here,
    # never an enrollment into a version deactivated meanwhile.
    for fresh in (False, True):
        seq = rt.defs.sequence(sequence_key, tenant_key, lookup, fresh=fresh)
        version_id = active_version_id(seq)
        # The first step is known before the row is written, so a new enrollment is one
        # statement: the row (with its current step) and its first execution.
        first = rt.defs.version(conn, version_id).first_step()
        row = _insert_new(
            rt, conn, seq, version_id, stype, sid, data_json, metadata_json, now, first
        )
        if row is not None:
            return from_row(Enrollment, row)
    existing = conn.execute(
        select(E)
        .where(E.c.sequence_id == seq.id, E.c.subscriber_type == stype, E.c.subscriber_id == sid)
        .with_for_update()
    ).one()
    if on_conflict == "ignore":
        return from_row(Enrollment, existing)
    if on_conflict == "raise":
        raise AlreadyEnrolled(
            f"{stype} {sid} is already enrolled in {sequence_key!r} (state {existing.state}); "
            "pass on_conflict='ignore' or 'restart'",
            enrollment=from_row(Enrollment, existing),
        )
    cancel_scheduled(conn, existing.id, now, "cancelled: enrollment restarted")
    restarted = conn.execute(
        update(E)
        .where(E.c.id == existing.id)
        .values(
            sequence_version_id=version_id,
            state="active",
            started_at=now,
            completed_at=None,
            cancelled_at=None,
            current_step_id=None,
            data=data,
            metadata=metadata,
            updated_at=now,
            exit_reason=None,
            converted_at=None,
            conversion_step_id=None,
        )
        .returning(E)
    ).one()
    return from_row(Enrollment, start_enrollment(rt, conn, restarted, now))


@functools.lru_cache(maxsize=64)
def _insert_new_sql(schema: str, wake: bool) -> Any:
    """One statement for a new enrollment and its first execution (built once per schema: the
    per-call cost of building and caching Core statements was a third of an enroll's CPU).
    With ``wake`` it also wakes the workers (NOTIFY, sent on commit) when it wrote a row."""
    s = f'"{schema}"'
    waking = """
        , n AS (SELECT pg_notify(:wake_channel, 'due') FROM x LIMIT 1)
        SELECT * FROM e WHERE (SELECT count(*) FROM n) >= 0
    """
    return text(f"""
        WITH e AS (
            INSERT INTO {s}.enrollments (id, sequence_id, sequence_version_id, subscriber_type,
                subscriber_id, state, completed_at, current_step_id, started_at, data, metadata,
                tenant_key)
            SELECT :id, :sequence_id, :version_id, :stype, :sid, :state, :completed_at,
                :step_id, :now, CAST(:data AS jsonb), CAST(:metadata AS jsonb), :tenant
            FROM {s}.sequence_versions AS v JOIN {s}.sequences AS q ON q.id = v.sequence_id
            WHERE v.id = :version_id AND v.active AND q.id = :sequence_id AND q.active
            ON CONFLICT (sequence_id, subscriber_type, subscriber_id) DO NOTHING
            RETURNING *
        ), x AS (
            INSERT INTO {s}.step_executions (id, enrollment_id, step_id, state, scheduled_for,
                waiting_for, channel, idempotency_key, tenant_key, held, retry_count)
            SELECT :xid, e.id, :step_id, 'scheduled', :due, :waiting, :channel, :xkey,
                :tenant, false, 0
            FROM e WHERE :has_first
            RETURNING 1
        ){waking if wake else " SELECT * FROM e"}
    """)


def _insert_new(
    rt: Runtime,
    conn: Connection,
    seq: Any,
    version_id: uuid.UUID,
    stype: str,
    sid: str,
    data: str,
    metadata: str,
    now: Any,
    first: Any,
) -> Any:
    """The new enrollment's row with its first execution scheduled, or None when the subscriber
    is already enrolled or the version is no longer the sequence's active one (nothing written).
    A version without active steps completes at once."""
    plan = plan_step(first, enrollment_start=now, previous_done=None) if first else None
    due = plan.scheduled_for if plan is not None else None
    xid = new_id()
    statement = _insert_new_sql(rt.schema, due is not None and due <= now)
    params = {
        "id": new_id(),
        "sequence_id": seq.id,
        "version_id": version_id,
        "stype": stype,
        "sid": sid,
        "state": "active" if first is not None else "completed",
        "completed_at": None if first is not None else now,
        "step_id": first.id if first is not None else None,
        "now": now,
        "data": data,  # JSON text
        "metadata": metadata,
        "tenant": seq.tenant_key,
        "xid": xid,
        "due": plan.scheduled_for if plan else None,
        "waiting": plan.waiting_for if plan else None,
        "channel": first.channel if first is not None else "",
        "xkey": str(xid),
        "has_first": first is not None,
        "wake_channel": channel_name(rt.schema),
    }
    driver = conn.connection.driver_connection
    if isinstance(driver, psycopg.Connection):
        # The driver directly, in the same transaction: SQLAlchemy read the RETURNING row's
        # columns from the cursor description on every call (a fifth of an API enroll's CPU).
        with driver.cursor(row_factory=dict_row) as cursor:
            cursor.execute(placeholders(statement.text), params)
            return cursor.fetchone()
    return conn.execute(statement, params).first()


def _find(
    conn: Connection,
    sequence_key: str,
    stype: str,
    sid: Any,
    tenant_key: str | None,
    lock: bool = False,
) -> Any:
    seq = get_sequence_row(conn, sequence_key, tenant_key)
    stmt = select(E).where(
        E.c.sequence_id == seq.id, E.c.subscriber_type == stype, E.c.subscriber_id == str(sid)
    )
    return conn.execute(stmt.with_for_update() if lock else stmt).first()


def unenroll(
    rt: Runtime,
    conn: Connection,
    sequence_key: str,
    subscriber_type: str,
    subscriber_id: Any,
    *,
    tenant_key: str | None = None,
) -> Enrollment:
    """Cancel an enrollment and everything still scheduled for it."""
    subscriber_type, subscriber_id = subscriber_fields(subscriber_type, subscriber_id)
    row = _find(conn, sequence_key, subscriber_type, subscriber_id, tenant_key, lock=True)
    if row is None:
        raise NotFound(f"{subscriber_type} {subscriber_id} is not enrolled in {sequence_key!r}")
    if row.state in ("completed", "cancelled"):
        return from_row(Enrollment, row)
    now = rt.now()
    cancel_scheduled(conn, row.id, now, "cancelled: unenrolled")
    row = conn.execute(
        update(E)
        .where(E.c.id == row.id)
        .values(state="cancelled", cancelled_at=now, updated_at=now, exit_reason="unenrolled")
        .returning(E)
    ).one()
    return from_row(Enrollment, row)


def pause_enrollment(rt: Runtime, conn: Connection, enrollment_id: Any) -> Enrollment:
    """Hold an active enrollment: its scheduled work waits until resumed."""
    row = get_row(conn, E, enrollment_id, "enrollment", lock=True)
    if row.state == "paused":
        return from_row(Enrollment, row)
    if row.state != "active":
        raise ValidationError.single("state", f"cannot pause a {row.state} enrollment")
    now = rt.now()
    conn.execute(
        update(X)
        .where(X.c.enrollment_id == row.id, X.c.state == "scheduled")
        .values(held=True, updated_at=now)
    )
    row = conn.execute(
        update(E).where(E.c.id == row.id).values(state="paused", updated_at=now).returning(E)
    ).one()
    return from_row(Enrollment, row)


def resume_enrollment(rt: Runtime, conn: Connection, enrollment_id: Any) -> Enrollment:
    """Resume a paused enrollment; work that became overdue while paused is due now."""
    row = get_row(conn, E, enrollment_id, "enrollment", lock=True)
    if row.state == "active":
        return from_row(Enrollment, row)
    if row.state != "paused":
        raise ValidationError.single("state", f"cannot resume a {row.state} enrollment")
    now = rt.now()
    # A step waiting for an event has no due time, and keeps none: only its event (or its
    # timeout, if one passed meanwhile) moves it.
    conn.execute(
        update(X)
        .where(X.c.enrollment_id == row.id, X.c.state == "scheduled")
        .values(
            held=False,
            updated_at=now,
            scheduled_for=case(
                (X.c.scheduled_for.is_(None), None),
                else_=func.greatest(X.c.scheduled_for, now),
            ),
        )
    )
    wake_workers(conn, rt.schema)
    row = conn.execute(
        update(E).where(E.c.id == row.id).values(state="active", updated_at=now).returning(E)
    ).one()
    return from_row(Enrollment, row)


def get_enrollment(
    rt: Runtime,
    conn: Connection,
    sequence_key: str,
    subscriber_type: str,
    subscriber_id: Any,
    *,
    tenant_key: str | None = None,
) -> Enrollment | None:
    """The subscriber's enrollment in a sequence, or None."""
    subscriber_type, subscriber_id = subscriber_fields(subscriber_type, subscriber_id)
    row = _find(conn, sequence_key, subscriber_type, subscriber_id, tenant_key)
    return from_row(Enrollment, row) if row else None


def get_enrollment_by_id(rt: Runtime, conn: Connection, enrollment_id: Any) -> Enrollment:
    """One enrollment by id."""
    return from_row(Enrollment, get_row(conn, E, enrollment_id, "enrollment"))


def list_active_enrollments(
    rt: Runtime,
    conn: Connection,
    sequence_key: str,
    *,
    tenant_key: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Enrollment]:
    """Active enrollments of a sequence, oldest first."""
    inputs.check_int(limit, "limit", minimum=0, maximum=inputs.INT64_MAX, optional=True)
    inputs.check_int(offset, "offset", minimum=0, maximum=inputs.INT64_MAX)
    seq = get_sequence_row(conn, sequence_key, tenant_key)
    stmt = (
        select(E)
        .where(E.c.sequence_id == seq.id, E.c.state == "active")
        .order_by(E.c.started_at, E.c.id)
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [from_row(Enrollment, r) for r in conn.execute(stmt)]


def list_executions(rt: Runtime, conn: Connection, enrollment_id: Any) -> list[StepExecution]:
    """An enrollment's executions, by scheduled time then step position (waiting ones last)."""
    rows = conn.execute(
        select(X, _LIVE_STATE)
        .join(ST, ST.c.id == X.c.step_id)
        .where(X.c.enrollment_id == as_uuid(enrollment_id, "enrollment_id"))
        .order_by(X.c.scheduled_for.asc().nulls_last(), ST.c.position, X.c.inserted_at)
    )
    return [from_row(StepExecution, r, state=r.live_state) for r in rows]


def get_execution(rt: Runtime, conn: Connection, execution_id: Any) -> StepExecution:
    """One execution by id."""
    row = conn.execute(
        select(X, _LIVE_STATE).where(X.c.id == as_uuid(execution_id, "execution_id"))
    ).first()
    if row is None:
        raise NotFound(f"execution {execution_id} not found")
    return from_row(StepExecution, row, state=row.live_state)


def replay(rt: Runtime, conn: Connection, execution_id: Any) -> StepExecution:
    """Run a failed execution again, as a new execution with a new idempotency key. The
    enrollment does not move on because of a replay."""
    row = get_row(conn, X, execution_id, "execution")
    if row.state != "failed":
        raise ValidationError.single(
            "execution_id", f"only failed executions can be replayed (this one is {row.state})"
        )
    now = rt.now()
    replay_id = new_id()
    new = conn.execute(
        insert(X)
        .values(
            id=replay_id,
            enrollment_id=row.enrollment_id,
            step_id=row.step_id,
            state="scheduled",
            scheduled_for=now,
            channel=row.channel,
            idempotency_key=str(replay_id),
            tenant_key=row.tenant_key,
            replay_of=row.id,
            adapter_id=row.adapter_id,
        )
        .returning(X)
    ).one()
    wake_workers(conn, rt.schema)
    return from_row(StepExecution, new)


def enrollments_of(conn: Connection, stype: str, sid: str, tenant_key: str | None) -> list[Any]:
    return list(
        conn.execute(
            select(E)
            .where(
                and_(
                    E.c.subscriber_type == stype,
                    E.c.subscriber_id == sid,
                    E.c.state.in_(("active", "paused")),
                    tenant_clause(E, tenant_key),
                )
            )
            .order_by(E.c.id)  # one lock order everywhere: two track() calls cannot deadlock
            .with_for_update()
        )
    )
