"""PostgreSQL restarts under the worker (a private server, fast shutdown): the same worker
process reconnects and finishes; nothing is lost, redeliveries keep their webhook-id."""

from __future__ import annotations

import time
from collections.abc import Callable

from chaos_support import (
    Deliveries,
    PgInstance,
    SinkProcess,
    WorkerPool,
    all_sent,
    diagnostics,
    enroll,
    leased_count,
    received_after,
    wait_first_delivery,
    wait_until,
    webhook_sequence,
)

from dripdrop.testing import TestEnv

# One worker delivers ~80 webhooks/s at this concurrency and delay.
N = 200
CONCURRENCY = 5
SINK_DELAY = 0.05
RUN_BEFORE_RESTART = 1.0


def test_worker_survives_postgres_restart(
    pg_instance: PgInstance,
    pg_env: TestEnv,
    start_sink: Callable[..., SinkProcess],
    workers: WorkerPool,
    encryption_key: str,
) -> None:
    env = pg_env
    sink = start_sink(delay=SINK_DELAY)
    webhook_sequence(env, sink)
    enroll(env, N)
    show = diagnostics(env, workers, sink)

    def show_all() -> str:
        return f"{show()}\n{pg_instance.tail()}"

    worker = workers.start(env, encryption_key, concurrency=CONCURRENCY)
    pid = worker.pid
    wait_first_delivery(sink, show_all)
    time.sleep(RUN_BEFORE_RESTART)
    assert not all_sent(env, N), "everything was sent before the restart: raise N"

    restart_began = time.time()
    pg_instance.restart()
    restarted = time.time()

    wait_until(lambda: all_sent(env, N), 45, f"all {N} executions sent", show_all)
    assert worker.alive() and worker.pid == pid, f"the worker did not survive:\n{show_all()}"
    assert leased_count(env) == 0, show_all()
    after = received_after(sink, restarted)
    assert after, "nothing was delivered after the restart"
    deliveries = Deliveries.collect(env, sink)
    print(
        f"\nrestart took {restarted - restart_began:.1f} s; first delivery "
        f"{after[0] - restart_began:.1f} s after the restart began; {deliveries.summary()}"
    )
    deliveries.assert_at_least_once()
