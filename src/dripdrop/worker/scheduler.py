"""The ``Scheduler`` protocol, its default (PostgreSQL itself), and choosing one.

With the default, the ``step_executions`` row *is* the job: workers (``dripdrop worker``) claim
due rows themselves, and nothing is handed to anyone.

Any other scheduler (``"celery"``, or an object with the two methods below) is driven by a
**dispatcher** (``dd.run_dispatcher()``, ``dripdrop dispatch``; ``worker/dispatch.py``): it
reserves each due row for a while and calls ``schedule(execution_id, when)``; the scheduler's
job calls ``dd.run_execution(execution_id)``, which claims the row under the worker's rules, runs
it and records the outcome. The row stays the source of truth: a job the scheduler loses is
handed out again when its reservation runs out, and a job that runs twice finds the row claimed
or finished and does nothing.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import update

from dripdrop.config import aware
from dripdrop.db import models as m
from dripdrop.engine.notify import wake_workers
from dripdrop.errors import NotFound, ValidationError

X = m.StepExecution.__table__
log = logging.getLogger("dripdrop.worker")

#: The names ``DripDrop(scheduler=...)`` accepts besides a Scheduler object.
SCHEDULER_NAMES = ("postgres", "celery")


@runtime_checkable
class Scheduler(Protocol):
    """Runs executions for DripDrop.

    ``schedule(execution_id, when)`` is called by a dispatcher once the execution is due
    (``when`` is its due time, now or in the past): arrange for ``dd.run_execution(execution_id)``
    to be called soon, and return an id for that job. It may run more than once, or never — the
    row decides: a second run finds it claimed or finished, and a job lost is handed out again
    after the dispatcher's ``redispatch_after`` window. Raising refuses the job: it is handed out
    again on the next round.

    ``cancel(job_id)`` is called (best effort) with an id ``schedule`` returned when DripDrop
    cancels that execution (``dd.cancel_execution``): drop the job if it has not run. A job that
    runs anyway finds its execution cancelled and does nothing.
    """

    def schedule(self, execution_id: uuid.UUID, when: datetime) -> str: ...

    def cancel(self, job_id: str) -> None: ...


class PostgresScheduler:
    """The default scheduler: the execution row is the job (no second job table), workers claim
    due rows themselves. ``schedule`` moves a scheduled execution's due time; ``cancel`` cancels
    it as ``dd.cancel_execution`` does (its enrollment ends when nothing else is scheduled)."""

    name = "postgres"

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
        """Cancel a scheduled execution (a no-op if it already ran), leaving its enrollment
        consistent (see :func:`dripdrop.engine.cancel.cancel_execution`)."""
        from dripdrop.engine.cancel import cancel_execution

        with self.rt.engine.begin() as conn:
            cancel_execution(self.rt, conn, job_id, reason="cancelled by the scheduler")


def is_postgres(scheduler: Any) -> bool:
    return isinstance(scheduler, PostgresScheduler)


def resolve_scheduler(scheduler: Any, rt: Any) -> Any:
    """``DripDrop(scheduler=...)``: ``"postgres"`` (default), ``"celery"`` (configured from
    ``DRIPDROP_CELERY_*``, see :mod:`dripdrop.scheduling.celery`), or a Scheduler object."""
    if scheduler is None or scheduler == "postgres":
        return PostgresScheduler(rt)
    if scheduler == "celery":
        from dripdrop.scheduling.celery import CeleryScheduler

        return CeleryScheduler.from_env()
    if isinstance(scheduler, str) or not isinstance(scheduler, Scheduler):
        shown = repr(scheduler) if isinstance(scheduler, str) else type(scheduler).__name__
        raise ValidationError.single(
            "scheduler",
            f"must be 'postgres', 'celery' or an object with schedule(execution_id, when) and "
            f"cancel(job_id) methods, not {shown[:80]}",
        )
    return scheduler


def check_run_execution(execution_id: Any, lease_seconds: Any) -> uuid.UUID:
    """``run_execution``'s arguments, as ValidationErrors naming them."""
    from dripdrop.definitions.common import as_uuid

    xid = as_uuid(execution_id, "execution_id")
    _check_seconds({"lease_seconds": lease_seconds}, 0.001)
    return xid


def check_dispatcher_options(
    batch_size: Any, redispatch_after: Any, poll_interval: Any, listen: Any
) -> None:
    """``run_dispatcher``'s options, as ValidationErrors naming them."""
    from dripdrop.definitions.inputs import check_bool, check_int, gather

    errors: dict[str, list[str]] = {}
    gather(
        errors, lambda v, f: check_int(v, f, minimum=1, maximum=10_000), batch_size, "batch_size"
    )
    gather(errors, check_bool, listen, "listen")
    try:
        _check_seconds({"redispatch_after": redispatch_after, "poll_interval": poll_interval}, 0.01)
    except ValidationError as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)


def _check_seconds(values: dict[str, Any], floor: float) -> None:
    errors = {}
    for name, value in values.items():
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not (number and floor <= value <= 86_400):
            errors[name] = [f"must be a number of seconds from {floor:g} to 86400"]
    if errors:
        raise ValidationError(errors)
