"""Retries on the fake clock: exponential backoff, Retry-After, permanent errors, max_retries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import worker_providers
from worker_support import executions, one_step_sequence

from dripdrop.testing import outbox


def _one(dd: Any) -> Any:
    (row,) = executions(dd)
    return row


def _enroll(dd: Any) -> Any:
    dd.enroll("s", {"type": "User", "id": 1}, data={"email": "ada@x.io", "name": "Ada"})
    return _one(dd)


def test_transient_failures_back_off_then_succeed(env) -> None:
    dd, clock = env.dd, env.clock
    one_step_sequence(dd, provider="flaky", adapter_config={"transient": 2})
    ex = _enroll(dd)

    first = clock()
    assert dd.run_due().retried == 1
    row = _one(dd)
    assert (row.state, row.retry_count) == ("scheduled", 1)
    assert "attempt 1 failed, retrying: provider busy" in row.error_message
    # base 30 s, ±25 % jitter
    assert timedelta(seconds=22.5) <= row.scheduled_for - first <= timedelta(seconds=37.5)
    assert dd.run_due().retried == 0  # not due yet

    second = clock.set(row.scheduled_for)
    assert dd.run_due().retried == 1
    row = _one(dd)
    assert (row.state, row.retry_count) == ("scheduled", 2)
    assert timedelta(seconds=45) <= row.scheduled_for - second <= timedelta(seconds=75)

    clock.set(row.scheduled_for - timedelta(seconds=1))
    assert dd.run_due().sent == 0
    clock.advance(seconds=1)
    assert dd.run_due().sent == 1
    row = _one(dd)
    assert (row.state, row.retry_count, row.executed_at) == ("sent", 2, clock())
    assert worker_providers.ATTEMPTS[str(ex.id)] == 3
    assert [m.execution_id for m in outbox()] == [str(ex.id)]
    assert outbox()[0].payload["subject"] == "hi Ada"


def test_retry_after_schedules_the_retry_exactly_then(env) -> None:
    dd, clock = env.dd, env.clock
    one_step_sequence(dd, provider="flaky", adapter_config={"transient": 1, "retry_after": 120})
    ex = _enroll(dd)
    start = clock()
    assert dd.run_due().retried == 1
    row = _one(dd)
    assert row.scheduled_for == start + timedelta(seconds=120)
    assert row.retry_count == 1
    assert env.advance_and_run(seconds=119).sent == 0
    assert env.advance_and_run(seconds=1).sent == 1
    assert (_one(dd).state, _one(dd).retry_count) == ("sent", 1)
    assert worker_providers.ATTEMPTS[str(ex.id)] == 2


def test_permanent_error_fails_at_once(env) -> None:
    dd, clock = env.dd, env.clock
    one_step_sequence(dd, provider="flaky", adapter_config={"permanent": "mailbox does not exist"})
    ex = _enroll(dd)
    summary = dd.run_due()
    assert (summary.failed, summary.retried) == (1, 0)
    row = _one(dd)
    assert (row.state, row.retry_count, row.failed_at) == ("failed", 0, clock())
    assert row.error_message == "mailbox does not exist"
    assert env.advance_and_run(days=1).failed == 0
    assert worker_providers.ATTEMPTS[str(ex.id)] == 1
    assert outbox() == []


def test_max_retries_from_the_step_config(env) -> None:
    dd = env.dd
    one_step_sequence(
        dd, provider="flaky", adapter_config={"transient": 5}, step_config={"max_retries": 1}
    )
    ex = _enroll(dd)
    assert dd.run_due().retried == 1
    assert env.advance_and_run(minutes=2).failed == 1
    row = _one(dd)
    assert (row.state, row.retry_count) == ("failed", 1)
    assert row.error_message.startswith("failed after 2 attempts: provider busy")
    assert env.advance_and_run(days=1).failed == 0
    assert worker_providers.ATTEMPTS[str(ex.id)] == 2
    assert outbox() == []
