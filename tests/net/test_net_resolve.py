"""resolve_and_check: one lookup, every address vetted, allowlists honoured."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dripdrop.errors import OutboundBlocked
from dripdrop.net import OutboundPolicy, resolve_and_check

FakeDNS = Callable[[dict[str, Any]], list[str]]  # the fake_dns fixture (conftest)


@pytest.mark.parametrize("host", ["127.0.0.1", "0x7f.1", "2130706433", "0177.1", "[::1]", "::1"])
async def test_numeric_hosts_are_checked_without_a_lookup(host: str, fake_dns: FakeDNS) -> None:
    lookups = fake_dns({})
    with pytest.raises(OutboundBlocked, match="loopback"):
        await resolve_and_check(host, 80, OutboundPolicy())
    assert lookups == []


@pytest.mark.parametrize(("host", "expected"), [("0x7f.1", "127.0.0.1"), ("[::1]", "::1")])
async def test_numeric_hosts_return_canonical_address(host: str, expected: str) -> None:
    assert await resolve_and_check(host, 80, OutboundPolicy(allow_private_network=True)) == [
        expected
    ]


async def test_localhost_is_refused() -> None:
    with pytest.raises(OutboundBlocked, match=r"'localhost'.*loopback"):
        await resolve_and_check("localhost", 80, OutboundPolicy())


async def test_localhost_allowed_when_private_network_allowed() -> None:
    addresses = await resolve_and_check("localhost", 80, OutboundPolicy(allow_private_network=True))
    assert addresses and all(a in ("127.0.0.1", "::1") for a in addresses)


async def test_one_blocked_address_refuses_the_host(fake_dns: FakeDNS) -> None:
    lookups = fake_dns({"mixed.test": ["8.8.8.8", "2606:4700::1111", "10.0.0.7"]})
    with pytest.raises(OutboundBlocked, match=r"'mixed\.test' \(10\.0\.0\.7\).*private network"):
        await resolve_and_check("mixed.test", 443, OutboundPolicy())
    assert lookups == ["mixed.test"]


async def test_public_host_returns_deduplicated_addresses_from_one_lookup(
    fake_dns: FakeDNS,
) -> None:
    lookups = fake_dns({"public.test": ["8.8.8.8", "8.8.8.8", "2606:4700::1111"]})
    addresses = await resolve_and_check("public.test", 443, OutboundPolicy())
    assert addresses == ["8.8.8.8", "2606:4700::1111"]
    assert lookups == ["public.test"]


async def test_hostname_resolving_to_mapped_loopback_is_refused(fake_dns: FakeDNS) -> None:
    fake_dns({"sneaky.test": ["::ffff:127.0.0.1"]})
    with pytest.raises(OutboundBlocked, match="IPv4-mapped"):
        await resolve_and_check("sneaky.test", 80, OutboundPolicy())


async def test_allowlisted_hostname_may_resolve_privately(fake_dns: FakeDNS) -> None:
    fake_dns({"hooks.internal": ["10.0.0.5"], "a.corp.test": ["192.168.0.9"]})
    policy = OutboundPolicy(allowlist=("hooks.internal", "*.corp.test"))
    assert await resolve_and_check("hooks.internal", 80, policy) == ["10.0.0.5"]
    assert await resolve_and_check("a.corp.test", 80, policy) == ["192.168.0.9"]


async def test_allowlisted_cidr_covers_only_its_addresses(fake_dns: FakeDNS) -> None:
    fake_dns({"two.test": ["10.0.0.5", "10.9.0.1"]})
    with pytest.raises(OutboundBlocked, match=r"10\.9\.0\.1"):
        await resolve_and_check("two.test", 80, OutboundPolicy(allowlist=("10.0.0.0/24",)))
    ok = await resolve_and_check("two.test", 80, OutboundPolicy(allowlist=("10.0.0.0/8",)))
    assert ok == ["10.0.0.5", "10.9.0.1"]


async def test_unresolvable_name_raises_oserror() -> None:
    with pytest.raises(OSError):
        await resolve_and_check("no-such-host.invalid", 80, OutboundPolicy())


async def test_empty_host_is_refused() -> None:
    with pytest.raises(OutboundBlocked):
        await resolve_and_check("  ", 80, OutboundPolicy())
