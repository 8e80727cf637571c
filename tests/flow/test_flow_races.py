"""One enrollment, one chain, with transitions: a running worker choosing next steps by an event
condition while other threads track that event, unenroll and pause/resume the same enrollments.
No step is delivered twice, no enrollment ever has two chains, an unenrolled one gets nothing
after its cancel, and every chain is a path of the graph."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from dripdrop import ValidationError
from dripdrop.testing import outbox

N = 60


def sql(dd, query):
    with dd.runtime.engine.begin() as conn:
        return list(conn.execute(text(query.format(s=f'"{dd.schema}"'))))


def test_transitions_racing_events_and_unenrolls_keep_one_chain(dd, flow):
    a, b, c, d = (flow.step(k) for k in "abcd")
    paid = flow.edge(a, c, mode="all", priority=1)
    dd.create_condition(
        transition_id=paid.id,
        condition_type="event",
        config={"event_key": "paid"},
        operator="gte",
        expected_value="1",
    )
    flow.edge(b, d)  # unpaid: a, b, d; paid: a, c, d
    enrollments = [flow.enroll(i) for i in range(N)]
    rng = random.Random(7)
    stop = threading.Event()
    worker = threading.Thread(
        target=dd.run_worker,
        kwargs={"stop_event": stop, "handle_signals": False, "poll_interval": 0.02},
    )
    worker.start()
    unenrolled: set[int] = set()

    def meddle(i: int) -> None:
        e = enrollments[i]
        time.sleep(rng.random() * 0.05)
        if i % 3 == 0:
            dd.track_event(e.id, "paid")
        elif i % 3 == 1:
            # A worker that finished the chain first leaves it completed (unenroll says so).
            if dd.unenroll("flow", "User", i).state == "cancelled":
                unenrolled.add(i)
        else:
            try:
                dd.pause_enrollment(e.id)
            except ValidationError:  # the worker finished it first: nothing left to pause
                return
            dd.track_event(e.id, "paid")
            try:
                dd.resume_enrollment(e.id)
            except ValidationError:
                # Its last step was already at the provider when the pause came: recording it
                # completed the chain (docs/worker.md, the fence). Nothing is left to resume.
                assert dd.get_enrollment_by_id(e.id).state == "completed"

    try:
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(meddle, range(N)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            left = sql(dd, "SELECT count(*) FROM {s}.step_executions WHERE state = 'scheduled'")
            if left[0][0] == 0:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(timeout=30)

    keys = {a.id: "a", b.id: "b", c.id: "c", d.id: "d"}
    rows = sql(
        dd,
        "SELECT enrollment_id, step_id, state FROM {s}.step_executions "
        "ORDER BY enrollment_id, scheduled_for, id",
    )
    sent = Counter((r.enrollment_id, r.step_id) for r in rows if r.state == "sent")
    assert max(sent.values()) == 1  # no step delivered twice
    delivered = Counter((m.recipient, m.payload["subject"]) for m in outbox())
    assert max(delivered.values()) == 1
    for i, e in enumerate(enrollments):
        mine = [r for r in rows if r.enrollment_id == e.id]
        assert sum(r.state == "scheduled" for r in mine) == 0
        path = [keys[r.step_id] for r in mine if r.state in ("sent", "skipped")]
        assert path in (["a", "b", "d"], ["a", "c", "d"], ["a", "b"], ["a", "c"], ["a"], []), path
        state = dd.get_enrollment_by_id(e.id)
        if i in unenrolled:
            assert (state.state, state.exit_reason) == ("cancelled", "unenrolled")
            # Nothing was scheduled after the cancel: only the one execution it cancelled.
            assert sum(r.state == "cancelled" for r in mine) <= 1
        else:
            assert (state.state, state.exit_reason) == ("completed", "completed")
            assert path in (["a", "b", "d"], ["a", "c", "d"])
    # The event decided the branch of the enrollments that tracked it before a finished.
    assert any(p == "c" for p in (keys[r.step_id] for r in rows if r.state == "sent"))
