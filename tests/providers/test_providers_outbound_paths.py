"""Apprise URLs and Redis URLs obey the instance's outbound policy, like HTTP (issue 11).

Local servers only: pytest-httpserver on 127.0.0.1 for Apprise's JSON plugin, the Redis on
127.0.0.1:6379. A refusal must come before anything is sent; ``connects`` records every socket
connect and refuses non-loopback ones.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pytest_httpserver import HTTPServer

from dripdrop.channels import AdapterInfo, DeliveryContext, Message, get_provider
from dripdrop.channels.providers.apprise_url import _servers
from dripdrop.channels.providers.pubsub import RedisPubSub
from dripdrop.errors import OutboundBlocked, PermanentError, TransientError
from dripdrop.net import OutboundPolicy, create_http_client

LOOPBACK = OutboundPolicy(allowlist=("127.0.0.1/32",))
PRIVATE_OK = OutboundPolicy(allow_private_network=True)


async def _send(
    channel: str, provider: str, message: Message, adapter: AdapterInfo, policy: Any
) -> Any:
    """Send with the worker's guarded client for ``policy`` (None: no client at all)."""
    sender = get_provider(channel, provider)
    if policy is None:
        return await sender.send(message, adapter, DeliveryContext())
    async with create_http_client(policy) as client:
        return await sender.send(message, adapter, DeliveryContext(http=client))


# --- Apprise --------------------------------------------------------------------------------


def _apprise(url: str) -> AdapterInfo:
    return AdapterInfo(None, "a", "apprise", "apprise", {"url": url}, {})


APPRISE_MESSAGE = Message("apprise", None, {"title": "T", "body": "B"}, "e", "k")


async def _notify(url: str, policy: Any) -> Any:
    return await _send("apprise", "apprise", APPRISE_MESSAGE, _apprise(url), policy)


def _netloc(server: HTTPServer) -> str:
    return urlsplit(server.url_for("/")).netloc


def _hits(server: HTTPServer, path: str) -> int:
    # The server is shared: a late request of another test may sit in its log.
    return sum(1 for request, _ in server.log if request.path == path)


@pytest.mark.parametrize("policy", [OutboundPolicy(), None], ids=["default-policy", "no-client"])
async def test_apprise_loopback_url_is_refused(httpserver: HTTPServer, policy: Any) -> None:
    httpserver.expect_request("/notify").respond_with_data("ok")
    with pytest.raises(OutboundBlocked, match="loopback"):
        await _notify(f"json://{_netloc(httpserver)}/notify", policy)
    assert _hits(httpserver, "/notify") == 0


async def test_apprise_name_resolving_to_loopback_is_refused(httpserver: HTTPServer) -> None:
    with pytest.raises(OutboundBlocked, match="'localhost'"):
        await _notify(f"json://localhost:{httpserver.port}/notify", OutboundPolicy())
    assert _hits(httpserver, "/notify") == 0


async def test_apprise_refuses_before_notifying_any_of_several_urls(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data("ok")
    urls = f"json://{_netloc(httpserver)}/a, json://10.0.0.1/b"
    with pytest.raises(OutboundBlocked, match=r"10\.0\.0\.1"):
        await _notify(urls, LOOPBACK)
    assert _hits(httpserver, "/a") == 0  # the allowed first URL was not notified either


async def test_apprise_mailto_smtp_server_is_vetted(fake_dns, connects) -> None:
    fake_dns({"mail.example.org": [["93.184.216.34"]]})  # the mail domain itself is public
    with pytest.raises(OutboundBlocked, match=r"127\.0\.0\.1"):
        await _notify("mailto://u:p@mail.example.org?smtp=127.0.0.1", OutboundPolicy())
    assert connects == []


@pytest.mark.parametrize("host", ["[::ffff:169.254.169.254]", "[64:ff9b::a9fe:a9fe]"])
async def test_apprise_metadata_is_refused_even_with_private_network(host: str, connects) -> None:
    with pytest.raises(OutboundBlocked, match="cloud metadata"):
        await _notify(f"json://{host}/latest/meta-data", PRIVATE_OK)
    assert connects == []


async def test_apprise_verify_no_is_refused(httpserver: HTTPServer) -> None:
    with pytest.raises(PermanentError, match="verification"):
        await _notify(f"jsons://{_netloc(httpserver)}/notify?verify=no", LOOPBACK)
    assert _hits(httpserver, "/notify") == 0


@pytest.mark.parametrize(
    "policy", [LOOPBACK, PRIVATE_OK], ids=["allowlist", "allow_private_network"]
)
async def test_apprise_allowed_local_url_is_notified(httpserver: HTTPServer, policy: Any) -> None:
    httpserver.expect_request("/notify", method="POST").respond_with_data("ok")
    result = await _notify(f"json://{_netloc(httpserver)}/notify", policy)
    assert result.status == "sent" and _hits(httpserver, "/notify") == 1


def test_apprise_token_hosts_are_not_servers() -> None:
    """tgram://TOKEN/… carries a bot token where a host would be: never sent to DNS."""
    import apprise

    notifier = apprise.Apprise()
    assert notifier.add("tgram://123456789:AAHabcdefghijklmnopqrstuvwxyz12345678/12345")
    assert notifier.add("json://hooks.example.org:8080/x")
    assert notifier.add("mailto://u:p@example.org?smtp=relay.example.org")
    servers = [list(_servers(plugin)) for plugin in notifier]
    assert servers == [
        [],
        [("hooks.example.org", 8080)],
        [("example.org", 25), ("relay.example.org", 25)],
    ]


# --- Redis ----------------------------------------------------------------------------------

REDIS_PORT = 6379


REDIS_MESSAGE = Message("pubsub", "t", {"topic": "dripdrop-guard-test", "event": "e"}, "x", "k")


def _redis(url: str) -> AdapterInfo:
    return AdapterInfo(None, "r", "pubsub", "redis", {"url": url}, {})


async def _publish(url: str, policy: Any) -> Any:
    return await _send("pubsub", "redis", REDIS_MESSAGE, _redis(url), policy)


@pytest.fixture(autouse=True)
async def _close_redis_clients() -> AsyncIterator[None]:
    yield
    clients = RedisPubSub._clients.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.aclose()


@pytest.mark.parametrize("policy", [OutboundPolicy(), None], ids=["default-policy", "no-client"])
@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "redis://localhost:6379/0", "redis://[::1]:6379"]
)
async def test_redis_loopback_url_is_refused(url: str, policy: Any, connects) -> None:
    with pytest.raises(OutboundBlocked, match="loopback"):
        await _publish(url, policy)
    assert connects == []


async def test_redis_name_resolving_to_any_private_address_is_refused(fake_dns, connects) -> None:
    fake_dns({"redis.test": [["93.184.216.34", "10.0.0.5"]]})
    with pytest.raises(OutboundBlocked, match=r"'redis\.test' \(10\.0\.0\.5\)"):
        await _publish("redis://:pw@redis.test:6379/0", OutboundPolicy())
    assert connects == []


@pytest.mark.parametrize("host", ["[::ffff:169.254.169.254]", "[2002:a9fe:a9fe::]"])
async def test_redis_metadata_is_refused_even_with_private_network(host: str, connects) -> None:
    with pytest.raises(OutboundBlocked, match="cloud metadata"):
        await _publish(f"redis://{host}:6379/0", PRIVATE_OK)
    assert connects == []


async def test_redis_unix_socket_is_refused_by_default(connects) -> None:
    with pytest.raises(OutboundBlocked, match="unix socket"):
        await _publish("unix:///var/run/redis.sock", OutboundPolicy())
    assert connects == []


@pytest.mark.parametrize(
    "policy", [LOOPBACK, PRIVATE_OK], ids=["allowlist", "allow_private_network"]
)
async def test_redis_allowed_local_server_publishes(policy: Any) -> None:
    result = await _publish(f"redis://127.0.0.1:{REDIS_PORT}/0", policy)
    assert result.status == "published"


async def test_redis_name_is_resolved_once_per_connection_and_pinned(fake_dns, connects) -> None:
    # A second lookup would answer a private address (DNS rebinding): redis must not make one.
    lookups = fake_dns({"redis.test": [["127.0.0.1"], ["10.0.0.5"]]})
    for _ in range(3):  # one pooled connection serves all three
        result = await _publish(f"redis://redis.test:{REDIS_PORT}/0", LOOPBACK)
        assert result.status == "published"
    assert lookups == ["redis.test"]
    assert connects == [("127.0.0.1", REDIS_PORT)]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def test_rediss_is_verified_against_the_url_hostname(fake_dns, tls_files: Path) -> None:
    """A TLS front for the local Redis whose certificate names only ``redis.test``: the guard
    connects to the vetted IP, and TLS still checks the certificate against the name."""
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(tls_files / "cert.pem", tls_files / "key.pem")

    async def front(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", REDIS_PORT)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(front, "127.0.0.1", 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    lookups = fake_dns({"redis.test": [["127.0.0.1"]]})
    ca = tls_files / "cert.pem"
    try:
        result = await _publish(f"rediss://redis.test:{port}/0?ssl_ca_certs={ca}", LOOPBACK)
        assert result.status == "published"
        assert lookups == ["redis.test"]
        # By IP the same certificate does not match: the hostname really is what is verified.
        with pytest.raises(TransientError, match="certificate"):
            await _publish(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}", LOOPBACK)
    finally:
        for client in RedisPubSub._clients.pop(asyncio.get_running_loop(), {}).values():
            await client.aclose()
        server.close()


@pytest.mark.parametrize("query", ["ssl_cert_reqs=none", "ssl_check_hostname=false"])
async def test_rediss_without_verification_is_refused(query: str, connects) -> None:
    with pytest.raises(PermanentError, match="verification"):
        await _publish(f"rediss://127.0.0.1:{REDIS_PORT}/0?{query}", LOOPBACK)
    assert connects == []
