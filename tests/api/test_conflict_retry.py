"""Real deadlocks against the facade: in its own transaction it runs the operation again; in a
host's transaction it raises ConflictError (the host's transaction is the one to retry)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, create_engine, text

from dripdrop import AsyncDripDrop, ConflictError
from dripdrop.db.engine import normalize_url

KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


@pytest.fixture
def engine(database_url: str) -> Iterator[Any]:
    """The host application's own engine."""
    e = create_engine(normalize_url(database_url))
    try:
        yield e
    finally:
        e.dispose()


@pytest.fixture
def versions(dd) -> tuple[Any, Any]:
    """v1 active, v2 a draft: ``activate_version(v2)`` updates v1, then v2."""
    seq = dd.create_sequence(name="Lock", key="lock")
    v1 = dd.create_sequence_version(seq.id, active=True)
    v2 = dd.create_sequence_version(seq.id)
    return v1, v2


def _rename(conn: Connection, schema: str, version: Any, name: str) -> None:
    conn.execute(
        text(f'UPDATE "{schema}".sequence_versions SET name = :n WHERE id = :id'),
        {"n": name, "id": version.id},
    )


def _wait_until_blocked(engine: Any, schema: str, timeout: float = 10.0) -> None:
    """Until a statement on ``schema`` waits for a row lock."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%' || :s || '%'"
                ),
                {"s": schema},
            ).scalar()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("nothing waited for a lock")


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = call()
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def _deadlock_the_facade(engine: Any, schema: str, versions: Any, call: Callable[[], Any]) -> Any:
    """The host locks v2; the facade's activate_version(v2) locks v1 and waits for v2; the host
    then asks for v1. The facade waited first, so its backend finds the deadlock (the host's
    check is pushed back) and its transaction is the one cancelled."""
    v1, v2 = versions
    with engine.connect() as host:
        host.execute(text("SET deadlock_timeout = '10s'"))
        _rename(host, schema, v2, "host-2")
        thread, result = _in_thread(call)
        _wait_until_blocked(engine, schema)
        _rename(host, schema, v1, "host-1")  # closes the cycle; returns once the facade lost
        host.commit()
    thread.join(30)
    assert not thread.is_alive()
    return result


def _spy_retries(monkeypatch) -> list[int]:
    retries: list[int] = []

    def backoff(attempt: int) -> float:
        retries.append(attempt)
        return 0.01

    monkeypatch.setattr("dripdrop.client._backoff", backoff)
    return retries


def test_own_transaction_is_retried_after_a_deadlock(dd, engine, versions, monkeypatch) -> None:
    retries = _spy_retries(monkeypatch)
    v1, v2 = versions
    result = _deadlock_the_facade(engine, dd.schema, versions, lambda: dd.activate_version(v2.id))
    assert "error" not in result, result.get("error")
    assert retries == [0]  # one deadlock, then the second attempt went through
    assert result["value"].active
    # Both transactions' work is there: the host's names and the facade's activation.
    after = {v.id: (v.name, v.active) for v in dd.list_versions(v1.sequence_id)}
    assert after == {v1.id: ("host-1", False), v2.id: ("host-2", True)}


async def test_async_own_transaction_is_retried_after_a_deadlock(
    env, database_url, engine, versions, monkeypatch
) -> None:
    retries = _spy_retries(monkeypatch)
    add = AsyncDripDrop(database_url, schema=env.schema, clock=env.clock, encryption_key=KEY)
    v1, v2 = versions
    loop = asyncio.get_running_loop()
    try:
        result = await asyncio.to_thread(
            _deadlock_the_facade,
            engine,
            env.schema,
            versions,
            lambda: asyncio.run_coroutine_threadsafe(add.activate_version(v2.id), loop).result(),
        )
        assert "error" not in result, result.get("error")
        assert retries == [0]
        assert (await add.get_active_version(v1.sequence_id)).id == v2.id
    finally:
        await add.close()


def test_conflict_past_the_retries_raises_conflict_error(dd, engine, versions, monkeypatch) -> None:
    monkeypatch.setattr("dripdrop.client.CONFLICT_RETRIES", 0)
    _, v2 = versions
    result = _deadlock_the_facade(engine, dd.schema, versions, lambda: dd.activate_version(v2.id))
    error = result.get("error")
    assert isinstance(error, ConflictError), error
    assert "concurrent transaction" in str(error) and "retried" in str(error)
    assert isinstance(error.__cause__.orig, psycopg.errors.DeadlockDetected)


def test_deadlock_in_the_hosts_transaction_raises_conflict_error(
    dd, engine, versions, monkeypatch
) -> None:
    retries = _spy_retries(monkeypatch)
    v1, v2 = versions
    schema = dd.schema
    with engine.connect() as host, engine.connect() as other:
        other.execute(text("SET deadlock_timeout = '10s'"))  # the host's backend finds it
        _rename(other, schema, v1, "other-1")
        _rename(host, schema, v2, "host-2")
        thread, result = _in_thread(lambda: dd.activate_version(v2.id, connection=host))
        _wait_until_blocked(engine, schema)  # the facade, in the host's transaction, waits on v1
        _rename(other, schema, v2, "other-2")  # closes the cycle
        other.commit()
        thread.join(30)
        host.rollback()
    error = result.get("error")
    assert isinstance(error, ConflictError), error
    assert "roll back the host transaction" in str(error)
    assert isinstance(error.__cause__.orig, psycopg.errors.DeadlockDetected)
    assert retries == []  # never retried inside the host's transaction
    after = {v.id: (v.name, v.active) for v in dd.list_versions(v1.sequence_id)}
    assert after == {v1.id: ("other-1", True), v2.id: ("other-2", False)}


def test_one_shot_iterators_are_not_run_twice() -> None:
    from dripdrop.client import _retryable

    # A generator of enroll_many items is partly consumed by a failed attempt.
    assert not _retryable(("s", (i for i in range(3))), {})
    assert not _retryable(("s",), {"items": iter([])})
    assert _retryable(("s", [{"subscriber": {}}]), {"tenant_key": None})
