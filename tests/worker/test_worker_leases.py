"""Leases: a claim stamps a lease on the row; while it lives nobody else claims the row, once it
expires (its worker died or stalled) the row is simply claimable again, and the late worker's
outcome is then a no-op."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from worker_support import enroll_n, executions, one_step_sequence, sql, states

from dripdrop.engine.process import Job, Outcome, run_job
from dripdrop.worker.batch import claim_jobs, record_outcomes
from dripdrop.worker.db import ThreadDb
from dripdrop.worker.runner import drain
from dripdrop.worker.services import Services


def _claim(dd: Any, token: uuid.UUID, lease: float = 120.0) -> list[Job]:
    rt = dd.runtime
    with rt.engine.begin() as conn:
        return claim_jobs(rt, conn, 100, token, rt.now(), lease)


def _record(dd: Any, jobs: list[Job], who: str) -> set[Any]:
    rt = dd.runtime
    outcomes = [
        Outcome(j, "sent", "sent", executed_at=rt.now(), recipient=who, response={"by": who})
        for j in jobs
    ]
    with rt.engine.begin() as conn:
        return set(record_outcomes(rt, conn, outcomes).written)


def test_late_worker_cannot_overwrite_a_reclaimed_row(dd) -> None:
    first = one_step_sequence(dd)
    second = dd.create_step(
        first.sequence_version_id, name="b", channel="email", config={"subject": "2", "body": "y"}
    )
    enroll_n(dd, 5)

    token_a, token_b = uuid.uuid4(), uuid.uuid4()
    jobs_a = _claim(dd, token_a)
    assert len(jobs_a) == 5
    assert _claim(dd, uuid.uuid4()) == []  # leased rows are not claimed twice

    # A's worker stalls; its lease runs out and another worker claims the rows.
    sql(dd, "UPDATE {s}.step_executions SET locked_until = clock_timestamp() - interval '1 s'")
    jobs_b = _claim(dd, token_b)
    assert {j.execution.id for j in jobs_b} == {j.execution.id for j in jobs_a}

    # A wakes up and reports: nothing is written, no next step is scheduled.
    assert _record(dd, jobs_a, "A") == set()
    rows = executions(dd)
    assert {(r.reported, r.lease_token, r.recipient) for r in rows} == {("sending", token_b, None)}

    # B's outcome is written and moves the enrollments on, once.
    assert _record(dd, jobs_b, "B") == {j.execution.id for j in jobs_b}
    # A reporting again after B finished still writes nothing.
    assert _record(dd, jobs_a, "A") == set()

    rows = executions(dd)
    done = [r for r in rows if r.step_id == first.id]
    assert {(r.state, r.recipient, r.lease_token) for r in done} == {("sent", "B", None)}
    assert [r.response for r in done] == [{"by": "B"}] * 5
    following = [r for r in rows if r.step_id == second.id]
    assert len(following) == 5 and {r.state for r in following} == {"scheduled"}
    assert sql(dd, "SELECT count(DISTINCT current_step_id) FROM {s}.enrollments") == [(1,)]


def test_an_expired_lease_is_claimable_again_without_a_recovery_pass(dd) -> None:
    one_step_sequence(dd)
    enroll_n(dd, 3)
    token = uuid.uuid4()
    assert len(_claim(dd, token, lease=0.0)) == 3
    rows = executions(dd)
    assert {(r.state, r.reported, r.lease_token) for r in rows} == {
        ("scheduled", "scheduled", token)
    }
    assert len(_claim(dd, uuid.uuid4())) == 3


def test_drain_claims_with_the_given_lease(dd) -> None:
    """``lease_seconds`` reaches the claim: a drain that dies leaves rows leased that long."""
    one_step_sequence(dd, provider="slow", adapter_config={"delay": 30})
    enroll_n(dd, 2)
    rt = dd.runtime

    async def run_and_look() -> list[Any]:
        services = Services(rt, ThreadDb(rt))
        task = asyncio.create_task(drain(rt, services.db, services, lease_seconds=7))
        while states(dd).get("sending", 0) < 2:
            await asyncio.sleep(0.02)
        rows = sql(
            dd,
            "SELECT extract(epoch FROM locked_until - clock_timestamp()) FROM {s}.step_executions",
        )
        task.cancel()
        await services.aclose()
        return [r[0] for r in rows]

    left = asyncio.run(run_and_look())
    assert len(left) == 2 and all(5 < float(x) <= 7 for x in left), left


def _two_step_sequence(dd: Any, key: str) -> None:
    dd.create_channel_adapter(name="mem", channel="email", provider="memory")
    seq = dd.create_sequence(name=key.upper(), key=key)
    v = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(v.id, name="a", channel="email", config={"subject": "a", "body": "b"})
    dd.create_step(v.id, name="b", channel="email", config={"subject": "b", "body": "b"})


def _run(dd: Any, jobs: list[Job]) -> list[Outcome]:
    """Deliver claimed jobs the way a lane does, without recording them."""
    rt = dd.runtime

    async def run() -> list[Outcome]:
        services = Services(rt, None)
        try:
            return [await run_job(j, services, rt.now()) for j in jobs]
        finally:
            await services.aclose()

    return asyncio.run(run())


def test_an_execution_cancelled_while_in_flight_does_not_move_a_restarted_enrollment(dd):
    """Restarting an enrollment cancels its scheduled work; a delivery already in flight stays
    cancelled in the log (noting that the provider had accepted it) and must not schedule the
    next step of the old run."""
    rt = dd.runtime
    _two_step_sequence(dd, "r")
    e = dd.enroll("r", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    jobs = _claim(dd, uuid.uuid4())
    assert len(jobs) == 1
    dd.enroll("r", {"type": "User", "id": 1}, data={"email": "a@x.io"}, on_conflict="restart")

    outcomes = _run(dd, jobs)
    with rt.engine.begin() as conn:
        recorded = record_outcomes(rt, conn, outcomes)
    assert recorded.written == {jobs[0].execution.id: False}  # written, not live
    rows = dd.list_executions(e.id)
    states = [(x.step_id == jobs[0].execution.step_id, x.state) for x in rows]
    # the old first step: still cancelled; the restarted run's first step: scheduled;
    # and no second step scheduled by the old run.
    assert sorted(states) == [(True, "cancelled"), (True, "scheduled")]
    old = next(x for x in rows if x.id == jobs[0].execution.id)
    assert old.executed_at is not None
    assert "provider had accepted the message" in old.error_message


def test_pausing_while_a_step_is_in_flight_holds_the_next_step(dd):
    rt = dd.runtime
    _two_step_sequence(dd, "p")
    e = dd.enroll("p", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    jobs = _claim(dd, uuid.uuid4())
    dd.pause_enrollment(e.id)

    outcomes = _run(dd, jobs)
    with rt.engine.begin() as conn:
        record_outcomes(rt, conn, outcomes)
    held = [
        r.held for r in sql(dd, "SELECT held FROM {s}.step_executions WHERE state = 'scheduled'")
    ]
    assert held == [True]  # step b is out of the due index until resumed
    assert dd.run_due().sent == 0
    dd.resume_enrollment(e.id)
    assert dd.run_due().sent == 1
