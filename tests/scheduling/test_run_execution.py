"""``dd.run_execution(id)``: one execution claimed, run and recorded under the worker's rules, and
``dd.cancel_execution(id)`` leaving its enrollment consistent."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import text

from dripdrop import AsyncDripDrop, DripDrop, ValidationError
from dripdrop.testing import outbox
from dripdrop.worker.batch import claim_jobs, release_jobs
from dripdrop.worker.scheduler import PostgresScheduler, Scheduler

DAY = {"type": "delay", "delay_amount": 1, "delay_unit": "days"}


def test_it_runs_a_due_execution_and_plans_the_next_step(dd, flow, clock) -> None:
    flow.step("first")
    second = flow.step("second", timing=DAY)
    e = flow.enroll()
    [x] = flow.executions(e)

    run = dd.run_execution(x.id)

    assert (run.ran, run.outcome, run.state) == (True, "sent", "sent")
    [m] = outbox()
    assert m.payload["subject"] == "first"
    done, nxt = flow.executions(e)
    assert (done.id, done.state) == (x.id, "sent")
    assert (nxt.step_id, nxt.state) == (second.id, "scheduled")
    assert nxt.scheduled_for == clock() + timedelta(days=1)
    assert dd.get_enrollment_by_id(e.id).current_step_id == second.id


def test_it_never_runs_what_is_finished_not_due_or_unknown(dd, flow, clock) -> None:
    flow.step("first")
    flow.step("second", timing=DAY)
    e = flow.enroll()
    [x] = flow.executions(e)
    assert dd.run_execution(str(x.id)).outcome == "sent"

    again = dd.run_execution(x.id)
    assert (again.ran, again.outcome) == (False, "sent")
    later = flow.executions(e)[1]
    early = dd.run_execution(later.id)
    assert (early.ran, early.outcome) == (False, "not_due")
    assert dd.run_execution(uuid.uuid4()).outcome == "not_found"
    assert len(outbox()) == 1

    clock.advance(days=1)
    assert dd.run_execution(later.id).outcome == "sent"
    assert len(outbox()) == 2
    assert dd.get_enrollment_by_id(e.id).state == "completed"


def test_it_never_takes_an_execution_another_worker_claimed(dd, flow, clock) -> None:
    flow.step("first")
    e = flow.enroll()
    [x] = flow.executions(e)
    rt = dd.runtime
    token = uuid.uuid4()
    with rt.engine.begin() as conn:  # a worker's claim, still under its lease
        [job] = claim_jobs(rt, conn, 10, token, clock(), 30.0)
    assert job.execution.id == x.id

    refused = dd.run_execution(x.id)
    assert (refused.ran, refused.outcome) == (False, "claimed")
    assert outbox() == []

    with rt.engine.begin() as conn:  # the worker gives it back
        release_jobs(rt, conn, token, [str(x.id)])
    assert dd.run_execution(x.id).outcome == "sent"


def test_runs_racing_for_one_execution_send_it_once(dd, flow) -> None:
    flow.step("first")
    e = flow.enroll()
    [x] = flow.executions(e)
    start = threading.Barrier(8)

    def race() -> tuple[bool, str]:
        start.wait()
        run = dd.run_execution(x.id)
        return run.ran, run.outcome

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: race(), range(8)))

    assert sorted(results).count((True, "sent")) == 1, results
    assert {outcome for ran, outcome in results if not ran} <= {"claimed", "sent"}
    assert len(outbox()) == 1


def test_a_paused_enrollment_holds_its_execution(dd, flow) -> None:
    flow.step("first")
    e = flow.enroll()
    [x] = flow.executions(e)
    dd.pause_enrollment(e.id)
    assert dd.run_execution(x.id).outcome == "held"
    dd.resume_enrollment(e.id)
    assert dd.run_execution(x.id).outcome == "sent"


def test_the_outcome_waits_for_a_locked_enrollment_and_lands_with_the_next_step(dd, flow) -> None:
    """The record never waits on a lock: while a host transaction holds the enrollment, the
    outcome is not written — neither it nor the next step — and both land together after."""
    flow.step("first")
    flow.step("second", timing=DAY)
    e = flow.enroll()
    [x] = flow.executions(e)
    rt = dd.runtime
    locked, release = threading.Event(), threading.Event()
    seen: list[list[str]] = []

    def host() -> None:
        with rt.engine.begin() as conn:
            s = f'"{rt.schema}"'
            conn.execute(
                text(f"SELECT 1 FROM {s}.enrollments WHERE id = :id FOR UPDATE"), {"id": e.id}
            )
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=host)
    holder.start()
    assert locked.wait(10)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(dd.run_execution, x.id)
        # Delivered (in process) but not recorded: still one execution, under the lease.
        for _ in range(50):
            if outbox():
                break
            threading.Event().wait(0.02)
        threading.Event().wait(0.2)
        seen.append([y.state for y in flow.executions(e)])
        release.set()
        run = running.result(timeout=20)
    holder.join()
    assert seen == [["sending"]]
    assert run.outcome == "sent"
    assert [y.state for y in flow.executions(e)] == ["sent", "scheduled"]


async def test_the_async_face_runs_an_execution(env, flow) -> None:
    flow.step("first")
    e = flow.enroll()
    [x] = flow.executions(e)
    add = AsyncDripDrop(env.dd.runtime.database_url, schema=env.schema, clock=env.clock)
    try:
        run = await add.run_execution(x.id)
        assert (run.ran, run.outcome) == (True, "sent")
        assert (await add.run_execution(x.id)).outcome == "sent"
    finally:
        await add.close()
    assert len(outbox()) == 1


def test_bad_arguments_are_validation_errors(dd, env) -> None:
    with pytest.raises(ValidationError) as bad_id:
        dd.run_execution("not-an-id")
    assert list(bad_id.value.errors) == ["execution_id"]
    with pytest.raises(ValidationError) as bad_lease:
        dd.run_execution(uuid.uuid4(), lease_seconds=float("nan"))
    assert list(bad_lease.value.errors) == ["lease_seconds"]
    with pytest.raises(ValidationError) as bad_scheduler:
        DripDrop(env.dd.runtime.database_url, schema=env.schema, scheduler="cron")
    assert list(bad_scheduler.value.errors) == ["scheduler"]
    with pytest.raises(ValidationError) as not_a_scheduler:
        DripDrop(env.dd.runtime.database_url, schema=env.schema, scheduler=object())
    assert list(not_a_scheduler.value.errors) == ["scheduler"]
    with pytest.raises(ValidationError) as no_dispatcher:
        dd.run_dispatcher()  # the default scheduler: workers claim for themselves
    assert list(no_dispatcher.value.errors) == ["scheduler"]


# --- cancel ---------------------------------------------------------------------------------


def test_cancelling_the_pending_execution_ends_its_enrollment(dd, flow) -> None:
    flow.step("first", timing=DAY)
    flow.step("second")
    e = flow.enroll()
    [x] = flow.executions(e)

    cancelled = dd.cancel_execution(x.id, reason="not wanted")

    assert (cancelled.state, cancelled.error_message) == ("cancelled", "not wanted")
    enrollment = dd.get_enrollment_by_id(e.id)
    assert enrollment.state == "cancelled" and enrollment.cancelled_at is not None
    assert enrollment.current_step_id is None
    assert dd.run_execution(x.id).outcome == "cancelled"
    assert dd.list_active_enrollments(flow.key) == []


def test_cancelling_a_finished_execution_changes_nothing(dd, flow) -> None:
    flow.step("first")
    flow.step("second", timing=DAY)
    e = flow.enroll()
    [x] = flow.executions(e)
    dd.run_execution(x.id)
    assert dd.cancel_execution(x.id).state == "sent"
    assert dd.get_enrollment_by_id(e.id).state == "active"
    assert [y.state for y in flow.executions(e)] == ["sent", "scheduled"]


def test_the_postgres_schedulers_cancel_leaves_no_stranded_enrollment(dd, flow) -> None:
    flow.step("first", timing=DAY)
    e = flow.enroll()
    [x] = flow.executions(e)
    scheduler = dd.scheduler
    assert isinstance(scheduler, PostgresScheduler) and isinstance(scheduler, Scheduler)
    scheduler.cancel(str(x.id))
    assert flow.executions(e)[0].state == "cancelled"
    assert dd.get_enrollment_by_id(e.id).state == "cancelled"


def test_a_row_locked_for_a_moment_is_waited_for_not_given_up(dd, flow) -> None:
    """A dispatcher noting the job id holds the row for a moment just as the job starts: the
    claim waits for it (a job that gave up would leave its execution reserved, unrun)."""
    flow.step("first")
    e = flow.enroll()
    [x] = flow.executions(e)
    rt = dd.runtime
    locked = threading.Event()

    def note_job() -> None:
        with rt.engine.begin() as conn:
            s = f'"{rt.schema}"'
            conn.execute(
                text(f"UPDATE {s}.step_executions SET locked_by = 'job:1' WHERE id = :id"),
                {"id": x.id},
            )
            locked.set()
            threading.Event().wait(0.5)

    holder = threading.Thread(target=note_job)
    holder.start()
    assert locked.wait(10)
    run = dd.run_execution(x.id)
    holder.join()
    assert (run.ran, run.outcome) == (True, "sent")
