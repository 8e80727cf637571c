"""A delivery that takes longer than the lease, with no worker dying: the worker holding the
claim must keep it (heartbeat) so no other worker sends the same webhook meanwhile."""

from __future__ import annotations

from collections.abc import Callable

from chaos_support import (
    Deliveries,
    SinkProcess,
    WorkerPool,
    all_sent,
    diagnostics,
    enroll,
    leased_count,
    wait_first_delivery,
    wait_until,
    webhook_sequence,
)

from dripdrop.testing import TestEnv

# Fewer rows than the two workers' capacity, so one of them always has a free lane to steal
# with; every request outlives the lease.
N = 20
LEASE = 2.0
SINK_DELAY = 3.5
CONCURRENCY = 20


def test_slow_delivery_keeps_its_lease(
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

    for _ in range(2):
        workers.start(env, encryption_key, concurrency=CONCURRENCY, lease=LEASE)
    wait_first_delivery(sink, show)

    def settled() -> bool:
        # A second request for an execution, while both workers live, is a stolen claim: fail
        # at once rather than wait for the (possibly endless) back and forth to settle.
        return all_sent(env, N) or Deliveries.collect(env, sink).duplicates > 0

    took = wait_until(settled, 30, f"all {N} executions sent", show)
    deliveries = Deliveries.collect(env, sink)
    print(f"\nsettled {took:.1f} s after the first delivery; {deliveries.summary()}")
    assert len(workers.alive()) == 2, f"a worker died:\n{show()}"
    stolen = deliveries.duplicates
    assert stolen == 0, (
        f"a lease ran out under a live delivery and another worker sent it again "
        f"({deliveries.summary()})\n{show()}"
    )
    assert leased_count(env) == 0
    deliveries.assert_exactly_once()
