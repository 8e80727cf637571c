"""An enrollment's chain never forks and never loses an event: changes of state (pause, resume,
unenroll, restart, exit) fence off executions claimed before them, and an event tracked at any
moment, in any transaction, is seen by the step waiting for it."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

from guarantee_support import RELEASE, sequence, sql, wait_for
from sqlalchemy import text

from dripdrop.engine.process import Job, Outcome, run_job
from dripdrop.testing import outbox
from dripdrop.worker.batch import claim_jobs, record_outcomes
from dripdrop.worker.services import Services

USER = {"type": "User", "id": 1}
DATA = {"email": "a@x.io"}


def _claim(dd: Any) -> list[Job]:
    rt = dd.runtime
    with rt.engine.begin() as conn:
        return claim_jobs(rt, conn, 100, uuid.uuid4(), rt.now(), 60)


def _run(dd: Any, jobs: list[Job]) -> list[Outcome]:
    async def run() -> list[Outcome]:
        services = Services(dd.runtime, None)
        try:
            return [await run_job(j, services, dd.runtime.now()) for j in jobs]
        finally:
            await services.aclose()

    return asyncio.run(run())


def _record(dd: Any, outcomes: list[Outcome]) -> Any:
    rt = dd.runtime
    with rt.engine.begin() as conn:
        conn.execute(text("SET LOCAL lock_timeout = '3s'"))  # never hang on a held row
        return record_outcomes(rt, conn, outcomes)


def _scheduled(dd: Any) -> list[Any]:
    return sql(dd, "SELECT * FROM {s}.step_executions WHERE state = 'scheduled'")


def test_restart_during_an_in_flight_retry_does_not_fork_the_chain(dd) -> None:
    sequence(dd, "r", steps=({"subject": "a"}, {"subject": "b"}))
    dd.enroll("r", USER, data=DATA)
    [job] = _claim(dd)
    dd.enroll("r", USER, data=DATA, on_conflict="restart")
    retried = Outcome(
        job,
        "retried",
        "scheduled",
        scheduled_for=dd.runtime.now(),
        retry_count=1,
        error_message="attempt 1 failed, retrying: busy",
    )
    _record(dd, [retried])
    rows = _scheduled(dd)
    assert len(rows) == 1 and rows[0].id != job.execution.id, "the old chain came back"
    old = sql(dd, "SELECT state FROM {s}.step_executions WHERE id = :id", id=job.execution.id)
    assert old == [("cancelled",)]


def test_restart_committing_while_the_record_waits_does_not_fork(dd, database_url) -> None:
    """The restart holds the enrollment in an open transaction while the worker records: the
    outcome waits for it instead of reading around it, and is then written without a fork."""
    sequence(dd, "w", steps=({"subject": "a"}, {"subject": "b"}))
    dd.enroll("w", USER, data=DATA)
    [job] = _claim(dd)
    [outcome] = _run(dd, [job])
    with dd.runtime.engine.connect() as host:
        with host.begin():
            dd.enroll("w", USER, data=DATA, on_conflict="restart", connection=host)
            first = _record(dd, [outcome])
            assert first.written == {} and first.waiting == [outcome]
        second = _record(dd, first.waiting)
    assert second.written == {job.execution.id: False}
    rows = _scheduled(dd)
    assert len(rows) == 1, "two chains for one enrollment"
    [enrollment] = sql(dd, "SELECT current_step_id FROM {s}.enrollments")
    assert rows[0].step_id == enrollment.current_step_id


def _event_sequence(dd: Any, key: str, **timing: Any) -> None:
    sequence(
        dd,
        key,
        steps=(
            {"subject": "welcome"},
            {"subject": "thanks", "timing": {"type": "event", "trigger_event": "paid", **timing}},
        ),
    )


def test_pause_and_resume_keep_a_waiting_event_step_waiting(dd) -> None:
    _event_sequence(dd, "e")
    e = dd.enroll("e", USER, data=DATA)
    assert dd.run_due().sent == 1
    dd.pause_enrollment(e.id)
    dd.resume_enrollment(e.id)
    assert dd.run_due().total == 0
    [waiting] = _scheduled(dd)
    assert waiting.waiting_for == "paid" and waiting.scheduled_for is None
    dd.track(USER, "paid")
    assert dd.run_due().sent == 1
    assert [m.payload["subject"] for m in outbox()] == ["welcome", "thanks"]


def test_an_event_tracked_in_a_host_transaction_during_the_record_is_not_lost(dd) -> None:
    _event_sequence(dd, "t")
    dd.enroll("t", USER, data=DATA)
    [job] = _claim(dd)
    [outcome] = _run(dd, [job])
    with dd.runtime.engine.connect() as host:
        with host.begin():
            dd.track(USER, "paid", connection=host)
            first = _record(dd, [outcome])  # the host holds the enrollment: the record waits
            assert first.written == {}
        assert _record(dd, first.waiting).written == {job.execution.id: True}
    assert dd.run_due().sent == 1, "the event step never saw the event"
    assert [m.payload["subject"] for m in outbox()] == ["welcome", "thanks"]


def _hooked_sequence(dd: Any, key: str) -> None:
    # The async hook keeps the delivery waiting until RELEASE: it is claimed and in flight.
    sequence(
        dd,
        key,
        steps=({"subject": "{{ go }}"}, {"subject": "next"}),
        hook_module="guarantee_hooks:Waiting",
    )


def _run_due_in_thread(dd: Any) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(s=dd.run_due()), daemon=True)
    thread.start()
    return thread, result


def _in_flight(dd: Any) -> bool:
    return bool(sql(dd, "SELECT 1 FROM {s}.step_executions WHERE locked_until > clock_timestamp()"))


def test_unenroll_stops_an_execution_already_claimed(dd) -> None:
    _hooked_sequence(dd, "u")
    dd.enroll("u", USER, data=DATA)
    RELEASE.clear()
    thread, result = _run_due_in_thread(dd)
    try:
        wait_for(lambda: _in_flight(dd), 5, "the claim")
        dd.unenroll("u", "User", 1)
    finally:
        RELEASE.set()
    thread.join(10)
    assert result["s"].sent == 0
    assert outbox() == [], "an unenrolled subscriber received a message"
    states = sql(dd, "SELECT state, lease_token FROM {s}.step_executions")
    assert states == [("cancelled", None)], "the log flipped back, or a next step appeared"


def test_pause_holds_an_execution_already_claimed_until_resumed(dd) -> None:
    _hooked_sequence(dd, "p")
    e = dd.enroll("p", USER, data=DATA)
    RELEASE.clear()
    thread, _ = _run_due_in_thread(dd)
    try:
        wait_for(lambda: _in_flight(dd), 5, "the claim")
        dd.pause_enrollment(e.id)
    finally:
        RELEASE.set()
    thread.join(10)
    assert outbox() == []
    [row] = _scheduled(dd)
    assert row.held and row.lease_token is None
    dd.resume_enrollment(e.id)
    assert dd.run_due().sent == 2
    assert [m.payload["subject"] for m in outbox()] == ["go", "next"]


def test_an_undecryptable_credential_fails_only_its_own_deliveries(dd, database_url) -> None:
    sequence(dd, "ok", steps=({"subject": "hello"},))
    broken = dd.create_channel_adapter(
        name="sms",
        channel="sms",
        provider="twilio",
        credentials={"account_sid": "AC1", "auth_token": "secret"},
    )
    s = dd.create_sequence(name="SMS", key="sms")
    v = dd.create_sequence_version(s.id, active=True)
    dd.create_step(
        v.id,
        name="text",
        channel="sms",
        channel_adapter_id=broken.id,
        config={"body": "hi", "max_retries": 0},
    )
    sql(
        dd,
        "UPDATE {s}.channel_adapters SET credentials = 'garbage'::bytea WHERE id = :id",
        id=broken.id,
    )
    dd.enroll("ok", USER, data=DATA)
    dd.enroll("sms", USER, data={"phone": "+15550100"})
    summary = dd.run_due()
    assert summary.sent == 1 and summary.failed == 1, summary
    [failed] = sql(dd, "SELECT error_message FROM {s}.step_executions WHERE state = 'failed'")
    assert "'sms'" in failed.error_message and "decrypt" in failed.error_message


def test_a_wrong_key_never_raises_out_of_run_due(env, database_url) -> None:
    from dripdrop import DripDrop
    from dripdrop.crypto import generate_key

    dd = env.dd
    sequence(dd, "k", steps=({"subject": "hello"},))
    dd.create_channel_adapter(
        name="sms",
        channel="sms",
        provider="twilio",
        credentials={"account_sid": "AC1", "auth_token": "secret"},
    )
    dd.enroll("k", USER, data=DATA)
    other = DripDrop(database_url, schema=dd.schema, clock=env.clock, encryption_key=generate_key())
    try:
        assert other.run_due().sent == 1
    finally:
        other.close()
