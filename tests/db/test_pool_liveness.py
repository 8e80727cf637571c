"""Pooled connections are checked before use without a round trip each time: a connection the
server ended (restart, pg_terminate_backend) is replaced, and the call succeeds."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from sqlalchemy import text

from dripdrop import DripDrop
from dripdrop.db import engine as engine_module


def _admin_url(dd: DripDrop) -> str:
    url = dd.runtime.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _pool_pids(dd: DripDrop, n: int) -> set[int]:
    """Check out ``n`` connections at once (so the pool holds n), return their backend pids."""
    pids: set[int] = set()
    barrier = threading.Barrier(n)

    def take() -> None:
        with dd.runtime.engine.connect() as conn:
            pids.add(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
            barrier.wait(timeout=10)

    threads = [threading.Thread(target=take) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return pids


def _terminate(dd: DripDrop, pids: set[int]) -> None:
    with psycopg.connect(_admin_url(dd), autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # wait until they are gone, so the next checkout meets dead connections
        for _ in range(100):
            left = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),)
            ).fetchone()
            if left and left[0] == 0:
                break


def test_terminated_pool_connections_are_replaced_on_checkout(dd: DripDrop) -> None:
    dd.create_sequence(name="Alive", key="alive")
    pids = _pool_pids(dd, 4)
    assert len(pids) == 4
    _terminate(dd, pids)
    for _ in range(8):  # every pooled connection is dead: each checkout must notice
        assert dd.get_sequence("alive").key == "alive"
    assert not (_pool_pids(dd, 4) & pids)


def test_a_long_idle_connection_is_pinged(dd: DripDrop, monkeypatch: Any) -> None:
    """Past PING_AFTER_IDLE the socket check is not trusted alone: a round trip decides."""
    pings: list[Any] = []
    dialect = dd.runtime.engine.dialect
    real = dialect.do_ping
    monkeypatch.setattr(dialect, "do_ping", lambda c: pings.append(c) or real(c))
    dd.list_sequences()
    assert pings == []  # just used: no round trip
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE", 0.0)
    dd.list_sequences()
    assert len(pings) == 1
