"""Fixtures for HTTP hook tests: a local server, a guarded client allowed to reach it, hooks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from dripdrop.crypto import Secret
from dripdrop.hooks import http as hooks_http
from dripdrop.net import OutboundPolicy, create_http_client
from dripdrop.records import HttpHook


@pytest.fixture(scope="session")
def _server() -> Iterator[HTTPServer]:
    # Threaded so a deliberately slow handler cannot stall the next request.
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


@pytest.fixture
def server(_server: HTTPServer) -> Iterator[HTTPServer]:
    """An HTTP server on 127.0.0.1, emptied before and after each test."""
    _server.clear()
    yield _server
    _server.clear()


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    """A guarded client that may reach loopback (the test server)."""
    http = create_http_client(OutboundPolicy(allow_private_network=True))
    yield http
    await http.aclose()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every backoff wait of the hook runtime (they still happen, for real)."""
    seen: list[float] = []
    real = hooks_http._sleep

    async def spy(delay: float) -> None:
        seen.append(delay)
        await real(delay)

    monkeypatch.setattr(hooks_http, "_sleep", spy)
    monkeypatch.setattr(hooks_http, "BACKOFF_BASE", 0.01)
    return seen


@pytest.fixture
def make_hook(server: HTTPServer) -> Callable[..., HttpHook]:
    """Build an HttpHook record pointing at the test server (``path`` is appended)."""

    def build(path: str = "/hook", *, auth_config: dict[str, Any] | None = None, **kw: Any):
        values: dict[str, Any] = dict(
            id=uuid.uuid4(),
            sequence_id=uuid.uuid4(),
            name="Lead Score",
            key="lead_score",
            url=server.url_for(path),
            method="POST",
            response_type="json",
            retry_count=0,
            timeout_ms=2000,
        )
        values.update(kw)
        return HttpHook(auth_config=Secret(auth_config or {}), **values)

    return build
