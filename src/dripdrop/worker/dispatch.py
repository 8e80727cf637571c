"""The dispatcher: hands due executions to a scheduler other than PostgreSQL (Celery, or any
``Scheduler`` object), which runs each with ``dd.run_execution(id)``.

A round reserves up to ``batch_size`` due rows (``worker/queries.py: DISPATCH``, one statement,
``FOR UPDATE SKIP LOCKED`` on the due index like the worker's claim) for ``redispatch_after``
seconds, commits, then calls ``scheduler.schedule(id, when)`` for each and keeps the job ids it
returns (one more statement). The reservation is not a claim: ``run_execution`` claims the row
for real, under a lease with a heartbeat. So

- a job the scheduler loses (a purged queue, a broker restart) is handed out again once its
  reservation runs out;
- a job whose worker dies mid-run leaves a lease that runs out; the row is then due and
  unreserved, and handed out again;
- a job that runs twice (a redelivered message) finds the row claimed or finished: nothing runs
  twice.

Any number of dispatchers may run (on any machines): they skip each other's rows. Like the
worker, a dispatcher wakes on NOTIFY and polls up to the next due time (at most
``poll_interval``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from typing import Any

from dripdrop.engine.notify import channel_name
from dripdrop.worker.batch import _fetch, idle_timeout
from dripdrop.worker.queries import DISPATCH, DISPATCHED_JOBS, UNDISPATCH, q

log = logging.getLogger("dripdrop.dispatch")

#: Seconds a dispatched execution is reserved for its job: a job that has not claimed its row by
#: then (a lost message) is handed out again. Longer than the scheduler's usual queueing delay.
REDISPATCH_AFTER = 60.0
BATCH_SIZE = 500


def reserve_due(rt: Any, conn: Any, limit: int, window: float) -> list[tuple[uuid.UUID, Any]]:
    """Reserve up to ``limit`` due executions for ``window`` seconds: (id, due time) each."""
    params = {
        "now": rt.now(),
        "limit": limit,
        "dispatcher": f"dispatch:{rt.worker_id}",
        "window": window,
    }
    return [(r.id, r.scheduled_for) for r in _fetch(conn, DISPATCH, rt.schema, params)]


def note_jobs(rt: Any, conn: Any, jobs: list[tuple[uuid.UUID, str]], refused: list[Any]) -> None:
    """Keep the job ids the scheduler gave; give back what it refused (handed out next round)."""
    if jobs:
        conn.execute(
            q(DISPATCHED_JOBS, rt.schema),
            {"ids": [i for i, _ in jobs], "jobs": [j[:200] for _, j in jobs]},
        )
    if refused:
        conn.execute(q(UNDISPATCH, rt.schema), {"ids": refused})


def dispatch_once(
    rt: Any,
    scheduler: Any,
    *,
    batch_size: int = BATCH_SIZE,
    redispatch_after: float = REDISPATCH_AFTER,
) -> int:
    """One round: reserve due executions, hand each to the scheduler. Returns how many it took."""
    engine = rt.worker_engine
    with engine.begin() as conn:  # committed before any job can try to claim its row
        due = reserve_due(rt, conn, batch_size, redispatch_after)
    if not due:
        return 0
    jobs: list[tuple[uuid.UUID, str]] = []
    refused: list[uuid.UUID] = []
    for execution_id, when in due:
        try:
            jobs.append((execution_id, str(scheduler.schedule(execution_id, when))))
        except Exception as exc:
            log.warning("the scheduler refused execution %s: %r", execution_id, exc)
            refused.append(execution_id)
    try:
        with engine.begin() as conn:
            note_jobs(rt, conn, jobs, refused)
    except Exception as exc:  # only bookkeeping: the reservations run out by themselves
        log.warning("could not note %d dispatched job(s): %s", len(jobs), exc)
    return len(jobs)


class _Listener:
    """A LISTEN connection (sync psycopg) to wake the dispatcher when work is due now."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.conn: Any = None

    def wait(self, timeout: float) -> bool:
        """True on a notification, False after ``timeout`` seconds without one."""
        import psycopg
        from sqlalchemy.engine import make_url

        if self.conn is None:
            url = make_url(self.rt.database_url).set(drivername="postgresql")
            self.conn = psycopg.connect(
                url.render_as_string(hide_password=False),
                autocommit=True,
                **self.rt.worker_connect_args(),
            )
            self.conn.execute(f'LISTEN "{channel_name(self.rt.schema)}"')
        try:
            return any(True for _ in self.conn.notifies(timeout=max(0.0, timeout), stop_after=1))
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


def run_dispatcher(
    rt: Any,
    scheduler: Any,
    stop: threading.Event,
    *,
    batch_size: int = BATCH_SIZE,
    redispatch_after: float = REDISPATCH_AFTER,
    poll_interval: float = 1.0,
    listen: bool = True,
) -> int:
    """Dispatch until ``stop`` is set; returns how many jobs it handed out."""
    total = 0
    listener = _Listener(rt) if listen else None
    # Checked at least this often: a stop never waits a whole poll interval.
    step = min(poll_interval, 0.5)
    try:
        while not stop.is_set():
            try:
                taken = dispatch_once(
                    rt, scheduler, batch_size=batch_size, redispatch_after=redispatch_after
                )
                total += taken
                if taken >= batch_size:
                    continue  # more may be due at once
                with rt.worker_engine.begin() as conn:
                    timeout = idle_timeout(rt, conn, poll_interval)
            except Exception as exc:  # the database is away: wait and retry, never exit
                log.error("dispatching failed: %s", exc)
                timeout = 1.0
            deadline = time.monotonic() + timeout
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                if listener is None:
                    stop.wait(min(left, step))
                    continue
                try:
                    if listener.wait(min(left, step)):
                        break  # work due now: look at once
                except Exception as exc:
                    log.warning("LISTEN connection lost (%s); polling", exc)
                    stop.wait(min(left, step))
    finally:
        if listener is not None:
            listener.close()
    return total
