"""The worker's database connections are terminated mid-batch (pg_terminate_backend): the same
process reconnects and carries on; nothing is lost, redeliveries keep their webhook-id."""

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
    leased_count,
    wait_first_delivery,
    wait_until,
    webhook_sequence,
)
from sqlalchemy import text

from dripdrop.testing import TestEnv

# One worker delivers ~80 webhooks/s at this concurrency and delay: N outlasts the terminations.
N = 400
CONCURRENCY = 5
SINK_DELAY = 0.05
TERMINATE_EVERY = 0.5
TERMINATIONS = 4


def terminate_worker_backends(env: TestEnv) -> int:
    """Terminate the sessions of this schema's workers (not other tests', not our own)."""
    name = env.dd.runtime.worker_connect_args()["application_name"]
    with env.dd.runtime.engine.begin() as conn:
        rows = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        ).all()
    return sum(1 for (ok,) in rows if ok)


def test_worker_survives_terminated_connections(
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

    worker = workers.start(env, encryption_key, concurrency=CONCURRENCY)
    pid = worker.pid
    wait_first_delivery(sink, show)

    terminated = []
    for _ in range(TERMINATIONS):
        time.sleep(TERMINATE_EVERY)
        terminated.append(terminate_worker_backends(env))
    assert not all_sent(env, N), "everything was sent before the last termination: raise N"
    assert sum(terminated) > 0, "no worker session was found to terminate"

    took = wait_until(lambda: all_sent(env, N), 45, f"all {N} executions sent", show)
    assert worker.alive() and worker.pid == pid, f"the worker did not survive:\n{show()}"
    assert leased_count(env) == 0, show()
    deliveries = Deliveries.collect(env, sink)
    print(
        f"\nterminated {terminated} sessions; {deliveries.summary()}; "
        f"done {took:.1f} s after the last termination"
    )
    deliveries.assert_at_least_once()
