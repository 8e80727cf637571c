"""``cancel_execution`` tells the scheduler holding the job only after its transaction has
committed: a scheduler whose ``cancel`` blocks (a Celery broker that is down) holds no lock on
the enrollment, one that raises undoes nothing, and a host transaction that rolls back tells it
nothing."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from dripdrop import AsyncDripDrop, DripDrop
from dripdrop.testing import TestEnv
from dripdrop.worker.dispatch import dispatch_once


class HoldingScheduler:
    """Keeps every job (never runs it). ``cancel`` waits for ``release`` when ``block`` is set,
    or raises when ``fail`` is."""

    def __init__(self, *, block: bool = False, fail: bool = False) -> None:
        self.block, self.fail = block, fail
        self.release = threading.Event()
        self.entered = threading.Event()
        self.cancelled: list[str] = []
        self.cancel_threads: list[str] = []

    def schedule(self, execution_id: uuid.UUID, when: datetime) -> str:
        return f"job-{execution_id}"

    def cancel(self, job_id: str) -> None:
        self.cancel_threads.append(threading.current_thread().name)
        self.entered.set()
        if self.fail:
            raise ConnectionError("broker unreachable")
        if self.block:
            self.release.wait(15)  # bounded: the old code held the lock until here
        self.cancelled.append(job_id)


def handed_out(env: TestEnv, flow: Any, scheduler: HoldingScheduler) -> tuple[DripDrop, Any, Any]:
    """A DripDrop using ``scheduler``, one enrollment whose first execution it holds."""
    flow.step("first")
    e = flow.enroll()
    dd = DripDrop(
        env.dd.runtime.database_url, schema=env.schema, clock=env.clock, scheduler=scheduler
    )
    assert dispatch_once(dd.runtime, scheduler, redispatch_after=600.0) == 1
    [x] = dd.list_executions(e.id)
    assert locked_by(env, x.id) == f"job:job-{x.id}"
    return dd, e, x


def locked_by(env: TestEnv, execution_id: Any) -> str | None:
    with env.dd.runtime.engine.begin() as conn:
        return conn.execute(
            text(f'SELECT locked_by FROM "{env.schema}".step_executions WHERE id = :id'),
            {"id": execution_id},
        ).scalar()


@pytest.fixture
def closing() -> Iterator[list[Any]]:
    opened: list[Any] = []
    yield opened
    for dd in opened:
        dd.close()


def test_a_blocking_scheduler_cancel_holds_no_lock_on_the_enrollment(env, flow, closing) -> None:
    scheduler = HoldingScheduler(block=True)
    dd, e, x = handed_out(env, flow, scheduler)
    closing.append(dd)
    result: dict[str, Any] = {}

    def cancel() -> None:
        result["execution"] = dd.cancel_execution(x.id, reason="not wanted")

    canceller = threading.Thread(target=cancel)
    canceller.start()
    try:
        assert scheduler.entered.wait(15), "the scheduler was never told"
        # The scheduler is blocked; the enrollment's row must be free: track_event locks it.
        started = time.monotonic()
        env.dd.track_event(e.id, "noted")
        took = time.monotonic() - started
        # The cancellation is committed and visible while the scheduler still blocks.
        assert env.dd.get_execution(x.id).state == "cancelled"
        assert env.dd.get_enrollment_by_id(e.id).state == "cancelled"
        assert "execution" not in result  # the call waits for the scheduler, after the commit
    finally:
        scheduler.release.set()
        canceller.join(15)
    assert took < 2.0, f"track_event waited {took:.1f} s for the enrollment's lock"
    assert result["execution"].state == "cancelled"
    assert scheduler.cancelled == [f"job-{x.id}"]
    run = dd.run_execution(x.id)  # the job, if it ran anyway, finds nothing to claim
    assert (run.outcome, run.ran) == ("cancelled", False)
    print(f"\ntrack_event took {took * 1000:.0f} ms while the scheduler's cancel blocked")


def test_a_failing_scheduler_cancel_undoes_nothing(env, flow, closing, caplog) -> None:
    scheduler = HoldingScheduler(fail=True)
    dd, e, x = handed_out(env, flow, scheduler)
    closing.append(dd)
    with caplog.at_level(logging.WARNING, logger="dripdrop"):
        cancelled = dd.cancel_execution(x.id)
    assert scheduler.entered.is_set() and scheduler.cancelled == []
    assert scheduler.cancel_threads == [threading.current_thread().name]  # before it returned
    assert cancelled.state == "cancelled"
    assert env.dd.get_execution(x.id).state == "cancelled"
    assert env.dd.get_enrollment_by_id(e.id).state == "cancelled"
    assert any(
        "could not cancel job" in r.getMessage() and "ConnectionError" in r.getMessage()
        for r in caplog.records
    ), caplog.text
    run = dd.run_execution(x.id)
    assert (run.outcome, run.ran) == ("cancelled", False)


def test_in_a_host_transaction_the_scheduler_is_told_only_once_it_commits(
    env, flow, closing
) -> None:
    scheduler = HoldingScheduler()
    dd, _e, x = handed_out(env, flow, scheduler)
    closing.append(dd)
    with dd.runtime.engine.connect() as conn:
        with conn.begin() as tx:
            dd.cancel_execution(x.id, connection=conn)
            time.sleep(0.3)
            assert scheduler.cancelled == []  # not inside the transaction
            tx.rollback()
        time.sleep(0.3)
        assert scheduler.cancelled == []  # rolled back: never told
        assert env.dd.get_execution(x.id).state == "sending"  # still reserved for its job
        with conn.begin():
            dd.cancel_execution(x.id, connection=conn)
            assert scheduler.cancelled == []
        deadline = time.monotonic() + 10
        while not scheduler.cancelled and time.monotonic() < deadline:
            time.sleep(0.02)
    assert scheduler.cancelled == [f"job-{x.id}"]
    assert scheduler.cancel_threads == ["dripdrop-after-commit"]  # the host's thread never waits
    assert env.dd.get_execution(x.id).state == "cancelled"


async def test_the_async_face_tells_the_scheduler_after_the_commit(env, flow) -> None:
    scheduler = HoldingScheduler(block=True)
    dd, e, x = handed_out(env, flow, scheduler)
    dd.close()
    add = AsyncDripDrop(
        env.dd.runtime.database_url, schema=env.schema, clock=env.clock, scheduler=scheduler
    )
    try:
        canceller = asyncio.ensure_future(add.cancel_execution(x.id))
        assert await asyncio.to_thread(scheduler.entered.wait, 15)
        assert env.dd.get_execution(x.id).state == "cancelled"  # committed before the call
        env.dd.track_event(e.id, "noted")  # the enrollment is not locked meanwhile
        assert not canceller.done()
        scheduler.release.set()
        assert (await canceller).state == "cancelled"
    finally:
        scheduler.release.set()
        await add.close()
    assert scheduler.cancelled == [f"job-{x.id}"]
    # Off the event loop, by the call itself (not left to the host transactions' thread).
    assert scheduler.cancel_threads[0].startswith("asyncio"), scheduler.cancel_threads
