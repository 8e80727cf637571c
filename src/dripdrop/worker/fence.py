"""The fence: a delivery that had to wait (hooks, an external template, a slow lane) confirms its
claim just before the provider gets the message.

Between a claim and a delivery, an enrollment may be paused, unenrolled, restarted or exited, and
a lease may run out and pass to another worker, and the recipient may be suppressed. Deliveries
reaching the fence at about the same time share one query (``worker/queries.py: FENCE``, with
the suppressions of their recipients when they have any: ``engine/suppression.py:
fence_query``), so a batch of webhooks costs a round trip or two, not one each. In-process
deliveries run right after their claim and skip it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Container
from typing import Any, NamedTuple

from dripdrop.engine import suppression
from dripdrop.engine.process import Job, Outcome, _suppressed, held_outcome, released_outcome
from dripdrop.engine.suppression import PENDING
from dripdrop.worker.batch import _fetch
from dripdrop.worker.db import worker_dsn
from dripdrop.worker.queries import FENCE, raw_sql
from dripdrop.worker.slots import FENCE_FRESH

log = logging.getLogger("dripdrop.worker")
#: After its own connection failed, the fence uses the worker's connections this long.
DIRECT_RETRY_SECONDS = 30.0
#: How many of the executions next in line a fence query confirms besides those waiting, and
#: how old such an answer may be when its execution reaches the fence (half of FENCE_FRESH,
#: the most a confirmation may age before its request goes out: the rest is for the wait for
#: a sending slot).
LOOKAHEAD = 32
AHEAD_FRESH = FENCE_FRESH / 2


class Ahead(NamedTuple):
    """An answer taken ahead for an execution (``Job.ahead``): when its query was asked
    (monotonic), the lease token it found, the suppression reason, the recipient it checked."""

    asked_at: float
    token: Any
    reason: str | None
    key: str | None


class Fence:
    def __init__(self, db: Any, direct: DirectConnection | None = None) -> None:
        self.db = db
        self.direct = direct
        self._direct_after = 0.0  # after a failure, the fence's own connection rests a while
        self._waiting: dict[str, tuple[Job, asyncio.Future[Outcome | None]]] = {}
        self._flushing: asyncio.Task[None] | None = None

    async def check(self, job: Job) -> Outcome | None:
        """None when the delivery may go ahead; else the outcome to record instead: held (the
        enrollment was paused or ended, or the claim is no longer ours — the record then writes
        nothing), skipped (the recipient was suppressed since the claim), or released when the
        database could not say. ``job.confirmed_at`` says when the answer was asked."""
        ahead, job.ahead = job.ahead, None
        # Taken with an earlier query, for this recipient, recently enough: that answer.
        if (
            ahead is not None
            and time.monotonic() - ahead.asked_at <= AHEAD_FRESH
            and ahead.key == job.recipient_key
        ):
            job.confirmed_at = ahead.asked_at
            return self._verdict(job, ahead.token, ahead.reason)
        future: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        self._waiting[job.execution.id_text] = (job, future)
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # let the other deliveries of this moment reach the fence
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                jobs = [job for job, _ in batch.values()]
                ahead = upcoming(jobs[-1], batch)
                asked_at = time.monotonic()
                try:
                    tokens, reasons = await self._confirm(jobs + ahead)
                except Exception as exc:
                    log.warning("could not confirm %d claim(s) (%s): released", len(batch), exc)
                    for job, future in batch.values():
                        if not future.done():
                            future.set_result(released_outcome(job))
                    continue
                answers = zip(batch.items(), reasons[: len(jobs)], strict=True)
                for (id_text, (job, future)), reason in answers:
                    if not future.done():
                        job.confirmed_at = asked_at
                        future.set_result(self._verdict(job, tokens.get(id_text), reason))
                for job, reason in zip(ahead, reasons[len(jobs) :], strict=True):
                    job.ahead = Ahead(
                        asked_at, tokens.get(job.execution.id_text), reason, job.recipient_key
                    )
        finally:
            self._flushing = None

    def _verdict(self, job: Job, token: Any, reason: str | None) -> Outcome | None:
        if token != job.token:
            return held_outcome(job, "fenced")
        if reason is not None:
            now = job.now or self.db.rt.now()
            return _suppressed(job, now, reason, job.recipient_key)
        return None

    async def _confirm(self, jobs: list[Job]) -> tuple[dict[str, Any], list[str | None]]:
        if self.direct is not None and time.monotonic() >= self._direct_after:
            try:
                return await self.direct.confirm(jobs)
            except Exception as exc:  # the worker's own connections may still answer
                log.warning(
                    "fence connection failed (%s); through the worker's for %g s",
                    exc,
                    DIRECT_RETRY_SECONDS,
                )
                self._direct_after = time.monotonic() + DIRECT_RETRY_SECONDS
        return await self.db.run(confirm, jobs)

    async def aclose(self) -> None:
        if self.direct is not None:
            await self.direct.aclose()


def upcoming(last: Job, waiting: Container[str]) -> list[Job]:
    """Up to LOOKAHEAD executions that follow ``last`` (the latest to reach the fence: the
    furthest along its batch, as a rule) in its batch, are not ``waiting`` and have not reached
    the fence: confirmed by the same query, they find their answer ready (if it is still fresh)
    instead of a query of their own. Not those whose recipient only rendering tells (their
    suppression could not be checked yet)."""
    found: list[Job] = []
    if last.batch is None:
        return found
    # An answer taken ahead that is half-way to stale is taken again: left alone, it would
    # expire on the way and its execution would need a query of its own.
    renew_before = time.monotonic() - AHEAD_FRESH / 2
    for job in last.batch[last.position + 1 : last.position + 1 + 2 * LOOKAHEAD]:
        id_text = job.execution.id_text
        if (
            job.confirmed_at is None
            and (job.ahead is None or job.ahead.asked_at < renew_before)
            and job.recipient_key is not PENDING
            and id_text not in waiting
        ):
            found.append(job)
            if len(found) == LOOKAHEAD:
                break
    return found


def statement(jobs: list[Job]) -> tuple[str, dict[str, Any], bool]:
    """A fence batch's one statement: the lease token of each execution that may still be
    delivered (``FENCE``) and, when some job has a recipient to check, the suppressions of the
    recipients (``engine/suppression.py``: the same query and rules as the claim's check)."""
    ids = ",".join(job.execution.id_text for job in jobs)
    params = suppression.fence_params(jobs)
    if params is None:  # webhooks, topics: nobody to suppress, the fence's query alone
        return FENCE, {"ids": ids}, False
    params["ids"] = ids
    return suppression.fence_query(FENCE), params, True


def verdicts(
    jobs: list[Job], rows: list[Any], suppressions: bool
) -> tuple[dict[str, Any], list[str | None]]:
    """``statement``'s rows read: lease tokens by execution id, and per job the reason its
    recipient is now suppressed (None: it is not)."""
    if not suppressions:
        return {r.id: r.lease_token for r in rows}, [None] * len(jobs)
    tokens = {r.id: r.lease_token for r in rows if r.id is not None}
    found = suppression.found_by_target(r[2:] for r in rows if r.id is None)
    return tokens, suppression.verdicts(jobs, found)


def confirm(rt: Any, conn: Any, jobs: list[Job]) -> tuple[dict[str, Any], list[str | None]]:
    """The fence's statement on a worker connection (the path when there is no direct one)."""
    sql, params, suppressions = statement(jobs)
    return verdicts(jobs, _fetch(conn, sql, rt.schema, params), suppressions)


class DirectConnection:
    """The fence's own async psycopg connection (autocommit): a fence batch is one round trip
    on the event loop, with no thread hand-off and no SQLAlchemy in the way. The fence sits
    between a delivery's slot and its request, so its latency is paid once per delivery in
    flight (measured at concurrency 10: p50 4.5 ms through a database thread). Opened on first
    use; after an error it is closed and opened again by the next batch."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self._conn: Any = None

    async def confirm(self, jobs: list[Job]) -> tuple[dict[str, Any], list[str | None]]:
        import psycopg
        from psycopg.rows import namedtuple_row

        sql, params, suppressions = statement(jobs)
        try:
            if self._conn is None:
                self._conn = await psycopg.AsyncConnection.connect(
                    worker_dsn(self.rt), autocommit=True, **self.rt.worker_connect_args()
                )
            async with self._conn.cursor(row_factory=namedtuple_row) as cur:
                await cur.execute(raw_sql(sql, self.rt.schema), params)
                rows = await cur.fetchall()
        except BaseException:
            await self.aclose()
            raise
        return verdicts(jobs, rows, suppressions)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
