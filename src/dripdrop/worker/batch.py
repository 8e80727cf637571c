"""Claiming a batch of due executions with what they need, and recording a batch of outcomes.

A claim is one round trip whatever the batch size: it returns the executions with their
enrollments. Recording is two: the batch's enrollments are locked (skipping those another
transaction holds), then one statement writes the outcomes, moves enrollments on and inserts the
next executions. Also here: the fence checked before a delivery that had to wait, the heartbeat
that keeps in-flight leases alive, and giving claims back.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, text

from dripdrop.db.engine import commits_async
from dripdrop.engine.flow import COMPLETE, jobs_needing_flow_inputs, needs_counts
from dripdrop.engine.notify import wake_workers
from dripdrop.engine.planning import plan_step
from dripdrop.engine.process import Job, Outcome
from dripdrop.engine.suppression import check_batch as check_suppressions
from dripdrop.ids import new_id_text
from dripdrop.inbound.message_ids import message_id_key
from dripdrop.worker.queries import (
    COMPLETE_IDLE,
    EVENT_COUNTS,
    EVENTS_OF,
    FINISH,
    LAST_RUNS,
    LOCK_ENROLLMENTS,
    RELEASE,
    RENEW,
    SENDS_OF,
    claim_sql,
    next_due,
    next_wake,
    q,
    raw_sql,
)
from dripdrop.worker.storable import dump_rows

log = logging.getLogger("dripdrop.worker")

_ENROLLMENT_FIELDS = (
    "sequence_id",
    "sequence_version_id",
    "subscriber_type",
    "subscriber_id",
    "current_step_id",
    "started_at",
    "completed_at",
    "cancelled_at",
    "data",
    "metadata",
)


_ASYNC_COMMIT = text("SET LOCAL synchronous_commit TO OFF")
_SYNC_COMMIT = text("SET LOCAL synchronous_commit TO ON")


def _commit_mode(conn: Connection, durable: bool) -> None:
    """Make this transaction's commit wait for the WAL flush (``durable``) or not. Worker
    connections are asynchronous by default, so the common case costs no statement."""
    default_async = commits_async(conn)
    if durable and default_async:
        conn.execute(_SYNC_COMMIT)
    elif not durable and not default_async:
        conn.execute(_ASYNC_COMMIT)


class ClaimedEnrollment:
    """The enrollment part of a claimed row: plain attributes (read on every job), and a
    ``_mapping`` like SQLAlchemy rows so records can be built from it."""

    __slots__ = ("id", "id_text", "state", "tenant_key", *_ENROLLMENT_FIELDS)

    def __init__(self, r: Any) -> None:
        self.id = r.enrollment_id
        self.id_text = r.enrollment_id_text
        self.state = r.enrollment_state
        self.tenant_key = r.enrollment_tenant_key
        self.sequence_id = r.sequence_id
        self.sequence_version_id = r.sequence_version_id
        self.subscriber_type = r.subscriber_type
        self.subscriber_id = r.subscriber_id
        self.current_step_id = r.current_step_id
        self.started_at = r.started_at
        self.completed_at = r.completed_at
        self.cancelled_at = r.cancelled_at
        self.data = r.data
        self.metadata = r.metadata

    @property
    def _mapping(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__ if name != "id_text"}


def _fetch(
    conn: Connection, sql: str, schema: str, params: dict[str, Any], binary: bool = False
) -> list[Any]:
    """Run a hot query. On a sync psycopg connection the driver is used directly (binary rows as
    named tuples: SQLAlchemy's per-row work shows at thousands of rows a second); through the
    async engine (AsyncDripDrop) the same query goes through SQLAlchemy."""
    driver = conn.connection.driver_connection
    if isinstance(driver, psycopg.Connection):
        with driver.cursor(binary=binary, row_factory=namedtuple_row) as cur:
            cur.execute(raw_sql(sql, schema), params)
            return cur.fetchall()
    return list(conn.execute(q(sql, schema), params))


def claim_params(
    rt: Any,
    limit: int,
    token: uuid.UUID,
    now: datetime,
    lease_seconds: float,
    enrollment_id: uuid.UUID | None = None,
) -> tuple[str, dict[str, Any]]:
    """The claim query (for one enrollment when ``enrollment_id`` is given) and its parameters.

    The batch size is written into the statement rather than bound: a worker claims the same
    size every time, and with it known PostgreSQL's cached (generic) plan of the prepared
    statement is as good as a freshly planned one, so the claim is not planned on every call.
    """
    params = {"now": now, "token": token, "worker": rt.worker_id, "lease": lease_seconds}
    if enrollment_id is not None:
        params["enrollment_id"] = enrollment_id
    return _claim_sql(int(limit), enrollment_id is not None), params


@lru_cache(maxsize=64)
def _claim_sql(limit: int, one_enrollment: bool) -> str:
    return claim_sql(limit, one_enrollment)


def jobs_from_rows(
    rt: Any, conn: Connection | None, rows: list[Any], token: uuid.UUID, now: datetime
) -> list[Job]:
    """Jobs for claimed rows, with their (cached) definitions. Without ``conn`` a cache miss
    reads through the runtime's engine."""
    opened: Connection | None = None

    def db() -> Connection:
        nonlocal opened
        if conn is not None:
            return conn
        if opened is None:
            opened = rt.engine.connect()
        return opened

    defs = rt.defs
    versions: dict[Any, Any] = {}
    adapter_sets: dict[Any, Any] = {}
    jobs: list[Job] = []
    try:
        for r in rows:
            enrollment = ClaimedEnrollment(r)
            vid = enrollment.sequence_version_id
            version = versions.get(vid)
            if version is None:
                version = defs.fresh_version(vid) or defs.version(db(), vid)
                versions[vid] = version
            adapters = adapter_sets.get(version.tenant_key)
            if adapters is None:
                adapters = defs.fresh_adapters(version.tenant_key) or defs.adapters(
                    rt, db(), version.tenant_key
                )
                adapter_sets[version.tenant_key] = adapters
            jobs.append(
                Job(r, token, enrollment, version, version.step(r.step_id), adapters, now=now)
            )
        if jobs:  # suppressed recipients: one query for the batch, before anything renders
            check_suppressions(rt, db(), jobs)
    finally:
        if opened is not None:
            opened.close()
    return jobs


def jobs_needing_event_counts(jobs: list[Job]) -> list[Job]:
    return [
        j
        for j in jobs
        if j.step
        and (
            any(c.condition_type == "event" for c in j.step.conditions)
            or j.step.derived("flow_counts", j.version, None, lambda j=j: needs_counts(j))
        )
    ]


def apply_event_counts(jobs: list[Job], rows: Any) -> None:
    counts: dict[Any, dict[str, int]] = {}
    for c in rows:
        counts.setdefault(c.enrollment_id, {})[c.event_key] = c.n
    for j in jobs:
        j.event_counts = counts.get(j.enrollment.id, {})


def load_flow_inputs(conn: Connection, schema: str, jobs: list[Job]) -> None:
    """What throttles and digests read, one query each for the whole batch, only for the jobs
    whose steps need it (engine/flow.py)."""
    throttled, digests = jobs_needing_flow_inputs(jobs)
    if throttled:
        of: dict[Any, list[Job]] = {}
        for j in throttled:
            of.setdefault(j.enrollment.id, []).append(j)
        for r in conn.execute(q(SENDS_OF, schema), {"ids": list(of)}):
            for j in of[r.enrollment_id]:
                j.sends.setdefault(r.step_id, []).append(r.executed_at)
    if digests:
        by_id: dict[Any, list[Any]] = {}
        for ev in conn.execute(q(EVENTS_OF, schema), {"ids": [j.enrollment.id for j in digests]}):
            by_id.setdefault(ev.enrollment_id, []).append(
                (ev.event_key, ev.event_data, ev.occurred_at)
            )
        for j in digests:
            j.events = by_id.get(j.enrollment.id, [])


def claim_jobs(
    rt: Any,
    conn: Connection,
    limit: int,
    token: uuid.UUID,
    now: datetime,
    lease_seconds: float,
    enrollment_id: uuid.UUID | None = None,
    *,
    async_commit: bool = True,
) -> list[Job]:
    """Claim up to ``limit`` due executions (SKIP LOCKED) and load their definitions.
    ``enrollment_id`` restricts the claim to one enrollment (simulations)."""
    sql, params = claim_params(rt, limit, token, now, lease_seconds, enrollment_id)
    # A lost claim only means its lease is gone and the row is claimable again, so the claim
    # need not wait for the WAL flush.
    if async_commit:
        _commit_mode(conn, durable=False)
    rows = _fetch(conn, sql, rt.schema, params, binary=True)
    if not rows:
        return []
    return load_jobs(rt, conn, rows, token, now)


def load_jobs(
    rt: Any, conn: Connection, rows: list[Any], token: uuid.UUID, now: datetime
) -> list[Job]:
    """Jobs for rows just claimed (by the worker's claim or run_execution's), with everything
    they need loaded in the claim's transaction: definitions, event counts, flow inputs."""
    jobs = jobs_from_rows(rt, conn, rows, token, now)
    needs = jobs_needing_event_counts(jobs)
    if needs:
        apply_event_counts(
            needs,
            conn.execute(q(EVENT_COUNTS, rt.schema), {"ids": [j.enrollment.id for j in needs]}),
        )
    load_flow_inputs(conn, rt.schema, jobs)
    return jobs


# Outcome fields a FINISH row carries only when they are set.
_OPTIONAL = (
    "scheduled_for",
    "executed_at",
    "failed_at",
    "recipient",
    "payload",
    "response",
    "error_message",
    "adapter_id",
    "delivery_ms",
)


def _outcome_row(o: Outcome) -> dict[str, Any]:
    """An outcome as a FINISH batch row, without its null values."""
    row: dict[str, Any] = {"id": o.job.execution.id, "state": o.state, "retry_count": o.retry_count}
    for name in _OPTIONAL:
        value = getattr(o, name)
        if value is not None:
            row[name] = value
    if o.held:
        row["held"] = True
    if o.state == "sent" and isinstance(o.response, dict):
        # Stored in its own column, normalised, so provider webhooks can find the execution.
        message_id = message_id_key(o.response.get("provider_message_id"))
        if message_id is not None:
            row["provider_message_id"] = message_id
    return row


def _by_token(outcomes: list[Outcome]) -> list[list[Outcome]]:
    """Outcomes grouped by the claim (lease token) they came from; one group in the worker."""
    first = outcomes[0].job.token
    if all(o.job.token is first for o in outcomes):  # the worker's case: one claim
        return [outcomes]
    groups: dict[uuid.UUID, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(o.job.token, []).append(o)
    return list(groups.values())


def enrollments_awaiting_events(outcomes: list[Outcome]) -> list[Any]:
    """Enrollments whose next step is an event step (their past events decide its plan)."""
    out = []
    for o in outcomes:
        if o.job.version.has_event_steps and o.advances:
            step = next_step(o)
            if step is not None and step.timing.get("type") == "event":
                out.append(o.job.enrollment.id)
    return out


def only_new_events(
    conn: Connection,
    schema: str,
    outcomes: list[Outcome],
    events: dict[Any, list[tuple[str, Any, datetime]]],
) -> None:
    """An event step the chain comes back to (a loop, a branch) waits for an event newer than
    its last run: the one that woke it before must not wake it again at once. Only versions
    with transitions or splits can come back to a step, so only they pay this query."""
    again = [
        (o.job.enrollment.id, step.id)
        for o in outcomes
        if o.advances
        and (o.job.version.transitions or o.route is not None)
        and (step := next_step(o)) is not None
        and o.job.enrollment.id in events
    ]
    if not again:
        return
    last = {
        (r.enrollment_id, r.step_id): r.last
        for r in conn.execute(q(LAST_RUNS, schema), {"ids": [e for e, _ in again]})
    }
    for enrollment_id, step_id in again:
        ran = last.get((enrollment_id, step_id))
        if ran is not None:
            events[enrollment_id] = [e for e in events[enrollment_id] if e[2] > ran]


def next_step(o: Outcome) -> Any:
    """The step the chain goes to after this outcome (None: the end): its route when a
    transition or a split chose one, else the next position."""
    route = o.route
    if route is None:
        return o.job.version.step_after(o.job.execution.step_id)
    if route.to == COMPLETE:
        return None
    return route.target or o.job.version.step(route.to)


def finish_params(
    outcomes: list[Outcome], events: dict[Any, list[tuple[str, Any, datetime]]]
) -> tuple[dict[str, Any], bool]:
    """The FINISH statement's parameters for the outcomes of one claim, and whether a next step
    is due now. Times are the claim's (the clock the executions ran on)."""
    now = outcomes[0].job.now
    rows = []
    due_now = False
    for o in outcomes:
        row = _outcome_row(o)
        enrollment = o.job.enrollment
        if o.branch is not None:
            row["branch"] = o.branch
        if o.side is not None:  # a recurring step's next occurrence, beside the chain
            row.update(
                side_id=new_id_text(),
                side_step_id=o.side.step.id,
                side_due=o.side.due,
                side_channel=o.side.step.channel,
                side_occurrence=o.side.occurrence,
            )
            due_now = due_now or o.side.due <= now
        if o.halts:
            row["action"] = "halt"
        elif o.advances:
            step = next_step(o)
            if step is None:
                # With recurring steps, the chain's end completes the enrollment only once no
                # occurrence is left (complete_idle, after FINISH).
                row["action"] = "end_chain" if o.job.version.has_recurring else "complete"
                if o.route is not None and o.route.exit_reason:
                    row["exit_reason"] = o.route.exit_reason
            else:
                plan = plan_step(
                    step,
                    enrollment_start=enrollment.started_at,
                    previous_done=o.job.execution.scheduled_for or now,
                    events=events.get(enrollment.id, ()) if events else (),
                )
                row["action"] = "next"
                row["next_id"] = new_id_text()
                row["next_step_id"] = step.id
                row["next_channel"] = step.channel
                if plan.scheduled_for is not None:
                    row["next_due"] = plan.scheduled_for
                if plan.waiting_for is not None:
                    row["next_waiting"] = plan.waiting_for
                due_now = due_now or (plan.scheduled_for is not None and plan.scheduled_for <= now)
        rows.append(row)
    token = outcomes[0].job.token
    if any(o.job.token is not token and o.job.token != token for o in outcomes):
        raise ValueError("a FINISH batch holds the outcomes of one claim (one lease token)")
    params = {"rows": dump_rows(rows), "now": now, "token": token}
    return params, due_now


class Recorded:
    """What a record wrote: ``written`` maps execution id → live (False: the execution was
    cancelled while in flight and kept its state); ``waiting`` are the outcomes whose
    enrollment another transaction held, to be written next time."""

    __slots__ = ("waiting", "written")

    def __init__(self) -> None:
        self.written: dict[Any, bool] = {}
        self.waiting: list[Outcome] = []


def lock_enrollments(conn: Connection, schema: str, ids: set[str]) -> set[str]:
    """Lock these enrollments (id order, SKIP LOCKED); the ids (text) now held."""
    return {r[0] for r in _fetch(conn, LOCK_ENROLLMENTS, schema, {"ids": ",".join(ids)})}


def record_outcomes(
    rt: Any, conn: Connection, outcomes: list[Outcome], *, async_commit: bool = True
) -> Recorded:
    """Write outcomes (only where this worker still holds the lease) and move enrollments on:
    schedule each next step, complete finished enrollments, stop halted ones.

    The enrollments are locked first, so no pause, restart, unenroll or event can commit
    between what this reads and what it writes; an enrollment another transaction holds keeps
    its outcomes in ``waiting``.

    Unless ``rt.durable_outcomes``, the commit does not wait for the WAL flush: a database crash
    may forget the last outcomes, and then those executions (their leases expired) run again
    under the same idempotency key — at least once, never lost — while a batch costs one fsync
    less."""
    recorded = Recorded()
    if not outcomes:
        return recorded
    if async_commit:
        _commit_mode(conn, durable=rt.durable_outcomes)
    wanted = {o.job.enrollment.id_text for o in outcomes}
    held = lock_enrollments(conn, rt.schema, wanted)
    if len(held) < len(wanted):
        recorded.waiting = [o for o in outcomes if o.job.enrollment.id_text not in held]
        outcomes = [o for o in outcomes if o.job.enrollment.id_text in held]
        if not outcomes:
            return recorded
    waiting = enrollments_awaiting_events(outcomes)
    events: dict[Any, list[tuple[str, Any, datetime]]] = {}
    if waiting:
        for ev in conn.execute(q(EVENTS_OF, rt.schema), {"ids": waiting}):
            events.setdefault(ev.enrollment_id, []).append(
                (ev.event_key, ev.event_data, ev.occurred_at)
            )
        only_new_events(conn, rt.schema, outcomes, events)
    due_now = False
    for claim in _by_token(outcomes):
        params, due = finish_params(claim, events)
        recorded.written.update(_fetch(conn, FINISH, rt.schema, params))
        due_now = due_now or due
    idle = [o.job.enrollment.id for o in outcomes if o.job.version.has_recurring]
    if idle:  # chains that ended, or repeats that ran out: complete what has nothing left
        conn.execute(q(COMPLETE_IDLE, rt.schema), {"ids": idle, "now": outcomes[0].job.now})
    if due_now and recorded.written:
        wake_workers(conn, rt.schema)
    return recorded


def _refreshed(conn: Connection, o: Outcome) -> Outcome:
    """The outcome with its next step worked out from definitions read now (a step may have
    been deleted while the execution ran)."""
    from dataclasses import replace

    from dripdrop.engine.defs import load_version

    return replace(o, job=replace(o.job, version=load_version(conn, o.job.version.id)))


def _bare(o: Outcome, problem: str) -> Outcome:
    """The outcome without what could not be stored: state and timing only."""
    from dataclasses import replace

    note = f"the outcome's details could not be stored ({problem})"
    message = f"{o.error_message}; {note}" if o.error_message else note
    return replace(o, recipient=None, payload=None, response=None, error_message=message[:2000])


def record_one_by_one(rt: Any, conn: Connection, outcomes: list[Outcome]) -> Recorded:
    """The fallback when a batch's record fails for a reason other than a lost connection:
    each outcome in its own savepoint, so one that cannot be written is the only one affected.
    A failing one is tried again with its definitions read afresh, then without its details;
    if even that fails it is left to its lease."""
    rt.defs.clear()  # the failure may come from definitions that changed under the batch
    recorded = Recorded()
    _commit_mode(conn, durable=rt.durable_outcomes)
    for o in outcomes:
        one = _record_with_fallbacks(rt, conn, o)
        if one is not None:
            recorded.written.update(one.written)
            recorded.waiting += one.waiting
    return recorded


def _record_with_fallbacks(rt: Any, conn: Connection, o: Outcome) -> Recorded | None:
    try:
        return _record_in_savepoint(rt, conn, o)
    except _Unstorable:
        pass
    fresh = _refreshed(conn, o)
    try:
        return _record_in_savepoint(rt, conn, fresh)
    except _Unstorable as exc:
        problem = str(exc)
    try:
        return _record_in_savepoint(rt, conn, _bare(fresh, problem))
    except _Unstorable as exc:
        log.error("execution %s cannot be recorded: %s", o.job.execution.id, exc)
        return None


class _Unstorable(Exception):
    pass


def _record_in_savepoint(rt: Any, conn: Connection, outcome: Outcome) -> Recorded:
    try:
        with conn.begin_nested():
            return record_outcomes(rt, conn, [outcome], async_commit=False)
    except Exception as exc:
        if connection_lost(exc):
            raise
        problem = _describe(exc)
        log.error("execution %s: recording failed: %s", outcome.job.execution.id, problem)
        raise _Unstorable(problem) from exc


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlstate", None)
    text = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
    return f"{type(orig).__name__}{f' {code}' if code else ''}: {text}"[:500]


def connection_lost(exc: BaseException) -> bool:
    """Is this the database going away (worth retrying as it is), rather than a statement that
    would fail the same way again (a value too large, a timeout, out of memory)?"""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    orig = getattr(exc, "orig", None) or exc
    if not isinstance(orig, psycopg.Error):
        return False
    code = orig.sqlstate
    if code is None:  # raised by the client: connection closed, broken or unreachable
        return isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError)
    # connection_exception, admin/crash shutdown, cannot connect now, too many connections
    return code.startswith("08") or code in ("57P01", "57P02", "57P03", "53300")


def finish_and_claim(
    rt: Any,
    conn: Connection,
    outcomes: list[Outcome],
    limit: int,
    token: uuid.UUID,
    now: datetime,
    lease_seconds: float,
    enrollment_id: uuid.UUID | None = None,
) -> tuple[Recorded, list[Job]]:
    """Record outcomes and claim the next batch in a single transaction (one commit per batch
    instead of two)."""
    _commit_mode(conn, durable=bool(outcomes) and rt.durable_outcomes)
    recorded = record_outcomes(rt, conn, outcomes, async_commit=False)
    if limit <= 0:
        return recorded, []
    jobs = claim_jobs(rt, conn, limit, token, now, lease_seconds, enrollment_id, async_commit=False)
    return recorded, jobs


def release_jobs(rt: Any, conn: Connection, token: uuid.UUID, ids: list[str]) -> None:
    """Give claimed executions back (their runs were stopped before an outcome)."""
    conn.execute(q(RELEASE, rt.schema), {"token": token, "ids": ",".join(ids)})


def renew_leases(
    rt: Any, conn: Connection, claims: dict[uuid.UUID, list[str]], lease_seconds: float
) -> None:
    """The heartbeat: push back the lease of executions still in flight, per claim."""
    _commit_mode(conn, durable=False)
    for token, ids in claims.items():
        conn.execute(
            q(RENEW, rt.schema), {"token": token, "ids": ",".join(ids), "lease": lease_seconds}
        )


def next_due_at(rt: Any, conn: Connection) -> datetime | None:
    return next_due(conn, rt.schema)


def idle_timeout(rt: Any, conn: Connection, poll_interval: float) -> float:
    """Seconds an idle worker may sleep: until the next unleased execution is due or the first
    lease ahead of it runs out, at most ``poll_interval``."""
    next_free, lease_left = next_wake(conn, rt.schema)
    timeout = poll_interval
    if next_free is not None:
        timeout = min(timeout, (next_free - rt.now()).total_seconds())
    if lease_left is not None:
        timeout = min(timeout, lease_left)
    return max(0.0, timeout)


__all__ = [
    "Recorded",
    "claim_jobs",
    "connection_lost",
    "finish_and_claim",
    "idle_timeout",
    "load_jobs",
    "next_due_at",
    "record_one_by_one",
    "record_outcomes",
    "release_jobs",
    "renew_leases",
]
