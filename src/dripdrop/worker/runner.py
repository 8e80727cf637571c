"""Running executions: ``drain`` (everything due now, for run_due and tests) and ``work`` (the
long-running loop: LISTEN/NOTIFY to wake, polling up to the next due time for correctness,
leases, concurrent deliveries, graceful stop).

Both run *lanes*: a lane claims a batch, runs it, then records its outcomes and claims the next
batch in one transaction, until a claim finds nothing. Two lanes let one batch's database round
trip overlap the other's Python work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from dripdrop.engine.process import Job, Outcome, run_job
from dripdrop.records import RunSummary
from dripdrop.worker.batch import finish_and_claim, idle_timeout, release_jobs
from dripdrop.worker.eager import run_batch_jobs
from dripdrop.worker.loop_tuning import loop_tuning
from dripdrop.worker.sizing import BATCH_SIZE, lane_sizes

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


def _connection_lost(exc: BaseException) -> bool:
    """Is this the database going away (worth retrying), rather than a statement failing?"""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | psycopg.OperationalError)


class Lane:
    """One claim → run → record loop; ``run`` ends when a claim finds nothing. ``claimed`` is
    the batch being run (given back if the worker must stop before it ends)."""

    def __init__(
        self,
        rt: Any,
        db: Any,
        services: Any,
        *,
        limit: Callable[[], int],
        counts: Counter[str],
        semaphore: asyncio.Semaphore | None = None,
        enrollment_id: uuid.UUID | None = None,
        on_outcome: Callable[[Outcome], Any] | None = None,
        lease_seconds: float = LEASE_SECONDS,
        retry_while: Callable[[], bool] | None = None,
    ) -> None:
        self.rt, self.db, self.services = rt, db, services
        self.limit = limit
        self.counts = counts
        self.semaphore = semaphore
        self.enrollment_id = enrollment_id
        self.on_outcome = on_outcome
        self.lease_seconds = lease_seconds
        self.retry_while = retry_while
        self.claimed: tuple[uuid.UUID, list[Job]] | None = None

    async def _run_jobs(self, jobs: list[Job], now: datetime) -> list[Outcome]:
        services, semaphore = self.services, self.semaphore

        def direct(job: Job) -> Awaitable[Outcome]:
            return run_job(job, services, now)

        if semaphore is None:
            return await run_batch_jobs(jobs, direct)

        async def limited(job: Job) -> Outcome:
            async with semaphore:
                return await run_job(job, services, now)

        return await run_batch_jobs(jobs, limited, direct)

    def _count(self, outcomes: list[Outcome]) -> None:
        for o in outcomes:
            self.counts[o.kind] += 1
            if o.kind == "failed":
                log.warning("execution %s failed: %s", o.job.execution.id, o.error_message)
            if self.on_outcome is not None:
                self.on_outcome(o)

    async def run(self) -> int:
        """Claim, run and record until a claim finds nothing; returns the outcomes recorded."""
        done = 0
        outcomes: list[Outcome] = []
        outcomes_now: datetime | None = None
        while True:
            now, token = self.rt.now(), uuid.uuid4()
            try:
                jobs = await self.db.run(
                    finish_and_claim,
                    outcomes,
                    outcomes_now,
                    self.limit(),
                    token,
                    now,
                    self.lease_seconds,
                    self.enrollment_id,
                )
            except Exception as exc:
                # The database is away: keep the outcomes and try again. Until they are written
                # their executions stay leased; after the lease they would simply run again.
                # Any other error would fail the same way again: it ends the lane.
                if not _connection_lost(exc) or self.retry_while is None or not self.retry_while():
                    raise
                log.error("recording or claiming failed (%s); retrying in 1 s", exc)
                await asyncio.sleep(1.0)
                continue
            self._count(outcomes)
            done += len(outcomes)
            if not jobs:
                return done
            self.claimed = (token, jobs)
            outcomes, outcomes_now = await self._run_jobs(jobs, now), now
            self.claimed = None


async def drain(
    rt: Any,
    db: Any,
    services: Any,
    *,
    batch_size: int = BATCH_SIZE,
    concurrency: int = 100,
    max_batches: int | None = None,
    enrollment_id: uuid.UUID | None = None,
    on_outcome: Any = None,
    lanes: int = 2,
    lease_seconds: float = LEASE_SECONDS,
) -> RunSummary:
    """Process everything due at ``clock()``, including work that becomes due meanwhile, in
    ``lanes`` lanes; ``concurrency`` bounds the deliveries running at once."""
    counts: Counter[str] = Counter()
    semaphore = asyncio.Semaphore(concurrency)
    batches = 0

    def limit() -> int:
        nonlocal batches
        if max_batches is not None and batches >= max_batches:
            return 0
        batches += 1
        return batch_size

    def lane() -> Lane:
        return Lane(
            rt,
            db,
            services,
            limit=limit,
            counts=counts,
            semaphore=semaphore,
            enrollment_id=enrollment_id,
            on_outcome=on_outcome,
            lease_seconds=lease_seconds,
        )

    # Repeat until a round claims nothing: a lane that stopped early may have missed work another
    # lane's batch made due.
    with loop_tuning():
        while max_batches is None or batches < max_batches:
            if sum(await asyncio.gather(*(lane().run() for _ in range(max(1, lanes))))) == 0:
                break
    return _summary(counts)


class Listener:
    """LISTEN on the schema's channel with a dedicated async psycopg connection; ``wake`` is
    called on every notification (and after each (re)connection, to catch up)."""

    def __init__(self, rt: Any, wake: Callable[[], None]) -> None:
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
                async with await psycopg.AsyncConnection.connect(
                    dsn, autocommit=True, **self.rt.worker_connect_args()
                ) as conn:
                    await conn.execute(f'LISTEN "{channel_name(self.rt.schema)}"')
                    self.wake()  # catch up on anything missed while disconnected
                    async for _ in conn.notifies():
                        self.wake()
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
    batch_size: int = BATCH_SIZE,
    poll_interval: float = 5.0,
    grace: float = 30.0,
    listen: bool = True,
    lease_seconds: float = LEASE_SECONDS,
) -> RunSummary:
    """The worker loop. Returns what it did when ``stop`` is set (after in-flight work ends).

    Up to ``concurrency`` executions are in flight, in lanes of at most ``batch_size``
    (:func:`lane_sizes`): one lane claims and records while another delivers. A worker never
    claims more than it may run at once, so other workers are not kept from rows it could not
    start yet. Lanes end when nothing is due; a notification (new immediate work) or the poll
    (the next due time, at most ``poll_interval`` away) starts them again.
    """
    counts: Counter[str] = Counter()
    wake = asyncio.Event()
    wakeups = 0  # counts wake-ups, so a lane can tell one came during its last claim

    def poke() -> None:
        nonlocal wakeups
        wakeups += 1
        wake.set()

    sizes = lane_sizes(concurrency, batch_size)
    lanes: dict[asyncio.Task[int], tuple[int, Lane]] = {}  # running lanes: (slot in sizes, lane)

    def limit_of(size: int) -> Callable[[], int]:
        return lambda: 0 if stop.is_set() else size

    async def run_lane(lane: Lane) -> int:
        done = 0
        while True:
            seen = wakeups
            done += await lane.run()
            # A wake-up during the last claim may be for work that claim could not see yet.
            if wakeups == seen or stop.is_set():
                return done

    def lane_ended(task: asyncio.Task[int]) -> None:
        lanes.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("worker lane failed: %r", task.exception())

    def start_lanes() -> None:
        running = {slot for slot, _ in lanes.values()}
        for slot, size in enumerate(sizes):
            if slot in running:
                continue
            lane = Lane(
                rt,
                db,
                services,
                limit=limit_of(size),
                counts=counts,
                lease_seconds=lease_seconds,
                retry_while=lambda: not stop.is_set(),
            )
            task = asyncio.create_task(run_lane(lane))
            lanes[task] = (slot, lane)
            task.add_done_callback(lane_ended)

    listener = Listener(rt, poke) if listen else None
    if listener:
        listener.start()
    stopper = asyncio.ensure_future(stop.wait())
    with loop_tuning():
        try:
            poke()  # look for due work at once
            while not stop.is_set():
                if wake.is_set():
                    wake.clear()
                    start_lanes()
                timeout = poll_interval
                if not lanes:
                    try:
                        timeout = await db.run(idle_timeout, poll_interval)
                    except Exception as exc:  # database down: wait and retry, never exit
                        log.error("polling failed: %s", exc)
                if wake.is_set():
                    continue
                waker = asyncio.ensure_future(wake.wait())
                done, _ = await asyncio.wait(
                    {stopper, waker, *lanes}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                waker.cancel()
                if not done:  # the poll interval passed, or the next due time came
                    poke()
        finally:
            stopper.cancel()
            if listener:
                await listener.stop()
            if lanes:
                _, pending = await asyncio.wait(list(lanes), timeout=grace)
                for task in pending:  # give unfinished claims back so another worker runs them
                    lane = lanes[task][1] if task in lanes else None
                    task.cancel()
                    if lane is not None and lane.claimed is not None:
                        token, jobs = lane.claimed
                        with contextlib.suppress(Exception):
                            await db.run(release_jobs, token, [j.execution.id for j in jobs])
    return _summary(counts)
