"""Running one execution on request: what ``dd.run_execution(id)`` does for a scheduler other
than PostgreSQL (Celery, or any object implementing ``Scheduler``).

It keeps the worker's rules, reusing its parts: the claim stamps a lease (``CLAIM_ONE``: never a
row that is not due, already finished, held, or claimed by someone else), a heartbeat renews the
lease while the execution runs, a delivery that had to wait confirms its claim first (the fence),
and the outcome is written by the worker's own record (``batch.record_outcomes``: the enrollment
locked, the outcome written only under this lease, the next step planned — one transaction).
A run that is cut short (the process killed) leaves its lease to run out; the row is then due
again and handed out again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from typing import Any

import psycopg
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from dripdrop.engine.process import Job, Outcome, released_outcome, run_job, run_job_within
from dripdrop.observability import instrument, tracing
from dripdrop.records import ExecutionRun
from dripdrop.worker import eager
from dripdrop.worker.batch import (
    _fetch,
    connection_lost,
    load_jobs,
    record_one_by_one,
    record_outcomes,
    release_jobs,
    renew_leases,
)
from dripdrop.worker.loop_tuning import loop_factory
from dripdrop.worker.queries import CLAIM_ONE, EXECUTION_STATUS, q
from dripdrop.worker.runner import trace_links

log = logging.getLogger("dripdrop.worker")

#: The lease of a run_execution claim (renewed every third of it while the execution runs).
LEASE_SECONDS = 30.0
_LOCK_TIMEOUT = text("SET LOCAL lock_timeout = '5s'")

#: How long a finished outcome keeps trying to be written while another transaction holds its
#: enrollment (an API call, a host transaction) before it is left to its lease.
RECORD_PATIENCE = 30.0


def claim_one(
    rt: Any, conn: Connection, execution_id: uuid.UUID, token: uuid.UUID, lease_seconds: float
) -> Job | str:
    """Claim this execution; the job, or why it cannot run now: ``not_found``, ``not_due``,
    ``held`` (a paused enrollment), ``claimed`` (another worker or run holds it), or the state it
    already reached (``sent``, ``failed``, ``skipped``, ``cancelled``)."""
    now = rt.now()
    params = {
        "id": execution_id,
        "now": now,
        "token": token,
        "worker": rt.worker_id,
        "lease": lease_seconds,
    }
    # The claim waits for a row lock held by another transaction, but not for long: one that
    # holds it longer (an open host transaction) leaves the job to be handed out again later.
    conn.execute(_LOCK_TIMEOUT)
    try:
        rows = _fetch(conn, CLAIM_ONE, rt.schema, params, binary=True)
    except (psycopg.errors.LockNotAvailable, OperationalError) as exc:
        if not isinstance(getattr(exc, "orig", exc), psycopg.errors.LockNotAvailable):
            raise
        return "claimed"
    if rows:
        [job] = load_jobs(rt, conn, rows, token, now)
        return job
    row = conn.execute(q(EXECUTION_STATUS, rt.schema), {"id": execution_id}).first()
    if row is None:
        return "not_found"
    if row.state != "scheduled":
        return str(row.state)
    if row.held:
        return "held"
    if row.scheduled_for is None or row.scheduled_for > now:
        return "not_due"
    return "claimed"  # a live claim, or a row locked by a claim or record right now


async def _heartbeat(db: Any, job: Job, lease_seconds: float) -> None:
    claims = {job.token: [job.execution.id_text]}
    while True:
        await asyncio.sleep(lease_seconds / 3)
        try:
            await db.run(renew_leases, claims, lease_seconds)
        except Exception as exc:  # a later beat may get through; else the lease runs out
            log.warning("renewing the lease of execution %s failed: %s", job.execution.id, exc)


async def _record(db: Any, outcome: Outcome) -> bool | None:
    """Write the outcome; True when written live, False when the execution had been cancelled
    meanwhile (it keeps that state), None when it was not written (the lease was lost)."""
    execution_id = outcome.job.execution.id
    delay, waited = 0.02, 0.0
    while True:
        try:
            recorded = await db.run(record_outcomes, [outcome])
        except Exception as exc:
            if connection_lost(exc):
                raise
            log.error("recording execution %s failed (%s); alone", execution_id, type(exc).__name__)
            recorded = await db.run(record_one_by_one, [outcome])
        if not recorded.waiting:
            return recorded.written.get(execution_id)
        # Another transaction holds the enrollment (the record never waits on a lock): again.
        if waited >= RECORD_PATIENCE:
            log.error("execution %s: its enrollment stayed locked; left to its lease", execution_id)
            return None
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 2, 1.0)


async def _run(job: Job, services: Any, now: Any) -> Outcome:
    if eager.runs_in_process(job):
        return await run_job(job, services, now)
    return await run_job_within(job, services, now, services.execution_timeout)


async def run_one(
    rt: Any, db: Any, services: Any, execution_id: uuid.UUID, lease_seconds: float = LEASE_SECONDS
) -> ExecutionRun:
    """Claim, run and record one execution (see the module's docstring)."""
    token = uuid.uuid4()
    claimed = await db.run(claim_one, execution_id, token, lease_seconds)
    if isinstance(claimed, str):
        return ExecutionRun(execution_id=execution_id, outcome=claimed, ran=False)
    job = claimed
    now = job.now
    assert now is not None
    counted = instrument.metrics.ENABLED and not services.dry_run
    if counted:  # lag and lease recoveries, as a worker's claim counts them
        instrument.observe_claim(rt.schema, [job], now)
    heartbeat = asyncio.create_task(_heartbeat(db, job, lease_seconds))
    try:
        if tracing.enabled():  # one dripdrop.execution span, linked to its enroll's
            links = await trace_links(db, [job])
            outcome = await tracing.run_in_span(_run, job, links, services, now)
        else:
            outcome = await _run(job, services, now)
    except asyncio.CancelledError:
        outcome = released_outcome(job)
        with contextlib.suppress(Exception):
            await asyncio.shield(db.run(release_jobs, job.token, [job.execution.id_text]))
        raise
    except Exception as exc:  # run_job never raises: a bug; the execution runs again later
        log.error("execution %s crashed: %r", execution_id, exc)
        outcome = released_outcome(job)
    finally:
        heartbeat.cancel()
    if outcome.kind == "released":
        await db.run(release_jobs, job.token, [job.execution.id_text])
        return ExecutionRun(execution_id=execution_id, outcome="released", ran=False)
    live = await _record(db, outcome)
    if live is None:
        return ExecutionRun(execution_id=execution_id, outcome="lease_lost", ran=True)
    kind = outcome.kind if live else ("sent" if outcome.kind == "sent" else "cancelled")
    if counted and kind in ("sent", "skipped", "failed", "retried", "deferred"):
        instrument.metrics.record_outcomes(
            rt.schema, Counter([instrument.outcome_key(outcome, kind)])
        )
    return ExecutionRun(
        execution_id=execution_id,
        outcome=kind,
        ran=True,
        state=outcome.state if live else "cancelled",
        scheduled_for=outcome.scheduled_for,
        error_message=outcome.error_message,
    )


class ExecutionRunner:
    """``run_one`` for the sync face, on one event loop thread kept for the instance's life: its
    services (the HTTP client and its TLS context, the database threads) are built once, not for
    every execution — a Celery worker process runs thousands of them. Thread-safe."""

    def __init__(self, rt: Any) -> None:
        import threading

        self.rt = rt
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._services: Any = None

    def _start(self) -> asyncio.AbstractEventLoop:
        import threading

        from dripdrop.worker.db import ThreadDb
        from dripdrop.worker.services import Services

        with self._lock:
            if self._loop is None:
                loop = loop_factory()()
                thread = threading.Thread(
                    target=loop.run_forever, name="dripdrop-run-execution", daemon=True
                )
                thread.start()

                async def services() -> Any:
                    return Services(self.rt, ThreadDb(self.rt))

                self._services = asyncio.run_coroutine_threadsafe(services(), loop).result()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, execution_id: uuid.UUID, lease_seconds: float) -> ExecutionRun:
        loop = self._start()
        services = self._services
        future = asyncio.run_coroutine_threadsafe(
            run_one(self.rt, services.db, services, execution_id, lease_seconds), loop
        )
        return future.result()

    def close(self) -> None:
        with self._lock:
            loop, thread, services = self._loop, self._thread, self._services
            self._loop = self._thread = self._services = None
        if loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(services.aclose(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        loop.close()
