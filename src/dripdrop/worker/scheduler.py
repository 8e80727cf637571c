"""The ``Scheduler`` protocol and its default: PostgreSQL itself.

With the default, the ``step_executions`` row *is* the job: scheduling sets its due time and
cancelling cancels it; workers find due rows with the claim query. Another engine (Celery,
procrastinate…) implements the same two methods and runs each job by calling
``dd.run_execution(execution_id)`` when it fires.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import update

from dripdrop.config import aware
from dripdrop.db import models as m
from dripdrop.engine.notify import wake_workers
from dripdrop.errors import NotFound

X = m.StepExecution.__table__


@runtime_checkable
class Scheduler(Protocol):
    """Runs an execution at a time. ``schedule`` returns a job id that ``cancel`` accepts."""

    def schedule(self, execution_id: uuid.UUID, when: datetime) -> str: ...

    def cancel(self, job_id: str) -> None: ...


class PostgresScheduler:
    """The default scheduler: the execution row is the job (no second job table)."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt

    def schedule(self, execution_id: uuid.UUID, when: datetime) -> str:
        """(Re)schedule a scheduled execution at ``when``; wakes workers if it is due now."""
        when = aware(when)
        with self.rt.engine.begin() as conn:
            row = conn.execute(
                update(X)
                .where(X.c.id == execution_id, X.c.state == "scheduled")
                .values(scheduled_for=when, waiting_for=None, updated_at=self.rt.now())
                .returning(X.c.id)
            ).first()
            if row is None:
                raise NotFound(f"no scheduled execution {execution_id}")
            if when <= self.rt.now():
                wake_workers(conn, self.rt.schema)
        return str(execution_id)

    def cancel(self, job_id: str) -> None:
        """Cancel a scheduled execution (a no-op if it already ran)."""
        with self.rt.engine.begin() as conn:
            conn.execute(
                update(X)
                .where(X.c.id == uuid.UUID(job_id), X.c.state == "scheduled")
                .values(
                    state="cancelled",
                    error_message="cancelled by the scheduler",
                    updated_at=self.rt.now(),
                )
            )
