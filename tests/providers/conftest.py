"""Fixtures for the provider tests: a real async HTTP client and a closed local port."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx2
import pytest
from pytest_httpserver import HTTPServer

from dripdrop.channels import DeliveryContext
from dripdrop.net import OutboundPolicy, create_http_client


@pytest.fixture(params=["plain", "guarded"])
async def ctx(request: pytest.FixtureRequest) -> AsyncIterator[DeliveryContext]:
    """A delivery context: every provider test runs with a plain client and with the worker's
    guarded client (loopback allow-listed, since the fake APIs listen on 127.0.0.1)."""
    if request.param == "plain":
        client = httpx2.AsyncClient(timeout=5.0)
    else:
        client = create_http_client(OutboundPolicy(allowlist=("127.0.0.1/32",), timeout=5.0))
    async with client:
        yield DeliveryContext(http=client)


@pytest.fixture
def base(httpserver: HTTPServer) -> str:
    """The fake provider's root URL, without a trailing slash."""
    return httpserver.url_for("/").rstrip("/")


@pytest.fixture
def closed_base() -> str:
    """A root URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
