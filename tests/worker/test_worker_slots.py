"""A drain's concurrency (worker/slots.py): at most N executions preparing and N requests at
providers; a fence confirmation that went stale while its request waited for a slot is made
again; the first-come, first-served gate under cancellation."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from worker_support import one_step_sequence, sql

from dripdrop.channels import DeliveryResult, Fields, ProviderSpec, register
from dripdrop.worker.slots import FENCE_FRESH, Gate

AT_PROVIDER: list[str] = []  # enrollment ids of the requests at the provider right now
PEAK: list[int] = [0]
SENT: list[str] = []
RELEASE = threading.Event()  # the "gated" provider holds its first request until this is set


class Gauge:
    """Counts the requests at the provider at once."""

    async def send(self, message, adapter, ctx):
        AT_PROVIDER.append(message.metadata["enrollment_id"])
        PEAK[0] = max(PEAK[0], len(AT_PROVIDER))
        await asyncio.sleep(float(adapter.config.get("delay", 0.02)))
        AT_PROVIDER.remove(message.metadata["enrollment_id"])
        SENT.append(message.metadata["enrollment_id"])
        return DeliveryResult(status="sent")


class Gated(Gauge):
    """Holds the first request until RELEASE (the test's other requests wait for its slot)."""

    async def send(self, message, adapter, ctx):
        if not SENT and not AT_PROVIDER:
            AT_PROVIDER.append(message.metadata["enrollment_id"])
            while not RELEASE.is_set():
                await asyncio.sleep(0.01)
            AT_PROVIDER.remove(message.metadata["enrollment_id"])
            SENT.append(message.metadata["enrollment_id"])
            return DeliveryResult(status="sent")
        return await super().send(message, adapter, ctx)


class _Config(Fields):
    delay: float | None = None


register(ProviderSpec("email", "gauge_test", Fields, _Config, Gauge))
register(ProviderSpec("email", "gated_test", Fields, _Config, Gated))


@pytest.fixture(autouse=True)
def _reset() -> None:
    AT_PROVIDER.clear()
    SENT.clear()
    PEAK[0] = 0
    RELEASE.clear()


def _enroll(dd: Any, n: int) -> list[Any]:
    return [
        dd.enroll("s", {"type": "User", "id": i}, data={"email": f"u{i}@x.io", "name": i})
        for i in range(n)
    ]


@pytest.mark.parametrize("concurrency", [1, 3, 10])
def test_never_more_requests_at_providers_than_the_concurrency(dd, concurrency: int) -> None:
    one_step_sequence(dd, provider="gauge_test", adapter_config={"delay": 0.03})
    _enroll(dd, 40)
    summary = dd.run_due(concurrency=concurrency)
    assert summary.sent == 40
    assert PEAK[0] == concurrency, PEAK  # reached, never passed


def test_a_request_that_waited_for_its_slot_past_the_fence_is_confirmed_again(dd) -> None:
    """Concurrency 1: the first request holds the only slot at the provider; the second
    execution has passed its fence and waits for that slot when its enrollment is paused.
    Its confirmation is stale by the time the slot comes: it is confirmed again and held."""
    one_step_sequence(dd, provider="gated_test")
    enrollments = {str(e.id): e for e in _enroll(dd, 2)}
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(dd.run_due(concurrency=1)))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not AT_PROVIDER:
            assert time.monotonic() < deadline, "the first request never reached the provider"
            time.sleep(0.01)
        time.sleep(0.3)  # the second passes its fence and queues for the slot
        [first] = AT_PROVIDER
        [second] = [k for k in enrollments if k != first]
        dd.pause_enrollment(enrollments[second].id)
        time.sleep(FENCE_FRESH * 5)
    finally:
        RELEASE.set()
        thread.join(10)
    assert [first] == SENT, "a request went out on a confirmation older than the pause"
    [row] = sql(
        dd,
        "SELECT held, lease_token FROM {s}.step_executions WHERE enrollment_id = :e",
        e=enrollments[second].id,
    )
    assert row.held and row.lease_token is None
    dd.resume_enrollment(enrollments[second].id)
    assert dd.run_due().sent == 1
    assert [first, second] == SENT


async def test_the_gate_serves_waiters_in_order_and_never_more_than_its_slots() -> None:
    gate, held, order = Gate(2), [0], []
    peak = [0]

    async def one(i: int) -> None:
        await gate.acquire()
        order.append(i)
        held[0] += 1
        peak[0] = max(peak[0], held[0])
        await asyncio.sleep(0.001)
        held[0] -= 1
        gate.release()

    await asyncio.gather(*(one(i) for i in range(50)))
    assert order == list(range(50)) and peak[0] == 2


async def test_a_cancelled_waiter_gives_its_slot_on() -> None:
    gate = Gate(1)
    await gate.acquire()
    waiting = [asyncio.ensure_future(gate.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    waiting[0].cancel()  # cancelled while queued: passed over
    await asyncio.sleep(0)
    gate.release()  # goes to waiting[1]
    waiting[1].cancel()  # cancelled after it was handed the slot: the slot goes on
    await asyncio.sleep(0)
    await asyncio.wait_for(waiting[2], 1)
    assert waiting[0].cancelled() and waiting[1].cancelled()
    gate.release()
    await asyncio.wait_for(gate.acquire(), 1)  # one slot, free again: nothing leaked
    assert gate._free == 0 and not [w for w in gate._waiters if not w.done()]


def test_the_fence_falls_back_to_the_workers_connections_when_its_own_fails(
    dd, monkeypatch, caplog
) -> None:
    from dripdrop.worker import fence

    # Nothing listens there: the fence's own connection cannot open.
    monkeypatch.setattr(fence, "worker_dsn", lambda rt: "postgresql://nobody@127.0.0.1:9/none")
    one_step_sequence(dd, provider="gauge_test")
    enrollments = _enroll(dd, 5)
    with caplog.at_level("WARNING", logger="dripdrop.worker"):
        assert dd.run_due(concurrency=2).sent == 5
    assert "fence connection failed" in caplog.text
    assert sorted(SENT) == sorted(str(e.id) for e in enrollments)


def test_a_request_cut_off_by_the_execution_timeout_gives_its_slot_back(dd) -> None:
    """Concurrency 1: the first request hangs at the provider until the execution's time bound
    cancels it (retried later). The only sending slot must come back with the cancellation:
    the executions that start preparing after it are sent in the same drain. (The second one's
    bound started with the first's, so it may time out waiting; without the slot coming back
    every one would.)"""
    dd.runtime.execution_timeout = 0.5
    one_step_sequence(dd, provider="gated_test")  # holds its first request until RELEASE
    _enroll(dd, 4)
    summary = dd.run_due(concurrency=1)
    assert summary.sent >= 2 and summary.sent + summary.retried == 4, summary
    assert len(SENT) == summary.sent
