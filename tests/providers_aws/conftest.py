"""Fixtures for the AWS provider tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    """A plain async client, as the worker's delivery context would hold."""
    async with httpx2.AsyncClient() as client:
        yield client
