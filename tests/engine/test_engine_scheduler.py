"""The Scheduler protocol and the default PostgreSQL scheduler."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dripdrop import NotFound
from dripdrop.testing import outbox
from dripdrop.worker.scheduler import PostgresScheduler, Scheduler


def test_postgres_scheduler_moves_and_cancels_executions(dd, flow, clock):
    flow.step("later", timing={"type": "delay", "delay_amount": 5, "delay_unit": "days"})
    flow.step("after")
    e = flow.enroll()
    scheduler = dd.scheduler
    assert isinstance(scheduler, Scheduler) and isinstance(scheduler, PostgresScheduler)
    [x] = dd.list_executions(e.id)
    job = scheduler.schedule(x.id, clock() - timedelta(seconds=1))
    assert job == str(x.id)
    dd.run_due()
    assert [m.payload["subject"] for m in outbox()] == ["later ", "after "]
    with pytest.raises(NotFound):
        scheduler.schedule(x.id, clock())  # already sent: nothing scheduled to move
    other = flow.enroll(2)
    [y] = dd.list_executions(other.id)
    scheduler.cancel(str(y.id))
    assert dd.list_executions(other.id)[0].state == "cancelled"
