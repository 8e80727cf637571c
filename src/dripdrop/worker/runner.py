"""Running executions: ``drain`` (everything due now, for run_due and tests) and ``work`` (the
long-running loop: LISTEN/NOTIFY to wake, polling up to the next due time for correctness,
leases, concurrent deliveries, graceful stop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from dripdrop.engine.process import Job, Outcome, run_job
from dripdrop.records import RunSummary
from dripdrop.worker.batch import (
    claim_jobs,
    finish_and_claim,
    next_due_at,
    record_outcomes,
    release_jobs,
)
from dripdrop.worker.eager import run_batch_jobs

log = logging.getLogger("dripdrop.worker")

LEASE_SECONDS = 120.0


def _summary(counts: Counter[str]) -> RunSummary:
    return RunSummary(
        sent=counts["sent"],
        skipped=counts["skipped"],
        failed=counts["failed"],
        retried=counts["retried"],
        deferred=counts["deferred"],
    )


async def run_batch(
    rt: Any,
    db: Any,
    services: Any,
    jobs: list[Job],
    now: datetime,
    semaphore: asyncio.Semaphore | None = None,
) -> list[Outcome]:
    """Run a claimed batch concurrently and record the outcomes in one transaction."""

    async def one(job: Job) -> Outcome:
        if semaphore is None:
            return await run_job(job, services, now)
        async with semaphore:
            return await run_job(job, services, now)

    outcomes = await run_batch_jobs(jobs, one)
    await db.run(record_outcomes, outcomes, now)
    for o in outcomes:
        if o.kind == "failed":
            log.warning("execution %s failed: %s", o.job.execution.id, o.error_message)
    return outcomes


async def drain(
    rt: Any,
    db: Any,
    services: Any,
    *,
    batch_size: int = 100,
    concurrency: int = 100,
    max_batches: int | None = None,
    enrollment_id: uuid.UUID | None = None,
    on_outcome: Any = None,
    lanes: int = 2,
    lease_seconds: float = LEASE_SECONDS,
) -> RunSummary:
    """Process everything due at ``clock()``, including work that becomes due meanwhile.

    ``lanes`` batches run at once (each claim → run → record), so one batch's database round
    trips overlap another's Python work.
    """
    counts: Counter[str] = Counter()
    semaphore = asyncio.Semaphore(concurrency)
    batches = 0

    async def run_jobs(jobs: list[Job], now: datetime) -> list[Outcome]:
        async def one(job: Job) -> Outcome:
            async with semaphore:
                return await run_job(job, services, now)

        return await run_batch_jobs(jobs, one)

    async def lane() -> int:
        # Each round trip records the previous batch and claims the next one.
        nonlocal batches
        done = 0
        outcomes: list[Outcome] = []
        outcomes_now: datetime | None = None
        while True:
            now = rt.now()
            limit = batch_size if max_batches is None or batches < max_batches else 0
            jobs = await db.run(
                finish_and_claim,
                outcomes,
                outcomes_now,
                limit,
                uuid.uuid4(),
                now,
                lease_seconds,
                enrollment_id,
            )
            for o in outcomes:
                counts[o.kind] += 1
                done += 1
                if o.kind == "failed":
                    log.warning("execution %s failed: %s", o.job.execution.id, o.error_message)
                if on_outcome is not None:
                    on_outcome(o)
            if not jobs:
                return done
            batches += 1
            outcomes, outcomes_now = await run_jobs(jobs, now), now

    # Repeat until a round claims nothing: a lane that stopped early may have missed work another
    # lane's batch made due.
    while max_batches is None or batches < max_batches:
        if sum(await asyncio.gather(*(lane() for _ in range(max(1, lanes))))) == 0:
            break
    return _summary(counts)


class Listener:
    """LISTEN on the schema's channel with a dedicated async psycopg connection."""

    def __init__(self, rt: Any, wake: asyncio.Event) -> None:
        self.rt = rt
        self.wake = wake
        self.task: asyncio.Task[None] | None = None

    async def _listen(self) -> None:
        import psycopg
        from sqlalchemy.engine import make_url

        from dripdrop.engine.notify import channel_name

        url = make_url(self.rt.database_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f'LISTEN "{channel_name(self.rt.schema)}"')
                    self.wake.set()  # catch up on anything missed while disconnected
                    async for _ in conn.notifies():
                        self.wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect; polling keeps us correct meanwhile
                log.warning("LISTEN connection lost (%s); reconnecting", exc)
                await asyncio.sleep(1.0)

    def start(self) -> None:
        self.task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


async def work(
    rt: Any,
    db: Any,
    services: Any,
    stop: asyncio.Event,
    *,
    concurrency: int = 10,
    batch_size: int = 100,
    poll_interval: float = 5.0,
    grace: float = 30.0,
    listen: bool = True,
    lease_seconds: float = LEASE_SECONDS,
) -> RunSummary:
    """The worker loop. Returns what it did when ``stop`` is set (after in-flight work ends)."""
    counts: Counter[str] = Counter()
    wake = asyncio.Event()
    listener = Listener(rt, wake) if listen else None
    if listener:
        listener.start()
    in_flight: dict[asyncio.Task[list[Outcome]], tuple[uuid.UUID, list[Job]]] = {}
    busy = 0

    def done(task: asyncio.Task[list[Outcome]]) -> None:
        nonlocal busy
        _, jobs = in_flight.pop(task)
        busy -= len(jobs)
        if not task.cancelled() and task.exception() is None:
            for o in task.result():
                counts[o.kind] += 1
        elif not task.cancelled():
            log.error("batch failed: %r", task.exception())
        wake.set()

    try:
        while not stop.is_set():
            free = min(batch_size, concurrency - busy)
            if free > 0:
                now = rt.now()
                token = uuid.uuid4()
                try:
                    jobs = await db.run(claim_jobs, free, token, now, lease_seconds)
                except Exception as exc:  # database down: wait and retry, never exit
                    log.error("claim failed: %s", exc)
                    jobs = []
                    await asyncio.sleep(1.0)
                if jobs:
                    busy += len(jobs)
                    task = asyncio.create_task(run_batch(rt, db, services, jobs, now))
                    in_flight[task] = (token, jobs)
                    task.add_done_callback(done)
                    continue
            timeout = poll_interval
            if free > 0:
                with contextlib.suppress(Exception):
                    nxt = await db.run(next_due_at)
                    if nxt is not None:
                        timeout = max(0.0, min(poll_interval, (nxt - rt.now()).total_seconds()))
            wake.clear()
            stopper = asyncio.ensure_future(stop.wait())
            waker = asyncio.ensure_future(wake.wait())
            await asyncio.wait(
                {stopper, waker}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            stopper.cancel()
            waker.cancel()
    finally:
        if listener:
            await listener.stop()
        if in_flight:
            _, pending = await asyncio.wait(list(in_flight), timeout=grace)
            for task in pending:  # give unfinished claims back so another worker runs them
                token, jobs = in_flight.get(task, (None, []))
                task.cancel()
                if token:
                    with contextlib.suppress(Exception):
                        await db.run(release_jobs, token, [j.execution.id for j in jobs])
    return _summary(counts)
