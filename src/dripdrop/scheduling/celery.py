"""Celery as DripDrop's scheduler: each due execution becomes a Celery task that runs it.

Two kinds of processes, configured from the environment (``DRIPDROP_DATABASE_URL``,
``DRIPDROP_SCHEMA_NAME``, ``DRIPDROP_ENCRYPTION_KEY`` … and ``DRIPDROP_CELERY_BROKER_URL``)::

    dripdrop dispatch --scheduler celery                       # hands due executions out
    celery -A dripdrop.scheduling.celery worker -Q dripdrop    # runs them

or, with a Celery app of your own::

    scheduler = CeleryScheduler(app, dripdrop=lambda: DripDrop(DATABASE_URL))
    dd = DripDrop(DATABASE_URL, scheduler=scheduler)   # dd.run_dispatcher() hands work out

The PostgreSQL row stays the source of truth (``worker/dispatch.py``): a message the broker loses
is found again once the dispatcher's reservation runs out, and a message delivered twice (a
redelivery after a worker was killed) finds the execution claimed or finished, so nothing runs
twice. Tasks are acknowledged late and given back when their worker process dies, so the broker
redelivers them too; either way, the claim decides.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

try:
    from celery import Celery, signals
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the Celery scheduler needs Celery: pip install 'dripdrop-engine[celery]'"
    ) from exc

log = logging.getLogger("dripdrop.celery")

TASK_NAME = "dripdrop.run_execution"
DEFAULT_QUEUE = "dripdrop"


class CeleryScheduler:
    """A :class:`~dripdrop.worker.scheduler.Scheduler` sending each due execution to the task
    ``dripdrop.run_execution`` on ``queue``. The task runs ``run_execution`` with the DripDrop
    instance this scheduler is bound to (``DripDrop(scheduler=...)`` binds itself) or that
    ``dripdrop()`` builds in the worker process (default: ``DripDrop(scheduler=self)`` from the
    environment). Job ids are the executions' ids, so a cancel revokes every copy of the task."""

    name = "celery"

    def __init__(
        self,
        app: Celery,
        *,
        queue: str = DEFAULT_QUEUE,
        dripdrop: Callable[[], Any] | None = None,
        lease_seconds: float = 30.0,
    ) -> None:
        self.app = app
        self.queue = queue
        self.lease_seconds = lease_seconds
        self._factory = dripdrop
        self._instance: Any = None
        self._lock = threading.Lock()

        def run_execution(execution_id: str) -> dict[str, Any]:
            return self._run(execution_id)

        self.task = app.task(
            name=TASK_NAME,
            # Acknowledged once run, and given back if the worker process dies mid-task: the
            # broker redelivers it; the execution's claim keeps it from running twice.
            acks_late=True,
            reject_on_worker_lost=True,
            ignore_result=True,
        )(run_execution)
        _forked_instances.append(self)

    @classmethod
    def from_env(cls) -> CeleryScheduler:
        """The scheduler of ``DripDrop(scheduler="celery")`` and of ``celery -A
        dripdrop.scheduling.celery``: the module's app (``DRIPDROP_CELERY_*``)."""
        return scheduler

    def bind(self, dd: Any) -> None:
        """The instance whose ``run_execution`` the task calls (unless a factory was given)."""
        if self._factory is None and self._instance is None:
            self._instance = dd

    def dripdrop(self) -> Any:
        """The DripDrop instance that runs executions in this process."""
        with self._lock:
            if self._instance is None:
                if self._factory is not None:
                    self._instance = self._factory()
                else:
                    from dripdrop import DripDrop

                    self._instance = DripDrop(scheduler=self)
            return self._instance

    def _run(self, execution_id: str) -> dict[str, Any]:
        run = self.dripdrop().run_execution(execution_id, lease_seconds=self.lease_seconds)
        if run.ran:
            log.info("execution %s: %s", execution_id, run.outcome)
        else:
            log.info("execution %s not run: %s", execution_id, run.outcome)
        return {"outcome": run.outcome, "ran": run.ran}

    def schedule(self, execution_id: uuid.UUID, when: datetime) -> str:
        """Send the task (due executions only: ``when`` is now or past, so no ETA)."""
        job_id = str(execution_id)
        self.task.apply_async(args=[job_id], queue=self.queue, task_id=job_id)
        return job_id

    def cancel(self, job_id: str) -> None:
        """Revoke the task (best effort: one that runs anyway finds its execution cancelled)."""
        self.app.control.revoke(job_id)

    def forget_connections(self) -> None:
        """After a fork (prefork pool): drop the parent's pooled connections, never close them."""
        dd = self._instance
        if dd is None:
            return
        rt = dd.runtime
        rt.engine.dispose(close=False)
        if rt._worker_engine is not None:
            rt._worker_engine.dispose(close=False)


_forked_instances: list[CeleryScheduler] = []


@signals.worker_init.connect
def _preload(**_: Any) -> None:
    """Import what running an execution needs before the pool forks: a child importing it on
    its first task stalls its event loop (its lease heartbeat with it) for a second or more."""
    import dripdrop.client
    import dripdrop.engine.process
    import dripdrop.hooks.python
    import dripdrop.net
    import dripdrop.worker.db
    import dripdrop.worker.services
    import dripdrop.worker.single  # noqa: F401


@signals.worker_process_init.connect
def _after_fork(**_: Any) -> None:
    for instance in _forked_instances:
        instance.forget_connections()


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"DRIPDROP_CELERY_{name}", default)


def make_app() -> Celery:
    """The Celery app configured from ``DRIPDROP_CELERY_BROKER_URL`` (else ``CELERY_BROKER_URL``,
    else Celery's default broker), for at-least-once task delivery: late acknowledgement, one
    message prefetched per process, and tasks given back when their process dies."""
    broker = _env("BROKER_URL") or os.environ.get("CELERY_BROKER_URL")
    app = Celery("dripdrop", broker=broker)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_default_queue=_env("QUEUE", DEFAULT_QUEUE),
    )
    visibility = _env("VISIBILITY_TIMEOUT")
    if visibility:  # Redis/SQS: when an unacknowledged message comes back by itself
        app.conf.broker_transport_options = {"visibility_timeout": float(visibility)}
    return app


#: ``celery -A dripdrop.scheduling.celery worker`` finds this app.
app = make_app()
scheduler = CeleryScheduler(
    app,
    queue=_env("QUEUE", DEFAULT_QUEUE) or DEFAULT_QUEUE,
    lease_seconds=float(_env("LEASE_SECONDS", "30") or 30),
)
