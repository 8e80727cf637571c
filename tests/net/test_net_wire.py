"""The aiohttp path of guarded_request (net/wire.py): what it must keep beyond the shared guard
tests — credentials across redirects, method rewriting, pinned and reused connections, a slow
host that does not hold back a fast one, and an exotic IP literal sent as written."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from dripdrop.net import OutboundPolicy, create_http_client, guarded_request
from dripdrop.net.wire import WireResponse

LOCAL = OutboundPolicy(allowlist=("127.0.0.0/8", "::1/128"))


@pytest.fixture
def other4() -> Iterator[HTTPServer]:
    """A second server on 127.0.0.1: another port is another origin."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


async def test_credentials_stay_behind_when_a_redirect_changes_origin(
    server4: HTTPServer, other4: HTTPServer
) -> None:
    server4.expect_request("/same").respond_with_data(
        "", status=307, headers={"Location": "/landing"}
    )
    server4.expect_request("/landing").respond_with_data("here")
    server4.expect_request("/away").respond_with_data(
        "", status=307, headers={"Location": f"http://127.0.0.1:{other4.port}/landing"}
    )
    other4.expect_request("/landing").respond_with_data("there")
    headers = {"Authorization": "Bearer s3cret-token", "X-Signature": "v1,abc"}
    async with create_http_client(LOCAL) as client:
        same = await guarded_request(
            client, "POST", f"http://127.0.0.1:{server4.port}/same", json={}, headers=headers
        )
        away = await guarded_request(
            client, "POST", f"http://127.0.0.1:{server4.port}/away", json={}, headers=headers
        )
    assert isinstance(same, WireResponse) and (same.text, away.text) == ("here", "there")
    landing_same = next(request for request, _ in server4.log if request.path == "/landing")
    assert landing_same.headers["Authorization"] == "Bearer s3cret-token"
    landing_away = other4.log[0][0]
    assert "Authorization" not in landing_away.headers
    assert landing_away.headers["X-Signature"] == "v1,abc"  # only credentials are dropped
    assert landing_away.get_data() == b"{}"  # 307 keeps method and body


async def test_302_turns_a_post_into_a_get_without_its_body(server4: HTTPServer) -> None:
    server4.expect_request("/form", method="POST").respond_with_data(
        "", status=302, headers={"Location": "/done"}
    )
    server4.expect_request("/done", method="GET").respond_with_data("ok")
    async with create_http_client(LOCAL) as client:
        response = await guarded_request(
            client, "POST", f"http://127.0.0.1:{server4.port}/form", data={"a": "1"}
        )
    assert response.text == "ok"
    assert [r.status_code for r in response.history] == [302]
    done = server4.log[1][0]
    assert done.method == "GET" and done.get_data() == b""
    assert "Content-Type" not in done.headers


async def _keep_alive_server() -> tuple[asyncio.Server, list[int]]:
    """A minimal HTTP/1.1 keep-alive server (werkzeug's closes every connection); the list
    counts requests per connection."""
    per_connection: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        per_connection.append(0)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                per_connection[-1] += 1
                body = b'{"ok":true}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, per_connection


async def test_connections_are_pinned_and_kept_alive(
    connects: list[tuple[str, int]], fake_dns
) -> None:
    lookups = fake_dns({"sink.test": ["127.0.0.1"]})
    server, per_connection = await _keep_alive_server()
    port = server.sockets[0].getsockname()[1]
    try:
        async with create_http_client(LOCAL) as client:
            for _ in range(20):
                response = await guarded_request(
                    client, "POST", f"http://sink.test:{port}/hook", json={"n": 1}
                )
                assert response.json() == {"ok": True}
    finally:
        server.close()
        await server.wait_closed()
    # One lookup and one connection for twenty requests: the pool outlives each request.
    assert lookups == ["sink.test"]
    assert connects == [("127.0.0.1", port)]
    assert per_connection == [20]


def _slow(_request: Request) -> Response:
    time.sleep(1.0)
    return Response("slow")


async def test_a_slow_host_does_not_hold_back_a_fast_one(
    server4: HTTPServer, other4: HTTPServer
) -> None:
    # other4 answers after a second (one request at a time); server4 at once.
    other4.expect_request("/slow").respond_with_handler(_slow)
    server4.expect_request("/fast").respond_with_data("fast")
    finished: list[tuple[str, float]] = []
    started = time.monotonic()

    async def call(client, url: str, label: str) -> None:
        await guarded_request(client, "GET", url)
        finished.append((label, time.monotonic() - started))

    async with create_http_client(LOCAL) as client:
        slow = [
            asyncio.create_task(call(client, f"http://127.0.0.1:{other4.port}/slow", "slow"))
            for _ in range(3)
        ]
        await asyncio.sleep(0.05)  # the slow ones hold their connections first
        await asyncio.gather(
            *(call(client, f"http://127.0.0.1:{server4.port}/fast", "fast") for _ in range(30))
        )
        fast_done = time.monotonic() - started
        await asyncio.gather(*slow)
    assert fast_done < 0.9  # before the first slow answer
    assert [label for label, _ in finished[:30]] == ["fast"] * 30


async def test_an_exotic_ip_literal_is_sent_as_written(server4: HTTPServer) -> None:
    # aiohttp refuses "127.1"; the request goes through the httpx2 transport, guarded alike.
    server4.expect_request("/x").respond_with_data("ok")
    async with create_http_client(LOCAL) as client:
        response = await guarded_request(client, "GET", f"http://127.1:{server4.port}/x")
    assert response.text == "ok"
    assert server4.log[0][0].headers["Host"] == f"127.1:{server4.port}"


def test_the_wire_session_belongs_to_its_loop_and_closes_with_the_client(
    server4: HTTPServer,
) -> None:
    server4.expect_request("/x").respond_with_data("ok")
    client = create_http_client(LOCAL)

    async def once() -> str:
        response = await guarded_request(client, "GET", f"http://127.0.0.1:{server4.port}/x")
        return response.text

    assert asyncio.run(once()) == "ok"
    session = client._wire
    assert session is not None and not session.closed
    asyncio.run(client.aclose())
    assert session.closed and client._wire is None
