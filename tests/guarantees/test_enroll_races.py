"""An enrollment and its first execution are written by one statement: enrolls racing each
other and a running worker give one enrollment, one first execution and one delivery; and a
failing start-up check never keeps the worker from delivering."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from guarantee_support import sequence, sql, wait_for

from dripdrop.testing import outbox


def test_enrolls_racing_each_other_and_the_worker_deliver_once(dd) -> None:
    sequence(dd, "race")
    stop = threading.Event()
    worker = threading.Thread(
        target=dd.run_worker,
        kwargs={"stop_event": stop, "handle_signals": False, "poll_interval": 0.05},
    )
    worker.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(
                    lambda _: dd.enroll(
                        "race",
                        {"type": "User", "id": 1},
                        data={"email": "a@x.io"},
                        on_conflict="ignore",
                    ),
                    range(40),
                )
            )
        wait_for(lambda: len(outbox()) >= 1, 10, "the delivery")
    finally:
        stop.set()
        worker.join(timeout=20)
    assert len({e.id for e in results}) == 1
    assert len(sql(dd, "SELECT id FROM {s}.enrollments")) == 1
    assert len(sql(dd, "SELECT id FROM {s}.step_executions")) == 1
    assert len(outbox()) == 1


def test_a_failing_start_up_check_never_keeps_the_worker_from_delivering(dd, monkeypatch) -> None:
    import dripdrop.definitions.readiness as readiness

    def broken(rt, conn):  # e.g. the database refusing the check's query
        raise RuntimeError("check failed")

    monkeypatch.setattr(readiness, "log_active_problems", broken)
    sequence(dd, "starts")
    dd.enroll("starts", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    stop = threading.Event()
    worker = threading.Thread(
        target=dd.run_worker,
        kwargs={"stop_event": stop, "handle_signals": False, "poll_interval": 0.05},
    )
    worker.start()
    try:
        wait_for(lambda: len(outbox()) == 1, 10, "the delivery")
    finally:
        stop.set()
        worker.join(timeout=20)
