"""Cancelling one scheduled execution without stranding its enrollment.

An execution that will never run ends its enrollment's chain there: left ``active`` with nothing
scheduled, the enrollment would wait forever. So when the cancelled execution was the last one
scheduled for its enrollment (and not a replay, which never moves an enrollment), the enrollment
is cancelled too, as ``unenroll`` does. Everything happens under the enrollment's row lock, like
every other change to its chain, so a worker recording an outcome meanwhile sees it.

If a dispatcher had handed the execution to a scheduler (``worker/dispatch.py``), the scheduler's
``cancel(job_id)`` is told, best effort, **after the commit** (``db/after_commit.py``): never while
the enrollment's row lock is held, which the worker's record needs — a slow or unreachable
scheduler backend (a Celery broker that is down) would otherwise stall every outcome of that
enrollment. Its failure is logged and undoes nothing: the row is the source of truth, and a job
that runs anyway finds nothing to claim.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from dripdrop.db import models as m
from dripdrop.db.after_commit import after_commit
from dripdrop.definitions.common import as_uuid, get_row
from dripdrop.definitions.inputs import check_text
from dripdrop.records import StepExecution, from_row

E = m.Enrollment.__table__
X = m.StepExecution.__table__
log = logging.getLogger("dripdrop")

#: ``locked_by`` of a row a dispatcher handed to a scheduler: ``job:<the scheduler's job id>``.
JOB_PREFIX = "job:"


def cancel_execution(
    rt: Any, conn: Connection, execution_id: Any, reason: str | None = None
) -> StepExecution:
    """Cancel a scheduled execution (nothing changes if it already finished). When it was the
    last execution scheduled for its enrollment, the enrollment is cancelled too, so it never
    waits for a step that will not run. A scheduler it was handed to is told to drop the job
    once the transaction has committed."""
    xid = as_uuid(execution_id, "execution_id")
    check_text(reason, "reason", max_length=500, optional=True)
    found = get_row(conn, X, xid, "execution")
    # The enrollment first, as every change to a chain does (the worker's record takes it too).
    enrollment = conn.execute(
        select(E.c.id, E.c.state).where(E.c.id == found.enrollment_id).with_for_update()
    ).one()
    now = rt.now()
    row = conn.execute(
        update(X)
        .where(X.c.id == xid, X.c.state == "scheduled")
        .values(
            state="cancelled",
            held=False,
            error_message=reason or "cancelled",
            updated_at=now,
        )
        .returning(X, X.c.locked_by, X.c.lease_token, X.c.replay_of)
    ).first()
    if row is None:  # already finished (or cancelled): nothing to do
        return from_row(StepExecution, found)
    if row.replay_of is None and enrollment.state in ("active", "paused"):
        others = conn.execute(
            select(func.count())
            .select_from(X)
            .where(
                and_(
                    X.c.enrollment_id == enrollment.id,
                    X.c.state == "scheduled",
                    X.c.replay_of.is_(None),
                )
            )
        ).scalar_one()
        if not others:
            conn.execute(
                update(E)
                .where(E.c.id == enrollment.id)
                .values(state="cancelled", cancelled_at=now, current_step_id=None, updated_at=now)
            )
    job = row.locked_by or ""
    if row.lease_token is None and job.startswith(JOB_PREFIX):
        after_commit(conn, functools.partial(_withdraw, rt, job[len(JOB_PREFIX) :]))
    return from_row(StepExecution, row)


def _withdraw(rt: Any, job_id: str) -> None:
    """Tell the scheduler the job is no longer wanted (after the commit); its failure changes
    nothing."""
    from dripdrop.worker.scheduler import is_postgres

    scheduler = getattr(rt, "scheduler", None)
    if scheduler is None or is_postgres(scheduler):
        return
    try:
        scheduler.cancel(job_id)
    except Exception as exc:
        log.warning("the scheduler could not cancel job %s: %s", job_id[:100], type(exc).__name__)
