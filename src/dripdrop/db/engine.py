"""Engines and transactions for one DripDrop instance, in its own schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
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
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("json_deserializer", orjson.loads)  # jsonb columns parse on every claim
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    engine = create_engine(normalize_url(url), **kwargs)
    return engine.execution_options(**schema_options(schema))


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
