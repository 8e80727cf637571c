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
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from dripdrop.engine.process import Job, Outcome, released_outcome, run_job, run_job_within
from dripdrop.observability import instrument, tracing
from dripdrop.ops.sidecar import PRUNE_INTERVAL, Duties
from dripdrop.records import RunSummary
from dripdrop.worker import eager
from dripdrop.worker.batch import (
    Recorded,
    claim_jobs,
    connection_lost,
    finish_and_claim,
    idle_timeout,
    record_one_by_one,
    release_jobs,
    renew_leases,
)
from dripdrop.worker.loop_tuning import loop_tuning
from dripdrop.worker.sizing import BATCH_SIZE, lane_sizes
from dripdrop.worker.slots import Slots

log = logging.getLogger("dripdrop.worker")

# A claim's lease. In-flight executions renew it every third of it (the heartbeat), so only a
# worker that died (or lost the database) lets it run out: its work is claimable again this long
# after, and a slow delivery never is.
LEASE_SECONDS = 30.0
# Outcomes of a batch that is still running are written at least this often (seconds): a worker
# killed mid-batch re-sends at most what finished in its last moments, never the whole batch.
FLUSH_INTERVAL = 0.1
# After the grace period of a stop, how long lanes get to record what finished.
SHUTDOWN_RECORD_SECONDS = 10.0
# A lane that failed (an error other than a lost connection) is started again this much later.
LANE_RESTART_DELAY = 1.0


def _ids(job: Job) -> dict[str, str]:
    """A job's ids as structured log fields."""
    return {"execution_id": job.execution.id_text, "enrollment_id": job.enrollment.id_text}


def _summary(counts: Counter[str]) -> RunSummary:
    return RunSummary(
        sent=counts["sent"],
        skipped=counts["skipped"],
        failed=counts["failed"],
        retried=counts["retried"],
        deferred=counts["deferred"],
    )


def _by_claim(jobs: Iterable[Job]) -> dict[uuid.UUID, list[str]]:
    """Execution ids (text) by the claim (lease token) they belong to."""
    claims: dict[uuid.UUID, list[str]] = {}
    for job in jobs:
        claims.setdefault(job.token, []).append(job.execution.id_text)
    return claims


async def trace_links(db: Any, jobs: list[Job]) -> dict[str, str | None]:
    """The traceparents the jobs' enrollments were started under (their spans link to them)."""
    try:
        ids = list({j.enrollment.id_text for j in jobs})
        return await db.run(tracing.trace_parents, ids)
    except Exception as exc:  # tracing never stops a delivery: spans go without links
        log.warning("could not read the enrollments' trace links: %s", type(exc).__name__)
        return {}


class Lane:
    """One claim → run → record loop; ``run`` ends when a claim finds nothing.

    A batch's deliveries that may wait (hooks, the network) run as tasks; their outcomes are
    written as they finish (at most every FLUSH_INTERVAL), the rest with the next claim. While
    any are in flight a heartbeat renews their lease. ``abandon`` (end of a stop's grace)
    cancels the deliveries still running: what finished is recorded, the rest given back.
    """

    def __init__(
        self,
        rt: Any,
        db: Any,
        services: Any,
        *,
        limit: Callable[[], int],
        counts: Counter[str],
        slots: Slots | None = None,
        enrollment_id: uuid.UUID | None = None,
        on_outcome: Callable[[Outcome], Any] | None = None,
        lease_seconds: float = LEASE_SECONDS,
        ride_out_outages: bool = False,
    ) -> None:
        self.rt, self.db, self.services = rt, db, services
        self.limit = limit
        self.counts = counts
        self.slots = slots
        self.enrollment_id = enrollment_id
        self.on_outcome = on_outcome
        self.lease_seconds = lease_seconds
        self.ride_out_outages = ride_out_outages
        self.running: dict[asyncio.Future[Outcome], Job] = {}  # deliveries in flight
        self.unrecorded: list[Outcome] = []  # finished, not written yet
        self.done = 0  # outcomes written
        self.claimed = 0  # executions claimed
        self._give_up_at: float | None = None  # set by abandon()
        # Enrollment id → traceparent of its enroll, per batch, while tracing is on.
        self._links: dict[str, str | None] | None = None

    # -- the loop ------------------------------------------------------------------------------

    async def run(self) -> int:
        """Claim, run and record until a claim finds nothing; returns how many it claimed."""
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            while jobs := await self._record(claim=True):
                self.claimed += len(jobs)
                await self._run_batch(jobs)
            await self._record_rest()
        finally:
            heartbeat.cancel()
        return self.claimed

    def abandon(self) -> None:
        """Stop waiting for the deliveries in flight: they are given back (released) and run
        again elsewhere under the same idempotency key; finished outcomes are still recorded."""
        self._give_up_at = time.monotonic() + SHUTDOWN_RECORD_SECONDS
        for task in self.running:
            task.cancel()

    async def _run_batch(self, jobs: list[Job]) -> None:
        services = self.services
        now = jobs[0].now
        assert now is not None
        self._links = await trace_links(self.db, jobs) if tracing.enabled() else None
        tasks: dict[asyncio.Future[Outcome], Job] = {}
        inline: list[Job] = []
        waiting: list[Job] = []  # in order: the fence confirms the next ones ahead (fence.py)
        for job in jobs:
            if eager.runs_in_process(job):
                inline.append(job)
            else:
                job.batch, job.position = waiting, len(waiting)
                waiting.append(job)
                tasks[asyncio.ensure_future(self._run_waiting(job))] = job
        self.running = dict(tasks)
        # Finished tasks are handed over by their done-callbacks: asyncio.wait over the whole
        # batch would walk every pending task at each completion (500 tasks run 10 at a time:
        # a quarter of a million callback changes per batch).
        finished: list[asyncio.Future[Outcome]] = []
        wake = asyncio.Event()

        def on_done(task: asyncio.Future[Outcome]) -> None:
            finished.append(task)
            wake.set()

        for task in tasks:
            task.add_done_callback(on_done)
        try:
            for job in inline:  # they finish without waiting: a Task each would only cost time
                if self._links is None:
                    self.unrecorded.append(await run_job(job, services, now))
                else:
                    outcome = await tracing.run_in_span(run_job, job, self._links, services, now)
                    self.unrecorded.append(outcome)
            flushed = time.monotonic()
            while tasks:
                if not finished:
                    timeout = None
                    if self.unrecorded:
                        timeout = max(0.0, flushed + FLUSH_INTERVAL - time.monotonic())
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(timeout):
                            await wake.wait()
                wake.clear()
                done, finished[:] = list(finished), []
                for task in done:
                    self.unrecorded.append(self._outcome_of(task, tasks.pop(task)))
                    self.running.pop(task, None)
                if tasks and self.unrecorded and time.monotonic() - flushed >= FLUSH_INTERVAL:
                    await self._record(claim=False)
                    flushed = time.monotonic()
        finally:
            for task in tasks:
                task.cancel()
            self.running = {}
            for job in waiting:  # no cycles (job → batch → job) left for the collector
                job.batch = None

    async def _run_waiting(self, job: Job) -> Outcome:
        if self._links is not None:
            return await tracing.run_in_span(self._run_waiting_untraced, job, self._links)
        return await self._run_waiting_untraced(job)

    async def _run_waiting_untraced(self, job: Job) -> Outcome:
        services, now = self.services, job.now
        if self.slots is None:
            return await run_job_within(job, services, now, services.execution_timeout)
        ticket = job.ticket = await self.slots.ticket()
        try:
            return await run_job_within(job, services, now, services.execution_timeout)
        finally:
            ticket.leave_preparing()

    @staticmethod
    def _outcome_of(task: asyncio.Future[Outcome], job: Job) -> Outcome:
        if task.cancelled():
            return released_outcome(job)
        exc = task.exception()
        if exc is not None:  # run_job never raises: a bug; the execution runs again later
            log.error(
                "execution %s crashed: %s",
                job.execution.id,
                type(exc).__name__,
                extra=_ids(job),
            )
            return released_outcome(job)
        return task.result()

    # -- the database --------------------------------------------------------------------------

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``db.run``, riding out a lost connection (when the lane may): what it carries is kept
        and written once the database is back. Until then its executions stay leased."""
        while True:
            try:
                return await self.db.run(fn, *args)
            except Exception as exc:
                if not (self.ride_out_outages and connection_lost(exc)):
                    raise
                if self._give_up_at is not None and time.monotonic() > self._give_up_at:
                    raise
                log.error("database unreachable (%s); retrying in 1 s", exc)
                await asyncio.sleep(1.0)

    async def _record(self, *, claim: bool) -> list[Job]:
        """Write the finished outcomes; with ``claim``, claim the next batch in the same
        transaction. Released executions are given back."""
        outcomes, self.unrecorded = self.unrecorded, []
        released = [o for o in outcomes if o.kind == "released"]
        if released:
            outcomes = [o for o in outcomes if o.kind != "released"]
        limit = self.limit() if claim else 0
        now, token = self.rt.now(), uuid.uuid4()
        args = (limit, token, now, self.lease_seconds, self.enrollment_id)
        try:
            recorded, jobs = await self._db(finish_and_claim, outcomes, *args)
        except Exception as exc:
            if connection_lost(exc):  # the lane ends; the leases run out and all runs again
                self.unrecorded = outcomes + released + self.unrecorded
                raise
            # A statement that fails the same way every time: one outcome it cannot store must
            # not keep the others from being written (and their messages from going out again).
            log.error(
                "recording %d outcome(s) failed (%s); one by one", len(outcomes), _headline(exc)
            )
            recorded = await self._db(record_one_by_one, outcomes) if outcomes else Recorded()
            jobs = await self._db(claim_jobs, *args) if limit > 0 else []
        self._count(outcomes, recorded)
        if jobs and instrument.metrics.ENABLED and not self.services.dry_run:
            instrument.observe_claim(self.rt.schema, jobs, now)
        self.unrecorded = recorded.waiting + self.unrecorded
        if released:
            await self._release(released)
        return jobs

    async def _record_rest(self) -> None:
        """Outcomes whose enrollment another transaction held: try again until written."""
        delay = 0.02
        while self.unrecorded:
            if self._give_up_at is not None and time.monotonic() > self._give_up_at:
                log.error("%d outcome(s) left unrecorded at stop", len(self.unrecorded))
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            await self._record(claim=False)

    async def _release(self, outcomes: list[Outcome]) -> None:
        for token, ids in _by_claim(o.job for o in outcomes).items():
            try:
                await self._db(release_jobs, token, ids)
            except Exception as exc:  # their leases run out instead
                log.warning("could not give back %d execution(s): %s", len(ids), exc)

    async def _heartbeat(self) -> None:
        """Renew the leases of executions in flight (and finished ones not yet written)."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            claims = _by_claim([*self.running.values(), *(o.job for o in self.unrecorded)])
            if not claims:
                continue
            try:
                await self.db.run(renew_leases, claims, self.lease_seconds)
            except Exception as exc:  # a later beat may get through; else the lease runs out
                log.warning("renewing leases failed: %s", exc)

    def _count(self, outcomes: list[Outcome], recorded: Recorded) -> None:
        written = recorded.written
        tally = None if self.services.dry_run else instrument.new_tally()  # not simulations
        for o in outcomes:
            live = written.get(o.job.execution.id)
            if live is None:  # the lease was lost (another worker has it), or not yet written
                continue
            kind = o.kind if live else ("sent" if o.kind == "sent" else "")
            if kind not in ("sent", "skipped", "failed", "retried", "deferred"):
                continue
            self.counts[kind] += 1
            self.done += 1
            if tally is not None:
                tally[instrument.outcome_key(o, kind)] += 1
            if kind == "failed":
                # Not the error text: it may quote a provider's answer or a rendered field.
                log.warning(
                    "execution %s failed (its error_message says why)",
                    o.job.execution.id,
                    extra={**_ids(o.job), "outcome": "failed"},
                )
            if self.on_outcome is not None:
                self.on_outcome(o)
        if tally:
            instrument.metrics.record_outcomes(self.rt.schema, tally)


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
    slots = Slots(concurrency)
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
            slots=slots,
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

        from dripdrop.engine.notify import channel_name
        from dripdrop.worker.db import worker_dsn

        dsn = worker_dsn(self.rt)
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


def _headline(exc: BaseException) -> str:
    """The database error's first line: PostgreSQL's DETAIL lines ("Failing row contains …")
    quote the row, rendered messages and recipients included, which a log must not."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    state = getattr(orig, "sqlstate", None)
    head = lines[0][:300] if lines else ""
    return f"{type(orig).__name__}{f' {state}' if state else ''}: {head}"


async def _log_problems(db: Any) -> None:
    """Say at start which active versions cannot deliver (their sends would all fail)."""
    from dripdrop.definitions.readiness import log_active_problems

    try:
        await db.run(log_active_problems)
    except Exception as exc:  # a check must never keep the worker from starting
        log.warning("could not check the active versions: %s", exc)


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
    retention: timedelta | None = None,
    archive: bool = False,
    prune_interval: float = PRUNE_INTERVAL,
    health_file: str | None = None,
    health_port: int | None = None,
    health_host: str = "127.0.0.1",
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
        while True:
            seen = wakeups
            await lane.run()
            # A wake-up during the last claim may be for work that claim could not see yet.
            if wakeups == seen or stop.is_set():
                return lane.done

    failed_at = -LANE_RESTART_DELAY  # when a lane last failed (monotonic)

    def lane_ended(task: asyncio.Task[int]) -> None:
        nonlocal failed_at
        lanes.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("worker lane failed: %r", task.exception())
            failed_at = time.monotonic()

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
                ride_out_outages=True,
            )
            task = asyncio.create_task(run_lane(lane))
            lanes[task] = (slot, lane)
            task.add_done_callback(lane_ended)

    await _log_problems(db)
    # Gauges, retention (``retention``: remove history older than this), the health file and the
    # health port (``health_port``: GET /health and /ready on ``health_host``, ops/health.py).
    duties = Duties(
        rt,
        in_flight=lambda: sum(len(ln.running) + len(ln.unrecorded) for _, ln in lanes.values()),
        retention=retention,
        archive=archive,
        prune_interval=prune_interval,
        health_file=health_file,
        health_port=health_port,
        health_host=health_host,
    )
    duties.start()
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
                    # A lane that just failed would fail again at once: not in a tight loop.
                    timeout = max(timeout, failed_at + LANE_RESTART_DELAY - time.monotonic())
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
            await duties.stop()
            if listener:
                await listener.stop()
            if lanes:
                running = dict(lanes)
                _, pending = await asyncio.wait(list(running), timeout=grace)
                if pending:  # the grace is over: record what finished, give the rest back
                    for task in pending:
                        running[task][1].abandon()
                    _, pending = await asyncio.wait(pending, timeout=SHUTDOWN_RECORD_SECONDS)
                for task in pending:  # the database is away: their leases will run out
                    task.cancel()
    return _summary(counts)
