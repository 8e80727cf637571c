"""connect_guarded and policy_of: the guard for the non-HTTP paths (SMTP, Redis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from pytest_httpserver import HTTPServer

from dripdrop.errors import OutboundBlocked
from dripdrop.net import (
    OutboundPolicy,
    connect_guarded,
    create_http_client,
    policy_of,
    tls_server_name,
)

FakeDNS = Callable[[dict[str, Any]], list[str]]  # the fake_dns fixture (conftest)
LOOPBACK = OutboundPolicy(allowlist=("127.0.0.0/8",))


async def test_connects_to_the_vetted_address(server4: HTTPServer, connects: list) -> None:
    sock = await connect_guarded("127.0.0.1", server4.port, LOOPBACK, timeout=5)
    with sock:
        assert sock.getpeername() == ("127.0.0.1", server4.port)
        assert not sock.getblocking()
    assert connects == [("127.0.0.1", server4.port)]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0x7f.1", "10.0.0.1", "[::1]"])
async def test_refuses_before_any_connect(host: str, connects: list) -> None:
    with pytest.raises(OutboundBlocked):
        await connect_guarded(host, 25, OutboundPolicy(), timeout=5)
    assert connects == []


async def test_one_lookup_then_the_next_vetted_address(
    server4: HTTPServer, fake_dns: FakeDNS, connects: list
) -> None:
    # Nothing listens on 127.0.0.2: the second vetted address is tried, with no new lookup.
    lookups = fake_dns({"two.test": ["127.0.0.2", "127.0.0.1"]})
    sock = await connect_guarded("two.test", server4.port, LOOPBACK, timeout=5)
    sock.close()
    assert lookups == ["two.test"]
    assert connects == [("127.0.0.2", server4.port), ("127.0.0.1", server4.port)]


async def test_unresolvable_name_is_an_oserror() -> None:
    with pytest.raises(OSError):
        await connect_guarded("no-such-host.invalid", 25, OutboundPolicy(), timeout=5)


async def test_policy_of_reads_the_guarded_client_and_is_strict_otherwise() -> None:
    policy = OutboundPolicy(allow_private_network=True)
    async with create_http_client(policy) as guarded, httpx2.AsyncClient() as plain:
        assert policy_of(guarded) is policy
        assert policy_of(plain) == OutboundPolicy()
    assert policy_of(None) == OutboundPolicy()


@pytest.mark.parametrize(
    ("host", "name"),
    [("0x7f.1", "127.0.0.1"), ("[::1]", "::1"), ("smtp.example.com", "smtp.example.com")],
)
def test_tls_server_name(host: str, name: str) -> None:
    assert tls_server_name(host) == name
