"""How the async worker reaches the database: one ``run(fn, *args)`` for every face.

``fn(runtime, connection, *args)`` runs in its own transaction. The sync facade runs it in a
thread on the sync engine; the async facade through ``AsyncConnection.run_sync``; a simulation on
one connection whose outer transaction is rolled back at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from dripdrop.db.engine import schema_options


def worker_dsn(rt: Any) -> str:
    """The database URL as a libpq connection string, for the worker's own psycopg connections
    (LISTEN, the fence)."""
    from sqlalchemy.engine import make_url

    url = make_url(rt.database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class Db(Protocol):
    async def run(self, fn: Callable[..., Any], *args: Any) -> Any: ...


class ThreadDb:
    """Sync engine, calls on threads of its own (keeps the event loop free). The threads are
    the worker's alone — as many as its engine has connections — so user code blocking other
    threads (a hung hook) can never keep it from recording outcomes."""

    pooled = True  # each call takes a pooled connection (see worker/services.py)

    def __init__(self, rt: Any) -> None:
        from dripdrop.runtime import WORKER_MAX_OVERFLOW, WORKER_POOL_SIZE

        self.rt = rt
        self._threads = ThreadPoolExecutor(
            max_workers=WORKER_POOL_SIZE + WORKER_MAX_OVERFLOW, thread_name_prefix="dripdrop-db"
        )

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self.rt.worker_engine.begin() as conn:
            return fn(self.rt, conn, *args)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._call, fn, *args)

    def _call_autocommit(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self.rt.worker_engine.connect() as conn:
            return fn(self.rt, conn.execution_options(isolation_level="AUTOCOMMIT"), *args)

    async def run_autocommit(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn`` with each statement its own transaction: a hot row (a rate limit's next
        slot) stays locked for one statement, not for a round trip to the commit."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._call_autocommit, fn, *args)

    def close(self) -> None:
        # Calls in flight finish (their transactions must not be cut); none are queued by then.
        self._threads.shutdown(wait=True)


class AsyncDb:
    """Async engine (psycopg async), the shared logic through run_sync."""

    pooled = True

    def __init__(self, rt: Any, engine: AsyncEngine) -> None:
        self.rt = rt
        self.engine = engine

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        async with self.engine.begin() as conn:
            return await conn.run_sync(
                lambda c: fn(self.rt, c.execution_options(**schema_options(self.rt.schema)), *args)
            )

    async def run_autocommit(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn`` with each statement its own transaction (see ThreadDb.run_autocommit)."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(
                isolation_level="AUTOCOMMIT", **schema_options(self.rt.schema)
            )
            return await conn.run_sync(lambda c: fn(self.rt, c, *args))


class ConnectionDb:
    """Every call on one connection, each in a savepoint (simulations roll the whole back)."""

    def __init__(self, rt: Any, conn: Connection) -> None:
        self.rt = rt
        self.conn = conn

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self.conn.begin_nested():
            return fn(self.rt, self.conn, *args)
