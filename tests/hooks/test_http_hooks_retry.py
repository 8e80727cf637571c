"""Retries: transient failures are retried with backoff, permanent ones fail at once."""

from __future__ import annotations

import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from dripdrop.errors import PermanentError, TransientError
from dripdrop.hooks.http import call_http_hook


def _sequence(*answers: Response):
    """A handler answering with ``answers`` in turn (the last one repeats)."""
    count = {"n": 0}

    def handler(request: Request) -> Response:
        i = min(count["n"], len(answers) - 1)
        count["n"] += 1
        return answers[i]

    return handler


def _json(status: int, body: str = '{"score": 5}', **headers: str) -> Response:
    return Response(body, status=status, content_type="application/json", headers=headers)


async def test_retry_on_503_then_success(server: HTTPServer, client, make_hook, sleeps) -> None:
    server.expect_request("/hook").respond_with_handler(
        _sequence(_json(503, "{}"), _json(503, "{}"), _json(200))
    )
    hook = make_hook(retry_count=2, response_path="score", response_type="number")
    result = await call_http_hook(None, hook, {}, client)
    assert result.value == 5
    assert len(server.log) == 3
    assert sleeps == [0.01, 0.02]  # exponential backoff


async def test_retries_exhausted_raise_transient(
    server: HTTPServer, client, make_hook, sleeps
) -> None:
    server.expect_request("/hook").respond_with_handler(_sequence(_json(502, '{"e": "down"}')))
    hook = make_hook(retry_count=2)
    with pytest.raises(TransientError) as info:
        await call_http_hook(None, hook, {}, client)
    assert len(server.log) == 3
    assert str(info.value).startswith("hook 'lead_score' failed after 3 attempts: HTTP 502")
    assert info.value.status == 502


async def test_429_is_retried(server: HTTPServer, client, make_hook, sleeps) -> None:
    server.expect_request("/hook").respond_with_handler(_sequence(_json(429, "{}"), _json(200)))
    result = await call_http_hook(None, make_hook(retry_count=1), {}, client)
    assert result.value == {"score": 5}
    assert len(server.log) == 2


async def test_no_retry_on_400(server: HTTPServer, client, make_hook, sleeps) -> None:
    server.expect_request("/hook").respond_with_handler(_sequence(_json(400, '{"e": "bad"}')))
    with pytest.raises(PermanentError) as info:
        await call_http_hook(None, make_hook(retry_count=3), {}, client)
    assert len(server.log) == 1
    assert sleeps == []
    assert "lead_score" in str(info.value) and "HTTP 400" in str(info.value)
    assert info.value.status == 400


async def test_retry_after_honoured(server: HTTPServer, client, make_hook, sleeps) -> None:
    server.expect_request("/hook").respond_with_handler(
        _sequence(_json(503, "{}", **{"Retry-After": "1"}), _json(200))
    )
    started = time.monotonic()
    result = await call_http_hook(None, make_hook(retry_count=1), {}, client)
    assert result.value == {"score": 5}
    assert sleeps == [1.0]
    assert time.monotonic() - started >= 1.0


async def test_retry_after_capped(server: HTTPServer, client, make_hook, sleeps, monkeypatch):
    from dripdrop.hooks import http as hooks_http

    monkeypatch.setattr(hooks_http, "RETRY_AFTER_CAP", 0.05)
    server.expect_request("/hook").respond_with_handler(
        _sequence(_json(503, "{}", **{"Retry-After": "3600"}), _json(200))
    )
    await call_http_hook(None, make_hook(retry_count=1), {}, client)
    assert sleeps == [0.05]


async def test_timeout_is_transient_after_all_attempts(
    server: HTTPServer, client, make_hook, sleeps
) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.5)
        return _json(200)

    server.expect_request("/hook").respond_with_handler(slow)
    hook = make_hook(retry_count=1, timeout_ms=100)
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"hook 'lead_score' failed after 2 attempts: .*tim"):
        await call_http_hook(None, hook, {}, client)
    assert time.monotonic() - started < 1.0  # the timeout applied, not the server's pace
    assert len(sleeps) == 1
    # Both requests reached the server (the log fills once each slow handler returns).
    deadline = time.monotonic() + 3
    while len(server.log) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server.log) == 2


async def test_network_error_is_transient(client, make_hook, sleeps) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hook = make_hook(url=f"http://127.0.0.1:{port}/hook", retry_count=1)
    with pytest.raises(TransientError, match="hook 'lead_score' failed after 2 attempts"):
        await call_http_hook(None, hook, {}, client)
