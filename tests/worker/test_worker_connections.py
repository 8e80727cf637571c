"""Worker connections: named in pg_stat_activity, asynchronous commit by default, and a WAL
flush per transaction only when outcomes must be durable."""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any

from sqlalchemy import text
from worker_support import enroll_n, one_step_sequence

from dripdrop.engine.process import Outcome
from dripdrop.testing import TestEnv
from dripdrop.worker.batch import finish_and_claim


def _setting(conn: Any) -> str:
    return conn.execute(text("SHOW synchronous_commit")).scalar()


def test_worker_connections_commit_asynchronously_and_name_themselves(dd: Any) -> None:
    rt = dd.runtime
    with rt.worker_engine.begin() as conn:
        assert _setting(conn) == "off"
        name = conn.execute(text("SELECT current_setting('application_name')")).scalar()
        assert name == f"dripdrop worker {dd.schema}"[:63]
    with rt.engine.begin() as conn:  # the application's own connections are left alone
        assert _setting(conn) == "on"


def test_worker_connections_read_times_in_utc(dd: Any) -> None:
    """Whatever the server's zone, the worker gets datetimes in ``timezone.utc`` (the fast
    path of its time arithmetic), and they are the same instants."""
    rt = dd.runtime
    query = text("SELECT CAST('2026-03-29 01:30:00+00' AS timestamptz)")
    with rt.engine.begin() as conn:
        conn.execute(text("SET LOCAL timezone = 'Europe/Paris'"))
        there = conn.execute(query).scalar()
    with rt.worker_engine.begin() as conn:
        assert conn.execute(text("SHOW timezone")).scalar() == "UTC"
        here = conn.execute(query).scalar()
    assert here.tzinfo is UTC
    assert there.tzinfo is not UTC and here == there


def test_durable_outcomes_wait_for_the_flush_only_when_recording(
    database_url: str, clock: Any
) -> None:
    env = TestEnv(database_url, clock=clock, durable_outcomes=True)
    try:
        dd = env.dd
        one_step_sequence(dd)
        enroll_n(dd, 3)
        rt = dd.runtime
        seen: list[str] = []

        def claim_then_record(outcomes: list[Any]) -> list[Any]:
            with rt.worker_engine.begin() as conn:
                _, jobs = finish_and_claim(rt, conn, outcomes, 10, uuid.uuid4(), rt.now(), 60)
                seen.append(_setting(conn))
            return jobs

        jobs = claim_then_record([])
        assert len(jobs) == 3
        outcomes = [Outcome(j, "sent", "sent", executed_at=rt.now()) for j in jobs]
        claim_then_record(outcomes)
        # A claim alone commits asynchronously; a transaction that records outcomes flushes.
        assert seen == ["off", "on"]
        assert dd.list_executions(jobs[0].enrollment.id)[0].state == "sent"
    finally:
        env.close()
