"""pytest plugin (auto-loaded): the ``dripdrop_env`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dripdrop.testing.env import TestEnv


@pytest.fixture
def dripdrop_env() -> Iterator[TestEnv]:
    """A DripDrop on a fresh schema of ``DRIPDROP_TEST_DATABASE_URL`` (or the embedded database)
    with a FakeClock; dropped after the test."""
    env = TestEnv()
    try:
        yield env
    finally:
        env.close()
