"""The dispatcher driving a scheduler of the user's own (any object with ``schedule`` and
``cancel``): everything due is handed out and run once, lost jobs are handed out again, jobs run
twice send once, a refused job comes back at once, and a cancel reaches the scheduler."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import text

from dripdrop import DripDrop
from dripdrop.testing import TestEnv, outbox
from dripdrop.worker.scheduler import Scheduler

N = 40


class ThreadScheduler:
    """Runs each job on a thread pool: ``dd.run_execution(id)``, as a real engine's job would.
    ``mischief(execution_id, attempt)`` may return "drop" (the job is lost), "twice" (it runs
    twice at once) or "refuse" (schedule raises)."""

    def __init__(self, mischief: Callable[[uuid.UUID, int], str | None] = lambda *_: None):
        self.dd: Any = None
        self.pool = ThreadPoolExecutor(4)
        self.mischief = mischief
        self.handed: Counter[uuid.UUID] = Counter()
        self.cancelled: list[str] = []
        self.outcomes: list[tuple[uuid.UUID, str, bool]] = []
        self.lock = threading.Lock()

    def bind(self, dd: Any) -> None:
        self.dd = dd

    def _run(self, execution_id: uuid.UUID) -> None:
        run = self.dd.run_execution(execution_id)
        with self.lock:
            self.outcomes.append((execution_id, run.outcome, run.ran))

    def schedule(self, execution_id: uuid.UUID, when: datetime) -> str:
        with self.lock:
            self.handed[execution_id] += 1
            attempt = self.handed[execution_id]
        trick = self.mischief(execution_id, attempt)
        if trick == "refuse":
            raise ConnectionError("broker unreachable")
        if trick != "drop":
            self.pool.submit(self._run, execution_id)
            if trick == "twice":
                self.pool.submit(self._run, execution_id)
        return f"job-{execution_id}-{attempt}"

    def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)


@contextmanager
def dispatching(env: TestEnv, scheduler: ThreadScheduler, **options: Any) -> Iterator[DripDrop]:
    """A DripDrop on the test's schema and clock using ``scheduler``, its dispatcher running."""
    dd = DripDrop(
        env.dd.runtime.database_url, schema=env.schema, clock=env.clock, scheduler=scheduler
    )
    stop = threading.Event()
    options.setdefault("poll_interval", 0.1)
    thread = threading.Thread(target=dd.run_dispatcher, args=(stop,), kwargs=options)
    thread.start()
    try:
        yield dd
    finally:
        stop.set()
        thread.join(15)
        scheduler.pool.shutdown(wait=True)
        dd.close()
        assert not thread.is_alive()


def two_step_flow(flow: Any, n: int) -> None:
    flow.step("first")
    flow.step("second")
    for i in range(n):
        flow.enroll(i)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


def states(env: TestEnv) -> Counter[str]:
    with env.dd.runtime.engine.begin() as conn:
        rows = conn.execute(
            text(f'SELECT state, count(*) FROM "{env.schema}".step_executions GROUP BY 1')
        )
        return Counter(dict(rows.all()))


def test_a_custom_scheduler_runs_every_execution_once(env, flow) -> None:
    two_step_flow(flow, N)
    scheduler = ThreadScheduler()
    assert isinstance(scheduler, Scheduler)
    with dispatching(env, scheduler) as dd:
        assert dd.scheduler is scheduler
        wait_for(lambda: states(env) == Counter({"sent": 2 * N}), 60, "every execution sent")
    assert len(outbox()) == 2 * N
    assert Counter(m.recipient for m in outbox()) == {f"u{i}@x.io": 2 for i in range(N)}
    assert set(scheduler.handed.values()) == {1}  # nothing handed out twice
    assert all(ran and outcome == "sent" for _, outcome, ran in scheduler.outcomes)


def test_a_lost_job_is_handed_out_again_after_the_window(env, flow) -> None:
    two_step_flow(flow, 10)
    scheduler = ThreadScheduler(lambda _, attempt: "drop" if attempt == 1 else None)
    with dispatching(env, scheduler, redispatch_after=2.0):
        wait_for(lambda: len(scheduler.handed) >= 10, 20, "first jobs handed out")
        time.sleep(1.0)
        assert outbox() == []  # every first job was lost: nothing ran before the window
        wait_for(lambda: states(env) == Counter({"sent": 20}), 60, "every execution sent")
    assert len(outbox()) == 20
    # Each was handed out again (a job queued past the window may be handed out a third time:
    # the claim keeps the copies from sending twice).
    assert min(scheduler.handed.values()) >= 2


def test_a_job_run_twice_sends_once(env, flow) -> None:
    two_step_flow(flow, 15)
    scheduler = ThreadScheduler(lambda *_: "twice")
    with dispatching(env, scheduler):
        wait_for(lambda: states(env) == Counter({"sent": 30}), 60, "every execution sent")
        wait_for(lambda: len(scheduler.outcomes) == 60, 20, "every copy of every job ran")
    assert len(outbox()) == 30
    ran = Counter(execution_id for execution_id, _, ran in scheduler.outcomes if ran)
    assert set(ran.values()) == {1}
    refused = Counter(outcome for _, outcome, ran in scheduler.outcomes if not ran)
    assert set(refused) <= {"claimed", "sent"} and sum(refused.values()) == 30


def test_a_refused_job_is_handed_out_again_at_once(env, flow) -> None:
    two_step_flow(flow, 5)
    scheduler = ThreadScheduler(lambda _, attempt: "refuse" if attempt == 1 else None)
    started = time.monotonic()
    with dispatching(env, scheduler, redispatch_after=600.0):
        wait_for(lambda: states(env) == Counter({"sent": 10}), 90, "every execution sent")
    assert time.monotonic() - started < 90  # not after the 600 s window
    assert set(scheduler.handed.values()) == {2}


def test_cancel_reaches_the_scheduler_that_holds_the_job(env, flow) -> None:
    flow.step("first")
    e = flow.enroll()
    scheduler = ThreadScheduler(lambda *_: "drop")  # handed out, never run
    with dispatching(env, scheduler, redispatch_after=600.0) as dd:
        wait_for(lambda: len(scheduler.handed) == 1, 20, "the job handed out")
        [x] = dd.list_executions(e.id)

        def noted() -> bool:
            with env.dd.runtime.engine.begin() as conn:
                s = f'"{env.schema}"'
                by = conn.execute(
                    text(f"SELECT locked_by FROM {s}.step_executions WHERE id = :id"),
                    {"id": x.id},
                ).scalar()
            return bool(by and by.startswith("job:"))

        wait_for(noted, 10, "the job id noted")
        dd.cancel_execution(x.id)
    assert scheduler.cancelled == [f"job-{x.id}-1"]
    assert env.dd.get_enrollment_by_id(e.id).state == "cancelled"
