"""Engines and transactions for one DripDrop instance, in its own schema."""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def normalize_url(url: str, *, is_async: bool = False) -> str:
    """Point any PostgreSQL URL at psycopg 3 (``postgresql+psycopg://``)."""
    u = make_url(url)
    if (
        u.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg")
        or u.drivername == "postgresql+asyncpg"
    ):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def schema_options(schema: str) -> dict[str, Any]:
    return {"schema_translate_map": {None: schema}}


def make_engine(url: str, schema: str, **kwargs: Any) -> Engine:
    """A sync engine whose unqualified tables resolve to ``schema``.

    Statement parameters (rendered content, recipients, enrollment data) are never put into
    error messages, so a logged database error carries the SQL but no value."""
    kwargs.setdefault("hide_parameters", True)
    kwargs.setdefault("json_deserializer", orjson.loads)  # jsonb columns parse on every claim
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    engine = create_engine(normalize_url(url), **kwargs)
    if not kwargs.get("pool_pre_ping"):
        check_on_checkout(engine)
    return engine.execution_options(**schema_options(schema))


#: A pooled connection idle for longer than this is pinged (one round trip) before it is used.
PING_AFTER_IDLE = 10.0
_IDLE_SINCE = "dripdrop_idle_since"


def check_on_checkout(engine: Engine) -> None:
    """Hand out only live connections, without a round trip for each one (what
    ``pool_pre_ping`` costs: a third of a short transaction's time).

    A connection used within the last :data:`PING_AFTER_IDLE` seconds only has its socket
    looked at: a server that ended the session (restart, ``pg_terminate_backend``, idle
    timeout) sent its goodbye or closed the socket, which makes an idle socket readable. A
    readable or long-idle connection is pinged, and a dead one replaced (the pool retries on
    ``DisconnectionError``)."""

    def connected(dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is not None and time.monotonic() - since < PING_AFTER_IDLE:
            try:
                readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
            except (OSError, ValueError):  # closed: no descriptor any more
                raise DisconnectionError("the connection is closed") from None
            if not readable:
                return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("the connection did not answer a ping") from exc
        if not alive:
            raise DisconnectionError("the connection did not answer a ping")

    event.listen(engine.pool, "connect", connected)
    event.listen(engine.pool, "checkin", checked_in)
    event.listen(engine.pool, "checkout", checked_out)


_ASYNC_COMMIT = "dripdrop_async_commit"


def mark_async_commit(engine: Engine) -> None:
    """Record that ``engine``'s connections commit asynchronously by default (they were opened
    with ``-c synchronous_commit=off``), so transactions need not say so each time."""

    def connected(dbapi_connection: Any, record: Any) -> None:
        record.info[_ASYNC_COMMIT] = True

    event.listen(engine.pool, "connect", connected)


def commits_async(conn: Connection) -> bool:
    """Does this connection commit asynchronously unless told otherwise?"""
    return bool(conn.info.get(_ASYNC_COMMIT))


def make_async_engine(url: str, schema: str, **kwargs: Any) -> AsyncEngine:
    """The asyncio counterpart of :func:`make_engine` (parameters hidden from errors too)."""
    kwargs.setdefault("hide_parameters", True)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("json_deserializer", orjson.loads)
    engine = create_async_engine(normalize_url(url, is_async=True), **kwargs)
    return engine.execution_options(**schema_options(schema))


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as conn:
        yield conn
