"""The guarded client against real servers on 127.0.0.1 / [::1].

Blocked destinations must be refused before any socket connects (the ``connects`` fixture
records every connect and refuses non-loopback ones as a safety net).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest
from pytest_httpserver import HTTPServer

from dripdrop.errors import ConfigurationError, OutboundBlocked
from dripdrop.net import OutboundPolicy, create_http_client, guarded_request

FakeDNS = Callable[[dict[str, Any]], list[str]]  # the fake_dns fixture (conftest)
LOCAL_ONLY = OutboundPolicy(allowlist=("127.0.0.0/8", "::1/128"))

# (host as written in the URL, which local server it reaches when allowed)
LOOPBACK_HOSTS = [
    ("127.0.0.1", 4),
    ("localhost", 4),
    ("[::1]", 6),
    ("[::ffff:127.0.0.1]", 4),
    ("2130706433", 4),
    ("0x7f.1", 4),
    ("0177.1", 4),
    ("127.1", 4),
]
# Never connected to, allowed or not: the port is irrelevant.
NON_LOCAL_HOSTS = [
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "[fe80::1]",
    "[fc00::1]",
    "[2002:7f00:1::]",
    "[64:ff9b::7f00:1]",
]


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with create_http_client(OutboundPolicy()) as c:
        yield c


def _url(host: str, family: int, server4: HTTPServer, server6: HTTPServer) -> str:
    return f"http://{host}:{(server4 if family == 4 else server6).port}/hook"


@pytest.mark.parametrize(("host", "family"), LOOPBACK_HOSTS)
async def test_loopback_disguises_refused_before_connecting(
    host: str,
    family: int,
    client: httpx2.AsyncClient,
    server4: HTTPServer,
    server6: HTTPServer,
    connects: list[tuple[str, int]],
) -> None:
    with pytest.raises(OutboundBlocked, match="loopback"):
        await guarded_request(client, "POST", _url(host, family, server4, server6), json={})
    assert connects == []
    assert server4.log == [] and server6.log == []


@pytest.mark.parametrize("host", NON_LOCAL_HOSTS)
async def test_private_destinations_refused_before_connecting(
    host: str, client: httpx2.AsyncClient, connects: list[tuple[str, int]]
) -> None:
    with pytest.raises(OutboundBlocked, match="refused"):
        await guarded_request(client, "GET", f"http://{host}:8080/")
    assert connects == []


@pytest.mark.parametrize("host", ["127.0.0.1", "0x7f.1", "[::1]", "169.254.169.254"])
async def test_plain_client_calls_are_guarded_too(
    host: str, client: httpx2.AsyncClient, connects: list[tuple[str, int]]
) -> None:
    # The guard lives in the transport, so bypassing guarded_request does not bypass it.
    with pytest.raises(OutboundBlocked):
        await client.get(f"http://{host}:8080/")
    assert connects == []


@pytest.mark.parametrize(("host", "family"), LOOPBACK_HOSTS)
@pytest.mark.parametrize("policy", [OutboundPolicy(allow_private_network=True), LOCAL_ONLY])
async def test_positive_control_same_url_succeeds_when_allowed(
    host: str,
    family: int,
    policy: OutboundPolicy,
    server4: HTTPServer,
    server6: HTTPServer,
    connects: list[tuple[str, int]],
) -> None:
    server = server4 if family == 4 else server6
    server.expect_request("/hook", method="POST").respond_with_json({"ok": True})
    async with create_http_client(policy) as c:
        response = await guarded_request(c, "POST", _url(host, family, server4, server6), json={})
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert len(server.log) == 1
    # Connected to the canonical vetted IP, whatever the disguise in the URL.
    assert [port for _, port in connects] == [server.port]
    sent_host = server.log[0][0].headers["Host"]
    assert sent_host == f"{host}:{server.port}"  # original Host header kept


def _rebinding(first: str, then: str) -> Callable[[], list[str]]:
    """A resolver answer that changes after the first lookup, like a DNS-rebinding attacker."""
    calls = 0

    def answer() -> list[str]:
        nonlocal calls
        calls += 1
        return [first if calls == 1 else then]

    return answer


async def test_hostname_is_resolved_once_and_connection_pinned(
    fake_dns: FakeDNS, server4: HTTPServer, connects: list[tuple[str, int]]
) -> None:
    lookups = fake_dns({"rebind.test": _rebinding("127.0.0.1", "10.0.0.1")})
    server4.expect_request("/").respond_with_data("pinned")
    async with create_http_client(OutboundPolicy(allowlist=("127.0.0.1/32",))) as c:
        response = await guarded_request(c, "GET", f"http://rebind.test:{server4.port}/")
    assert response.text == "pinned"
    # One lookup: the connect used the vetted answer, not a second (rebound) resolution.
    assert lookups.count("rebind.test") == 1
    assert connects == [("127.0.0.1", server4.port)]
    assert server4.log[0][0].headers["Host"] == f"rebind.test:{server4.port}"


async def test_each_new_connection_is_vetted_again(
    fake_dns: FakeDNS, server4: HTTPServer, connects: list[tuple[str, int]]
) -> None:
    fake_dns({"rebind.test": _rebinding("127.0.0.1", "10.0.0.1")})
    server4.expect_request("/").respond_with_data("ok")
    policy = OutboundPolicy(allowlist=("127.0.0.1/32",))
    async with create_http_client(policy) as c:
        await guarded_request(c, "GET", f"http://rebind.test:{server4.port}/")
    async with create_http_client(policy) as c:
        with pytest.raises(OutboundBlocked, match=r"'rebind\.test' \(10\.0\.0\.1\)"):
            await guarded_request(c, "GET", f"http://rebind.test:{server4.port}/")
    assert connects == [("127.0.0.1", server4.port)]


def test_create_http_client_refuses_bypasses() -> None:
    policy = OutboundPolicy()
    for kwargs in (
        {"verify": False},
        {"transport": httpx2.AsyncHTTPTransport()},
        {"mounts": {}},
        {"proxy": "http://127.0.0.1:3128"},
        {"trust_env": True},
        {"follow_redirects": True},
    ):
        with pytest.raises(ConfigurationError):
            create_http_client(policy, **kwargs)


async def test_guarded_request_needs_a_guarded_client() -> None:
    async with httpx2.AsyncClient() as plain:
        with pytest.raises(ConfigurationError, match="create_http_client"):
            await guarded_request(plain, "GET", "http://127.0.0.1:1/")


async def test_client_ignores_proxy_environment(
    monkeypatch: pytest.MonkeyPatch, server4: HTTPServer, connects: list[tuple[str, int]]
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.9.9.9:3128")
    server4.expect_request("/").respond_with_data("direct")
    async with create_http_client(LOCAL_ONLY) as c:
        response = await guarded_request(
            c, "GET", server4.url_for("/").replace("localhost", "127.0.0.1")
        )
    assert response.text == "direct"
    assert connects == [("127.0.0.1", server4.port)]
