"""Cloud metadata stays unreachable with ``allow_private_network=True``, in every IPv6 encoding
of its IPv4 address and behind any hostname (issue 11).

The refusal is decided by :func:`metadata_target`, a check of its own on the embedded IPv4,
not by comparing the reason text that the embedded-address branch extends.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from dripdrop.errors import OutboundBlocked
from dripdrop.net import (
    OutboundPolicy,
    check_address,
    create_http_client,
    guarded_request,
    metadata_target,
    resolve_and_check,
)
from dripdrop.net import addresses as addresses_module

FakeDNS = Callable[[dict[str, Any]], list[str]]  # the fake_dns fixture (conftest)
PRIVATE_OK = OutboundPolicy(allow_private_network=True)


def _forms(v4: str) -> list[str]:
    """``v4`` as IPv4-mapped, NAT64, 6to4, IPv4-compatible, IPv4-translated, Teredo and
    local-use NAT64 (/96 and /64 RFC 6052 layouts)."""
    n = int(ipaddress.IPv4Address(v4))
    hi, lo = n >> 16, n & 0xFFFF
    return [
        f"::ffff:{v4}",
        f"::ffff:{hi:x}:{lo:x}",
        f"64:ff9b::{v4}",
        f"2002:{hi:x}:{lo:x}::1",
        f"::{v4}",
        f"::ffff:0:{v4}",
        f"2001:0:{hi:x}:{lo:x}::1",  # Teredo, the server part
        f"64:ff9b:1::{v4}",
        f"64:ff9b:1:0:{n >> 24:x}:{(n >> 8) & 0xFFFF:x}:{(n & 0xFF) << 8:x}:0",
    ]


METADATA_V4 = ["169.254.169.254", "169.254.170.2", "100.100.100.200", "168.63.129.16"]
ENCODED = [(form, v4) for v4 in METADATA_V4 for form in _forms(v4)]


@pytest.mark.parametrize(("address", "v4"), ENCODED)
def test_encoded_metadata_is_refused_with_private_network_allowed(address: str, v4: str) -> None:
    with pytest.raises(OutboundBlocked, match="cloud metadata"):
        check_address(address, PRIVATE_OK)
    assert metadata_target(ipaddress.ip_address(address)) == ipaddress.ip_address(v4)


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "[fd00:ec2::254]"])
def test_plain_metadata_is_refused_with_private_network_allowed(address: str) -> None:
    with pytest.raises(OutboundBlocked, match="cloud metadata"):
        check_address(address.strip("[]"), PRIVATE_OK)


@pytest.mark.parametrize("address", ["::ffff:10.0.0.1", "64:ff9b::a9fe:1", "2002:a9fe:101::"])
def test_other_private_encodings_are_still_lifted(address: str) -> None:
    assert metadata_target(ipaddress.ip_address(address)) is None
    check_address(address, PRIVATE_OK)


def test_the_decision_does_not_read_the_reason_text(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever wording a reason gets, metadata stays refused.
    monkeypatch.setattr(addresses_module, "_reason", lambda ip: "reworded")
    for address in ("169.254.169.254", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe"):
        with pytest.raises(OutboundBlocked):
            check_address(address, PRIVATE_OK)


def test_an_explicit_allowlist_entry_still_opens_metadata() -> None:
    check_address("169.254.169.254", OutboundPolicy(allowlist=("169.254.169.254/32",)))
    check_address("::ffff:169.254.169.254", OutboundPolicy(allowlist=("169.254.169.254/32",)))


@pytest.mark.parametrize("answer", [["::ffff:169.254.169.254"], ["8.8.8.8", "2002:a9fe:a9fe::"]])
async def test_a_name_resolving_to_metadata_fails(fake_dns: FakeDNS, answer: list[str]) -> None:
    fake_dns({"imds.test": answer})
    with pytest.raises(OutboundBlocked, match=r"'imds\.test'.*cloud metadata"):
        await resolve_and_check("imds.test", 80, PRIVATE_OK)


async def test_an_allowlisted_name_cannot_lead_to_metadata(fake_dns: FakeDNS) -> None:
    fake_dns({"hooks.internal": ["64:ff9b::a9fe:a9fe"], "ok.internal": ["10.0.0.5"]})
    policy = OutboundPolicy(allowlist=("*.internal", "hooks.internal"))
    with pytest.raises(OutboundBlocked, match="cloud metadata"):
        await resolve_and_check("hooks.internal", 80, policy)
    assert await resolve_and_check("ok.internal", 80, policy) == ["10.0.0.5"]


@pytest.mark.parametrize("host", ["[::ffff:169.254.169.254]", "[64:ff9b::a9fe:a9fe]", "imds.test"])
async def test_the_guarded_client_never_connects_to_encoded_metadata(
    host: str, fake_dns: FakeDNS, connects: list[tuple[str, int]]
) -> None:
    fake_dns({"imds.test": ["::ffff:169.254.169.254"]})
    async with create_http_client(PRIVATE_OK) as client:
        with pytest.raises((OutboundBlocked, httpx2.ConnectError)) as info:
            await guarded_request(client, "GET", f"http://{host}/latest/meta-data/")
    assert "cloud metadata" in str(info.value)
    assert connects == []
