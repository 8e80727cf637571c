"""Work in flight: a slow delivery keeps its lease (heartbeat) and never makes its batch go out
again; outcomes are written as executions finish; a stop records what finished and gives the
rest back; blocking user code never starves the worker."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from guarantee_support import RELEASE, sequence, sql, wait_for, worker_thread

from dripdrop.testing import outbox

LIVE_LEASE = "state = 'scheduled' AND locked_until > clock_timestamp()"


def _state_counts(dd: Any) -> Counter[str]:
    return Counter(dict(sql(dd, "SELECT state, count(*) FROM {s}.step_executions GROUP BY 1")))


def test_a_slow_delivery_keeps_its_lease_and_its_batch_is_not_resent(dd) -> None:
    """One delivery takes 4 s with a 1.2 s lease while two workers run: the heartbeat keeps the
    lease, the 9 fast ones are recorded while it is still in flight, and nothing goes twice."""
    sequence(
        dd,
        "s",
        provider="slownet",
        steps=({"subject": "{{ speed }}"},),
        adapter_config={"delays": {"slow": 4.0, "fast": 0.05}},
    )
    for i in range(10):
        speed = "slow" if i == 0 else "fast"
        dd.enroll("s", {"type": "User", "id": i}, data={"email": f"{i}@x.io", "speed": speed})
    options = {"concurrency": 20, "lease_seconds": 1.2, "poll_interval": 0.1}
    with worker_thread(dd, **options) as stop_a, worker_thread(dd, **options) as stop_b:
        wait_for(lambda: _state_counts(dd)["sent"] == 9, 3, "the fast ones to be recorded")
        assert sql(dd, f"SELECT count(*) FROM {{s}}.step_executions WHERE {LIVE_LEASE}") == [(1,)]
        wait_for(lambda: _state_counts(dd)["sent"] == 10, 10, "the slow one")
        time.sleep(1.5)  # longer than a lease: a re-claim would show now
        summaries = [stop_a(), stop_b()]
    ids = [m.execution_id for m in outbox()]
    assert len(ids) == len(set(ids)) == 10, Counter(ids).most_common(3)
    assert sum(s.sent for s in summaries) == 10


def test_a_stop_records_what_finished_and_gives_back_the_rest(dd) -> None:
    """At the end of the grace period, finished outcomes of a partly done batch are recorded,
    unfinished executions are released (claimable at once), and none is sent twice."""
    sequence(
        dd,
        "g",
        provider="slownet",
        steps=({"subject": "{{ speed }}"},),
        adapter_config={"delays": {"slow": 30.0, "fast": 0.02}},
    )
    for i in range(10):
        speed = "slow" if i % 2 else "fast"
        dd.enroll("g", {"type": "User", "id": i}, data={"email": f"{i}@x.io", "speed": speed})
    with worker_thread(dd, concurrency=10, grace=0.3, lease_seconds=60) as stop:
        wait_for(lambda: len(outbox()) == 5, 5, "the fast deliveries")
        started = time.monotonic()
        summary = stop()
    assert time.monotonic() - started < 5
    assert summary.sent == 5
    assert _state_counts(dd) == {"sent": 5, "scheduled": 5}
    leased = sql(dd, "SELECT count(*) FROM {s}.step_executions WHERE lease_token IS NOT NULL")
    assert leased == [(0,)], "released executions must be claimable at once"
    sent = {m.execution_id for m in outbox()}
    scheduled = {
        str(r.id) for r in sql(dd, "SELECT id FROM {s}.step_executions WHERE state = 'scheduled'")
    }
    assert not sent & scheduled


def test_hung_python_hooks_do_not_starve_the_worker(env) -> None:
    """Sync hooks that never return (more of them than there are threads) time out; the
    executions of other sequences are still delivered and recorded, and run_due returns."""
    dd = env.dd
    dd.runtime.hook_timeout = 0.3
    sequence(dd, "hung", steps=({"subject": "{{ hangs }}"},), hook_module="guarantee_hooks")
    sequence(dd, "fine", steps=({"subject": "fine"},))
    for i in range(20):
        dd.enroll("hung", {"type": "User", "id": i}, data={"email": f"{i}@x.io"})
        dd.enroll("fine", {"type": "User", "id": i}, data={"email": f"{i}@x.io"})
    result: dict[str, Any] = {}
    RELEASE.clear()
    thread = threading.Thread(target=lambda: result.update(s=dd.run_due()), daemon=True)
    try:
        thread.start()
        thread.join(30)
        assert not thread.is_alive(), "run_due never returned"
    finally:
        RELEASE.set()
    summary = result["s"]
    assert summary.sent == 20 and summary.failed == 20, summary
    errors = {
        r[0]
        for r in sql(dd, "SELECT error_message FROM {s}.step_executions WHERE state = 'failed'")
    }
    assert all("took longer" in e for e in errors), errors


def test_a_delivery_that_never_returns_is_retried_not_waited_for(dd) -> None:
    """A provider that hangs cannot hold its lane (and keep renewing its lease) forever: past
    ``execution_timeout`` the execution is retried later, like any timeout."""
    dd.runtime.execution_timeout = 0.3
    sequence(dd, "h", provider="slownet", adapter_config={"delay": 30.0})
    dd.enroll("h", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    started = time.monotonic()
    summary = dd.run_due()
    assert time.monotonic() - started < 5
    assert summary.retried == 1 and outbox() == []
    [row] = sql(
        dd, "SELECT state, retry_count, error_message, lease_token FROM {s}.step_executions"
    )
    assert (row.state, row.retry_count, row.lease_token) == ("scheduled", 1, None)
    assert "took longer than 0.3 s" in row.error_message
