"""Redirects re-vetted hop by hop, redirect cap, body size cap, timeouts."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator

import httpx2
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from dripdrop.errors import OutboundBlocked, PermanentError, TransientError
from dripdrop.net import OutboundPolicy, classify_http_error, create_http_client, guarded_request

ONLY_V4_LOOPBACK = OutboundPolicy(allowlist=("127.0.0.1/32",))


def _base(server: HTTPServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def _redirect(server: HTTPServer, path: str, location: str, status: int = 302) -> None:
    server.expect_request(path).respond_with_data("", status=status, headers={"Location": location})


@pytest.mark.parametrize(
    "target",
    [
        "http://[::1]:{p6}/in",
        "http://10.0.0.1:{p4}/in",
        "http://0x7f.2:{p4}/in",  # 127.0.0.2, outside 127.0.0.1/32
        "http://[::ffff:a00:1]:{p4}/in",
        "/in-ok",
    ],
)
async def test_redirect_to_a_blocked_host_is_refused_before_connecting(
    target: str, server4: HTTPServer, server6: HTTPServer, connects: list[tuple[str, int]]
) -> None:
    location = target.format(p4=server4.port, p6=server6.port)
    _redirect(server4, "/start", location)
    server4.expect_request("/in-ok").respond_with_data("same host, allowed")
    async with create_http_client(ONLY_V4_LOOPBACK) as c:
        if location.startswith("/"):  # control: a same-host redirect is followed
            response = await guarded_request(c, "GET", _base(server4) + "/start")
            assert response.text == "same host, allowed"
            assert [r.status_code for r in response.history] == [302]
            return
        with pytest.raises(OutboundBlocked, match="refused"):
            await guarded_request(c, "GET", _base(server4) + "/start")
    # Only the allowed first hop ever connected.
    assert [c for c in connects if c[1] != server4.port or c[0] != "127.0.0.1"] == []
    assert server6.log == []
    assert [req.path for req, _ in server4.log] == ["/start"]


async def test_redirect_chain_is_followed_and_303_becomes_get(server4: HTTPServer) -> None:
    _redirect(server4, "/a", "/b", status=307)
    _redirect(server4, "/b", "/c", status=303)
    server4.expect_request("/c", method="GET").respond_with_data("done")
    async with create_http_client(ONLY_V4_LOOPBACK) as c:
        response = await guarded_request(c, "POST", _base(server4) + "/a", json={"x": 1})
    assert response.text == "done"
    assert [r.status_code for r in response.history] == [307, 303]
    assert [(req.method, req.path) for req, _ in server4.log] == [
        ("POST", "/a"),
        ("POST", "/b"),
        ("GET", "/c"),
    ]


async def test_redirect_cap(server4: HTTPServer) -> None:
    _redirect(server4, "/loop", "/loop")
    async with create_http_client(OutboundPolicy(allowlist=("127.0.0.1",), max_redirects=3)) as c:
        with pytest.raises(PermanentError, match="too many redirects"):
            await guarded_request(c, "GET", _base(server4) + "/loop")
    assert len(server4.log) == 4  # the first request plus three followed redirects


async def test_redirects_not_followed_on_request(server4: HTTPServer) -> None:
    _redirect(server4, "/r", "http://10.0.0.1/")
    async with create_http_client(ONLY_V4_LOOPBACK) as c:
        response = await guarded_request(c, "GET", _base(server4) + "/r", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "http://10.0.0.1/"


async def test_library_redirects_are_guarded_too(
    server4: HTTPServer, connects: list[tuple[str, int]]
) -> None:
    _redirect(server4, "/r", "http://169.254.169.254/latest/meta-data/")
    async with create_http_client(ONLY_V4_LOOPBACK) as c:
        with pytest.raises(OutboundBlocked, match="cloud metadata"):
            await c.get(_base(server4) + "/r", follow_redirects=True)
    assert {host for host, _ in connects} == {"127.0.0.1"}


def _chunks(n: int, size: int, pause: float = 0.0) -> Iterator[bytes]:
    for _ in range(n):
        if pause:
            time.sleep(pause)
        yield b"x" * size


@pytest.mark.parametrize("how", ["content-length", "streamed", "gzip bomb"])
async def test_response_too_large(how: str, server4: HTTPServer) -> None:
    if how == "content-length":
        server4.expect_request("/big").respond_with_data(b"x" * 20_000)
    elif how == "streamed":  # no Content-Length: the cap must trip while reading
        server4.expect_request("/big").respond_with_handler(
            lambda _req: Response(_chunks(20, 1_000), direct_passthrough=True)
        )
    else:  # tiny on the wire, large once decoded
        bomb = gzip.compress(b"0" * 200_000)
        assert len(bomb) < 5_000
        server4.expect_request("/big").respond_with_data(bomb, headers={"Content-Encoding": "gzip"})
    policy = OutboundPolicy(allowlist=("127.0.0.1/32",), max_response_bytes=10_000)
    async with create_http_client(policy) as c:
        with pytest.raises(PermanentError, match="response too large"):
            await guarded_request(c, "GET", _base(server4) + "/big")


async def test_response_at_the_cap_is_fine(server4: HTTPServer) -> None:
    server4.expect_request("/ok").respond_with_data(
        gzip.compress(b"y" * 10_000), headers={"Content-Encoding": "gzip"}
    )
    policy = OutboundPolicy(allowlist=("127.0.0.1/32",), max_response_bytes=10_000)
    async with create_http_client(policy) as c:
        response = await guarded_request(c, "GET", _base(server4) + "/ok")
    assert response.content == b"y" * 10_000


async def test_timeout_is_transient(server4: HTTPServer, slow_handler) -> None:
    server4.expect_request("/slow").respond_with_handler(slow_handler(server4, 1.5))
    policy = OutboundPolicy(allowlist=("127.0.0.1/32",), timeout=0.3)
    started = time.monotonic()
    async with create_http_client(policy) as c:
        with pytest.raises(httpx2.TimeoutException) as caught:
            await guarded_request(c, "GET", _base(server4) + "/slow")
    assert time.monotonic() - started < 1.2
    error = classify_http_error(caught.value)
    assert isinstance(error, TransientError) and "timed out" in str(error)


async def test_total_deadline_stops_a_slow_drip(server4: HTTPServer) -> None:
    # Each chunk arrives well within the read timeout; only the overall deadline can stop it.
    server4.expect_request("/drip").respond_with_handler(
        lambda _req: Response(_chunks(20, 10, pause=0.15), direct_passthrough=True)
    )
    policy = OutboundPolicy(allowlist=("127.0.0.1/32",), timeout=0.6)
    started = time.monotonic()
    async with create_http_client(policy) as c:
        with pytest.raises(httpx2.TimeoutException, match="exceeded"):
            await guarded_request(c, "GET", _base(server4) + "/drip")
    assert time.monotonic() - started < 1.5


async def test_connection_refused_is_transient() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with create_http_client(ONLY_V4_LOOPBACK) as c:
        with pytest.raises(httpx2.ConnectError) as caught:
            await guarded_request(c, "GET", f"http://127.0.0.1:{port}/")
    assert isinstance(classify_http_error(caught.value), TransientError)


async def test_unresolvable_host_is_a_connect_error(connects: list[tuple[str, int]]) -> None:
    async with create_http_client(OutboundPolicy()) as c:
        with pytest.raises(httpx2.ConnectError, match="cannot resolve"):
            await guarded_request(c, "GET", "http://no-such-host.invalid/")
    assert connects == []
