"""Pause, resume, unenroll, failures, replay, idempotency, host transactions, bulk."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from dripdrop import ValidationError
from dripdrop.channels import Fields, ProviderSpec, register
from dripdrop.errors import TransientError
from dripdrop.testing import outbox

FAILS: dict[str, int] = {}
SEEN_KEYS: list[str] = []


class Flaky:
    """Fails transiently the first N times per execution (N from adapter config)."""

    async def send(self, message, adapter, ctx):
        from dripdrop.channels import DeliveryResult

        SEEN_KEYS.append(message.idempotency_key)
        n = FAILS.get(message.execution_id, 0)
        if n < adapter.config.get("failures", 0):
            FAILS[message.execution_id] = n + 1
            raise TransientError("provider busy", retry_after=adapter.config.get("retry_after"))
        return DeliveryResult(provider_message_id="ok-1", response={"ok": True})


class FlakyConfig(Fields):
    failures: int = 0
    retry_after: float | None = None


register(ProviderSpec("email", "flaky_test", Fields, FlakyConfig, Flaky))


def test_pause_holds_and_resume_makes_overdue_work_due(dd, flow, env, clock):
    flow.step("day1", timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"})
    flow.step("day5", timing={"type": "delay", "delay_amount": 5, "delay_unit": "days"})
    e = flow.enroll()
    paused = dd.pause_enrollment(e.id)
    assert paused.state == "paused"
    env.advance_and_run(days=2)
    assert outbox() == []
    resumed = dd.resume_enrollment(e.id)
    assert resumed.state == "active"
    first = dd.list_executions(e.id)[0]
    assert first.scheduled_for == clock()  # overdue → due now
    dd.run_due()
    assert len(outbox()) == 1
    env.advance_and_run(days=3)
    assert len(outbox()) == 2
    with pytest.raises(ValidationError):
        dd.pause_enrollment(e.id)  # completed enrollments cannot be paused


def test_unenroll_cancels_scheduled_work(dd, flow, env):
    flow.step("later", timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"})
    e = flow.enroll()
    gone = dd.unenroll("flow", "User", 1)
    assert gone.state == "cancelled" and gone.cancelled_at is not None
    assert [x.state for x in dd.list_executions(e.id)] == ["cancelled"]
    env.advance_and_run(days=2)
    assert outbox() == []


def test_transient_failures_retry_with_the_same_idempotency_key(dd, env, clock):
    dd.create_channel_adapter(
        name="flaky", channel="email", provider="flaky_test", config={"failures": 2}
    )
    seq = dd.create_sequence(name="R", key="r")
    v = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(v.id, name="a", channel="email", config={"subject": "s", "body": "b"})
    e = dd.enroll("r", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    SEEN_KEYS.clear()
    assert dd.run_due().retried == 1
    x = dd.list_executions(e.id)[0]
    assert x.state == "scheduled" and x.retry_count == 1 and "provider busy" in x.error_message
    assert 22 <= (x.scheduled_for - clock()).total_seconds() <= 38  # 30 s ± 25 %
    env.advance_and_run(minutes=1)
    env.advance_and_run(minutes=2)
    x = dd.list_executions(e.id)[0]
    assert x.state == "sent" and x.retry_count == 2
    assert x.response["provider_message_id"] == "ok-1"
    assert len(set(SEEN_KEYS)) == 1 and SEEN_KEYS[0] == x.idempotency_key


def test_retry_after_is_honoured_and_retries_run_out(dd, env, clock):
    dd.create_channel_adapter(
        name="flaky",
        channel="email",
        provider="flaky_test",
        config={"failures": 99, "retry_after": 120},
    )
    seq = dd.create_sequence(name="R", key="r")
    v = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(
        v.id, name="a", channel="email", config={"subject": "s", "body": "b", "max_retries": 1}
    )
    e = dd.enroll("r", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    dd.run_due()
    x = dd.list_executions(e.id)[0]
    assert (x.scheduled_for - clock()).total_seconds() == 120
    env.advance_and_run(seconds=120)
    x = dd.list_executions(e.id)[0]
    assert x.state == "failed" and x.failed_at is not None
    assert x.error_message.startswith("failed after 2 attempts")
    assert dd.get_enrollment("r", "User", 1).state == "completed"  # on_failure continue


def test_permanent_failure_halts_when_asked_and_replay_resends(dd, env):
    bad = dd.create_channel_adapter(
        name="broken", channel="email", provider="memory", config={"fail": "permanent"}
    )
    seq = dd.create_sequence(name="F", key="f")
    v = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(
        v.id, name="a", channel="email", config={"subject": "s", "body": "b", "on_failure": "halt"}
    )
    dd.create_step(v.id, name="b", channel="email", config={"subject": "s2", "body": "b"})
    e = dd.enroll("f", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    assert dd.run_due().failed == 1
    [failed] = dd.list_executions(e.id)
    assert failed.state == "failed" and "configured to fail" in failed.error_message
    assert dd.get_enrollment("f", "User", 1).state == "cancelled"
    dd.update_channel_adapter(bad.id, config={})
    again = dd.replay(failed.id)
    assert again.replay_of == failed.id and again.idempotency_key != failed.idempotency_key
    dd.run_due()
    assert [m.payload["subject"] for m in outbox()] == ["s"]
    with pytest.raises(ValidationError):
        dd.replay(again.id)  # only failed executions


def test_missing_adapter_fails_with_a_clear_message(dd):
    seq = dd.create_sequence(name="N", key="n")
    v = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(v.id, name="a", channel="sms", config={"body": "hi"})
    e = dd.enroll("n", {"type": "User", "id": 1}, data={"phone": "+1555"})
    dd.run_due()
    [x] = dd.list_executions(e.id)
    assert x.state == "failed"
    assert x.error_message.startswith("no active sms adapter for global: create one with")


def test_enroll_in_the_hosts_transaction(dd, flow, env, database_url):
    flow.step("a")
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        tx = conn.begin()
        dd.enroll("flow", {"type": "User", "id": 1}, data={"email": "a@x.io"}, connection=conn)
        tx.rollback()
    assert dd.get_enrollment("flow", "User", 1) is None
    with engine.begin() as conn:
        conn.execute(text("SELECT 1"))
        dd.enroll("flow", {"type": "User", "id": 2}, data={"email": "b@x.io"}, connection=conn)
    assert dd.get_enrollment("flow", "User", 2) is not None
    dd.run_due()
    assert [m.recipient for m in outbox()] == ["b@x.io"]
    engine.dispose()


def test_enroll_many_streams_and_skips_existing(dd, flow):
    flow.step("a")
    flow.enroll(3)
    count = dd.enroll_many(
        "flow",
        (
            {"subscriber": {"type": "User", "id": i}, "data": {"email": f"u{i}@x.io"}}
            for i in range(1, 2501)
        ),
        batch_size=1000,
    )
    assert count == 2499
    assert len(dd.list_active_enrollments("flow")) == 2500
    assert dd.run_due().sent == 2500
    with pytest.raises(ValidationError) as info:
        dd.enroll_many("flow", [{"subscriber": {"type": "User"}}])
    assert "items.0.subscriber.id" in info.value.errors


def test_tenants_enroll_into_their_own_sequence(dd):
    dd.create_channel_adapter(name="a-mem", channel="email", provider="memory", tenant_key="a")
    for tenant in ("a", "b"):
        seq = dd.create_sequence(name="T", key="t", tenant_key=tenant)
        v = dd.create_sequence_version(seq.id, active=True)
        dd.create_step(v.id, name="a", channel="email", config={"subject": tenant, "body": "b"})
    e = dd.enroll("t", {"type": "User", "id": 1}, data={"email": "x@x.io"}, tenant_key="a")
    assert e.tenant_key == "a"
    assert dd.get_enrollment("t", "User", 1, tenant_key="b") is None
    dd.run_due()
    assert [m.payload["subject"] for m in outbox()] == ["a"]


async def test_async_face_enrolls_and_runs(env, database_url):
    from dripdrop import AsyncDripDrop

    add = AsyncDripDrop(
        database_url,
        schema=env.schema,
        clock=env.clock,
        encryption_key=env.dd.runtime.keyring and "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    )
    await add.create_channel_adapter(name="mem", channel="email", provider="memory")
    seq = await add.create_sequence(name="A", key="a")
    v = await add.create_sequence_version(seq.id, active=True)
    await add.create_step(
        v.id, name="hello", channel="email", config={"subject": "hi {{ name }}", "body": "b"}
    )
    await add.enroll("a", {"type": "User", "id": 1}, data={"email": "a@x.io", "name": "Ada"})
    summary = await add.run_due()
    assert summary.sent == 1
    assert [m.payload["subject"] for m in outbox()] == ["hi Ada"]
    await add.close()


async def test_async_face_runs_a_worker_until_stopped(env, database_url):
    import asyncio

    from dripdrop import AsyncDripDrop

    add = AsyncDripDrop(
        database_url,
        schema=env.schema,
        clock=env.clock,
        encryption_key="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    )
    await add.create_channel_adapter(name="mem", channel="email", provider="memory")
    seq = await add.create_sequence(name="W", key="w")
    v = await add.create_sequence_version(seq.id, active=True)
    await add.create_step(v.id, name="hello", channel="email", config={"subject": "s", "body": "b"})
    for i in range(30):
        await add.enroll("w", {"type": "User", "id": i}, data={"email": f"u{i}@x.io"})
    stop = asyncio.Event()
    worker = asyncio.create_task(
        add.run_worker(concurrency=20, batch_size=10, poll_interval=0.2, stop_event=stop)
    )
    for _ in range(200):
        if len(outbox()) == 30:
            break
        await asyncio.sleep(0.02)
    stop.set()
    summary = await asyncio.wait_for(worker, 10)
    await add.close()
    assert summary.sent == 30
    assert len({m.execution_id for m in outbox()}) == 30


async def test_async_face_enroll_many_copies_and_skips_existing(env, database_url):
    # The async driver connection's COPY is driven from inside run_sync (it raised TypeError).
    from dripdrop import AsyncDripDrop

    add = AsyncDripDrop(
        database_url,
        schema=env.schema,
        clock=env.clock,
        encryption_key="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    )
    try:
        await add.create_channel_adapter(name="mem", channel="email", provider="memory")
        seq = await add.create_sequence(name="Bulk", key="bulk")
        v = await add.create_sequence_version(seq.id, active=True)
        step = await add.create_step(
            v.id, name="hello", channel="email", config={"subject": "s", "body": "b"}
        )

        def items(ids):
            return (
                {"subscriber": {"type": "User", "id": i}, "data": {"email": f"u{i}@x.io"}}
                for i in ids
            )

        assert await add.enroll_many("bulk", items(range(1, 151)), batch_size=50) == 150
        # The second call's first batch overlaps in part (126..150): that batch alone is redone,
        # skipping the subscribers already enrolled; the later batches are plain COPYs.
        assert await add.enroll_many("bulk", items(range(126, 301)), batch_size=50) == 150
        active = await add.list_active_enrollments("bulk")
        assert sorted(int(e.subscriber_id) for e in active) == list(range(1, 301))
        some = next(e for e in active if e.subscriber_id == "42")
        assert some.data == {"email": "u42@x.io"}
        [first] = await add.list_executions(some.id)
        assert (first.step_id, first.state, first.scheduled_for) == (
            step.id,
            "scheduled",
            env.clock(),
        )
        assert (await add.run_due(batch_size=50, lanes=3)).sent == 300
        assert len({m.recipient for m in outbox()}) == 300
    finally:
        await add.close()
