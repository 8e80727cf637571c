"""SIGTERM under load: workers stop gracefully, recording what they delivered before they exit,
so a fresh worker sends only the rest. Exactly once across the restart when every delivery ends
within the grace; past the grace only the cut-off stragglers may be sent again."""

from __future__ import annotations

import signal
import subprocess
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
    query,
    wait_first_delivery,
    wait_until,
    webhook_sequence,
)

from dripdrop.testing import TestEnv

# Two workers deliver ~160 webhooks/s at this delay: N leaves plenty for after the stop.
N = 600
CONCURRENCY = 20
GRACE = 10.0
SINK_DELAY = 0.2
RUN_BEFORE_STOP = 1.5

# The straggler test: one round (the worker claims all N at once); every 4th subscriber's
# request outlasts the short grace.
STRAGGLER_N = CONCURRENCY
STRAGGLER_EVERY = 4
STRAGGLER_DELAY = 5.0
SHORT_GRACE = 1.5


def test_sigterm_records_finished_deliveries(
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

    first = [workers.start(env, encryption_key, concurrency=CONCURRENCY, grace=GRACE)]
    first.append(workers.start(env, encryption_key, concurrency=CONCURRENCY, grace=GRACE))
    wait_first_delivery(sink, show)
    time.sleep(RUN_BEFORE_STOP)
    assert not all_sent(env, N), "everything was sent before the stop: raise N"

    stopped_at = time.monotonic()
    for w in first:
        w.proc.send_signal(signal.SIGTERM)
    for w in first:
        try:
            code = w.proc.wait(timeout=GRACE + 10)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{w.name} did not stop within the grace:\n{show()}") from exc
        assert code == 0, f"{w.name} exited with {code}:\n{show()}"
    stop_took = time.monotonic() - stopped_at
    states = execution_states(env)
    assert leased_count(env) == 0, f"left leased after a graceful stop: {states}\n{show()}"

    # Whatever reached the sink before the exit must be on record as sent.
    delivered = {r["webhook_id"] for r in sink.received()}
    unrecorded = delivered - sent_keys(env)
    assert not unrecorded, (
        f"{len(unrecorded)} of {len(delivered)} webhooks delivered before the stop are not "
        f"recorded as sent ({dict(states)})\n{show()}"
    )

    workers.start(env, encryption_key, concurrency=CONCURRENCY)
    wait_until(lambda: all_sent(env, N), 45, f"all {N} executions sent", show)
    deliveries = Deliveries.collect(env, sink)
    print(
        f"\nstopped in {stop_took:.1f} s with {len(delivered)} delivered, {dict(states)}; "
        f"{deliveries.summary()}"
    )
    deliveries.assert_exactly_once()


def sent_keys(env: TestEnv) -> set[str]:
    rows = query(env, "SELECT idempotency_key FROM {s}.step_executions WHERE state = 'sent'")
    return {key for (key,) in rows}


def test_sigterm_past_the_grace_records_what_finished(
    chaos_env: TestEnv,
    start_sink: Callable[..., SinkProcess],
    workers: WorkerPool,
    encryption_key: str,
) -> None:
    env = chaos_env
    sink = start_sink(delay=0.05, slow_every=STRAGGLER_EVERY, slow_delay=STRAGGLER_DELAY)
    webhook_sequence(env, sink)
    enroll(env, STRAGGLER_N)
    show = diagnostics(env, workers, sink)

    worker = workers.start(env, encryption_key, concurrency=CONCURRENCY, grace=SHORT_GRACE)
    # Every row has been sent; the batches now wait on their stragglers.
    wait_until(lambda: sink.count() >= STRAGGLER_N, 30, "every row sent once", show)
    time.sleep(0.3)
    worker.proc.send_signal(signal.SIGTERM)
    try:
        code = worker.proc.wait(timeout=SHORT_GRACE + 10)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the worker did not stop after the grace:\n{show()}") from exc
    assert code == 0, f"exit code {code}:\n{show()}"
    states = execution_states(env)
    assert leased_count(env) == 0, f"left leased after a graceful stop: {states}\n{show()}"

    before = Deliveries.collect(env, sink)
    stragglers = {key for key, sub in before.expected.items() if int(sub) % STRAGGLER_EVERY == 0}
    answered = set(before.counts) - stragglers
    unrecorded = answered - sent_keys(env)
    assert not unrecorded, (
        f"{len(unrecorded)} of {len(answered)} webhooks answered before the stop are not "
        f"recorded as sent, so they will be sent again ({dict(states)})\n{show()}"
    )

    workers.start(env, encryption_key, concurrency=CONCURRENCY)
    wait_until(lambda: all_sent(env, STRAGGLER_N), 45, "all executions sent", show)
    deliveries = Deliveries.collect(env, sink)
    print(f"\nat the stop: {dict(states)}; {deliveries.summary()}")
    deliveries.assert_at_least_once()
    twice = {key for key, n in deliveries.counts.items() if n > 1} - stragglers
    assert not twice, f"{len(twice)} answered webhooks sent twice ({deliveries.summary()})"
