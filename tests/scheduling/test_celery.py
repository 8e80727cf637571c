"""Celery as the scheduler, with real ``celery worker`` processes over the machine's Redis and
RabbitMQ, delivering signed webhooks to a loopback sink process.

The PostgreSQL row is the source of truth: every execution is delivered exactly once when the
Celery worker is SIGKILLed mid-task (the claim's lease runs out, the dispatcher hands the
execution out again, the broker's own redelivery finds it claimed or sent) and when the broker
loses every message (the dispatcher hands them out again after its window)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from celery_support import BROKERS, celery_rig, purge, reachable, webhook_sequence
from chaos_support import (
    Deliveries,
    SinkProcess,
    all_sent,
    enroll,
    execution_states,
    query,
    wait_until,
)


def broker_params() -> list[object]:
    return [
        pytest.param(
            make_url,
            id=name,
            marks=pytest.mark.skipif(not reachable(port), reason=f"no {name} on 127.0.0.1"),
        )
        for name, (port, make_url) in BROKERS.items()
    ]


@pytest.mark.parametrize("broker", broker_params())
def test_a_celery_worker_delivers_every_execution_once(
    database_url: str,
    broker: Callable[[], str],
    tmp_path: Path,
    start_sink: Callable[..., SinkProcess],
) -> None:
    n = 60
    sink = start_sink()
    with celery_rig(database_url, broker(), tmp_path, lease=30.0) as rig:
        env = rig.env
        webhook_sequence(env, sink)
        enroll(env, n)
        rig.workers.start(concurrency=4)
        rig.dispatch(redispatch_after=30.0)
        show = rig.workers.diagnostics
        took = wait_until(lambda: all_sent(env, n), 90, f"all {n} sent", show)
        deliveries = Deliveries.collect(env, sink)
        print(f"\n{deliveries.summary()} in {took:.1f} s")
        deliveries.assert_exactly_once()
        log = "\n".join(p.read_text(errors="replace") for p in rig.workers.logs)
        assert "dripdrop.run_execution" in log  # Celery's worker ran them, not anyone else


@pytest.mark.parametrize("broker", broker_params())
def test_a_celery_worker_killed_mid_task_delivers_each_execution_exactly_once(
    database_url: str,
    broker: Callable[[], str],
    tmp_path: Path,
    start_sink: Callable[..., SinkProcess],
) -> None:
    # A lease the heartbeat keeps on this loaded machine (a stalled process that lets it run out
    # mid-delivery sends twice, as with the worker: docs/worker.md); the hook outlasts it.
    n, lease = 8, 8.0
    sink = start_sink()
    with celery_rig(database_url, broker(), tmp_path, lease=lease, hook_seconds=6.0) as rig:
        env = rig.env
        webhook_sequence(env, sink, slow_hook=True)
        enroll(env, n)
        first = rig.workers.start(concurrency=4)
        rig.dispatch(redispatch_after=30.0)
        show = rig.workers.diagnostics

        def mid_task() -> bool:  # claimed by run_execution: inside the slow hook
            [(claimed,)] = query(
                env,
                "SELECT count(*) FROM {s}.step_executions WHERE lease_token IS NOT NULL "
                "AND locked_until > clock_timestamp()",
            )
            return claimed >= 2

        wait_until(mid_task, 60, "executions running in the Celery worker", show)
        rig.workers.kill(first)
        killed_at = time.monotonic()
        assert sink.count() == 0, "a delivery finished before the kill: nothing was mid-task"
        before = execution_states(env)
        assert before["sent"] == 0

        rig.workers.start(concurrency=4)
        took = wait_until(lambda: all_sent(env, n), 120, f"all {n} sent", show)
        time.sleep(lease)  # the broker's redeliveries of the killed tasks run meanwhile
        deliveries = Deliveries.collect(env, sink)
        print(
            f"\nkilled with {before}; {deliveries.summary()}; all sent "
            f"{time.monotonic() - killed_at - lease:.1f} s after the kill (took {took:.1f})"
        )
        deliveries.assert_exactly_once()
        assert all_sent(env, n)


@pytest.mark.parametrize("broker", broker_params())
def test_messages_the_broker_lost_are_dispatched_again(
    database_url: str,
    broker: Callable[[], str],
    tmp_path: Path,
    start_sink: Callable[..., SinkProcess],
) -> None:
    n, window = 20, 6.0
    sink = start_sink()
    with celery_rig(database_url, broker(), tmp_path, lease=30.0) as rig:
        env = rig.env
        webhook_sequence(env, sink)
        enroll(env, n)
        rig.dispatch(redispatch_after=window)  # no Celery worker yet: the messages wait
        show = rig.workers.diagnostics

        def handed_out() -> bool:
            [(jobs,)] = query(
                env, "SELECT count(*) FROM {s}.step_executions WHERE locked_by LIKE 'job:%'"
            )
            return jobs == n

        wait_until(handed_out, 30, f"all {n} handed to Celery", show)
        dispatched_at = time.monotonic()
        assert purge(rig.app, rig.queue) == n  # the broker loses every message
        rig.workers.start(concurrency=4)
        time.sleep(max(0.0, window / 2 - (time.monotonic() - dispatched_at)))
        assert sink.count() == 0  # nothing left in the queue until the window runs out

        wait_until(lambda: all_sent(env, n), 90, f"all {n} sent", show)
        took = time.monotonic() - dispatched_at
        assert took >= window * 0.9, f"sent {took:.1f} s after dispatch: before the window?"
        deliveries = Deliveries.collect(env, sink)
        print(f"\n{deliveries.summary()}; sent again {took:.1f} s after the lost dispatch")
        deliveries.assert_exactly_once()
