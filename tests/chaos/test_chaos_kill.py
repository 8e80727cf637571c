"""kill -9, again and again: worker processes die mid-batch while delivering signed webhooks.
At least once must hold: every execution ends sent, none is lost, and a redelivery carries the
original webhook-id (so receivers can drop it)."""

from __future__ import annotations

import time
from collections.abc import Callable

from chaos_support import (
    Deliveries,
    SinkProcess,
    WorkerPool,
    all_sent,
    diagnostics,
    enroll,
    execution_states,
    leased_count,
    wait_first_delivery,
    wait_until,
    webhook_sequence,
)

from dripdrop.testing import TestEnv

# Two workers deliver ~450 webhooks/s at this delay and concurrency; with one of them always
# restarting, N keeps the queue busy for the whole kill window.
N = 2500
LEASE = 3.0
CONCURRENCY = 20
SINK_DELAY = 0.05
KILL_EVERY = 1.0
KILL_WINDOW = 8.0


def test_workers_killed_repeatedly_lose_nothing(
    chaos_env: TestEnv,
    start_sink: Callable[..., SinkProcess],
    workers: WorkerPool,
    encryption_key: str,
) -> None:
    env = chaos_env
    sink = start_sink(delay=SINK_DELAY)
    webhook_sequence(env, sink)
    enroll(env, N)
    show = diagnostics(env, workers, sink)

    def start() -> None:
        workers.start(env, encryption_key, concurrency=CONCURRENCY, lease=LEASE)

    start()
    start()
    wait_first_delivery(sink, show)

    kills = mid_work = 0
    window_end = time.monotonic() + KILL_WINDOW
    while time.monotonic() < window_end:
        time.sleep(KILL_EVERY)
        alive = workers.alive()
        assert alive, f"every worker died by itself:\n{show()}"
        workers.kill(alive[0])  # the oldest: the most likely to be mid-batch
        kills += 1
        mid_work += not all_sent(env, N)
        start()
    assert mid_work >= kills - 1, (
        f"only {mid_work} of {kills} kills found work left: raise N so the kills hit deliveries"
    )

    left = N - execution_states(env)["sent"]
    recovery = wait_until(lambda: all_sent(env, N), 45, f"all {N} executions sent", show)
    assert leased_count(env) == 0, show()
    survivors = workers.alive()
    assert len(survivors) == 2, f"a worker died by itself:\n{show()}"

    deliveries = Deliveries.collect(env, sink)
    print(
        f"\n{kills} kills ({mid_work} mid-work); {deliveries.summary()}; "
        f"{left} left at the last kill, all sent {recovery:.1f} s after it"
    )
    assert len(deliveries.expected) == N
    deliveries.assert_at_least_once()
