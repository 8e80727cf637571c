"""Fixtures of the chaos tests: a webhook sink process, real worker processes, and a private
PostgreSQL server. Every process a test starts is stopped at teardown, also when it fails."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from chaos_support import PgInstance, SinkProcess, WorkerPool

from dripdrop.config import system_clock
from dripdrop.crypto import generate_key
from dripdrop.testing import TestEnv


@pytest.fixture
def encryption_key() -> str:
    """Shared by the test's DripDrop (which stores the adapter's secret) and its workers."""
    return generate_key()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[WorkerPool]:
    pool = WorkerPool(tmp_path / "workers")
    try:
        yield pool
    finally:
        pool.stop_all()


def _real_time_env(url: str, encryption_key: str) -> TestEnv:
    env = TestEnv(url, encryption_key=encryption_key, allow_private_network=True)
    # Worker processes use the real clock: enroll "now" in real time.
    env.dd.runtime.clock = system_clock
    return env


@pytest.fixture
def chaos_env(database_url: str, encryption_key: str, workers: WorkerPool) -> Iterator[TestEnv]:
    """A DripDrop on a fresh schema of the test database, on the real clock."""
    env = _real_time_env(database_url, encryption_key)
    try:
        yield env
    finally:
        workers.stop_all()  # before the schema is dropped under them
        env.close()


@pytest.fixture
def start_sink(tmp_path: Path) -> Iterator[Callable[..., SinkProcess]]:
    """``start_sink(delay=0.0, slow_every=0, slow_delay=0.0)``: a sink process answering after
    ``delay`` seconds, or ``slow_delay`` for subscribers that are multiples of ``slow_every``."""
    sinks: list[SinkProcess] = []

    def start(delay: float = 0.0, slow_every: int = 0, slow_delay: float = 0.0) -> SinkProcess:
        sink = SinkProcess(tmp_path / f"sink-{len(sinks) + 1}", delay, slow_every, slow_delay)
        sinks.append(sink)
        return sink

    try:
        yield start
    finally:
        for sink in sinks:
            sink.stop()


@pytest.fixture
def pg_instance(tmp_path: Path) -> Iterator[PgInstance]:
    """A private PostgreSQL server, so a test may restart it."""
    pg = PgInstance(tmp_path)
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()


@pytest.fixture
def pg_env(pg_instance: PgInstance, encryption_key: str, workers: WorkerPool) -> Iterator[TestEnv]:
    """A DripDrop on the private server, on the real clock."""
    env = _real_time_env(pg_instance.url, encryption_key)
    try:
        yield env
    finally:
        workers.stop_all()
        env.close(drop=False)  # the whole server goes away
