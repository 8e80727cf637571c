"""check_address, parse_host and OutboundPolicy: the pure address rules."""

from __future__ import annotations

import ipaddress

import pytest

from dripdrop.errors import OutboundBlocked, ValidationError
from dripdrop.net import OutboundPolicy, check_address, parse_host

LOOPBACK_DISGUISES = [
    "2130706433",
    "0x7f000001",
    "0X7F000001",
    "0x7f.1",
    "0177.1",
    "127.1",
    "127.0.1",
    "0177.0.0.01",
    "127.0.0.1.",
]


@pytest.mark.parametrize("host", LOOPBACK_DISGUISES)
def test_parse_host_sees_through_inet_aton_disguises(host: str) -> None:
    assert parse_host(host) == ipaddress.IPv4Address("127.0.0.1")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
        ("[fe80::1%25eth0]", "fe80::1%eth0"),
        ("1.2.3", "1.2.0.3"),  # a.b.c: the last part fills 16 bits
        ("10.0x10.0377.1", "10.16.255.1"),
        ("0", "0.0.0.0"),
    ],
)
def test_parse_host_other_forms(host: str, expected: str) -> None:
    assert parse_host(host) == ipaddress.ip_address(expected)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "localhost",
        "hooks.internal",
        "",
        "256.1",
        "0x100.1",
        "4294967296",
        "1.2.3.4.5",
        "08.1",
        "1..2",
        "[not-ipv6]",
        "1e5",
        "٣.1",
    ],
)
def test_parse_host_returns_none_for_names_and_invalid_numbers(host: str) -> None:
    assert parse_host(host) is None


BLOCKED = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback (IPv4-mapped"),
    ("::127.0.0.1", "loopback (IPv4-compatible"),
    ("::ffff:0:7f00:1", "loopback (IPv4-translated"),
    ("10.0.0.1", "private network"),
    ("172.16.5.4", "private network"),
    ("192.168.1.1", "private network"),
    ("169.254.169.254", "cloud metadata"),
    ("169.254.170.2", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    ("168.63.129.16", "cloud metadata"),
    ("fd00:ec2::254", "cloud metadata"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.1", "documentation"),
    ("fc00::1", "private network"),
    ("fd12:3456::1", "private network"),
    ("fec0::1", "site-local"),
    ("2002:7f00:1::", "loopback (6to4 127.0.0.1)"),
    ("2002:a00:1::1", "private network (6to4 10.0.0.1)"),
    ("64:ff9b::7f00:1", "loopback (NAT64 127.0.0.1)"),
    ("64:ff9b::a9fe:a9fe", "cloud metadata (NAT64"),
    ("64:ff9b:1::8.8.8.8", "local-use NAT64"),
    # Teredo whose server part is 127.0.0.1
    ("2001:0:7f00:1::1", "loopback (Teredo 127.0.0.1)"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
]


@pytest.mark.parametrize(("address", "reason"), BLOCKED)
def test_blocked_addresses_name_address_and_reason(address: str, reason: str) -> None:
    with pytest.raises(OutboundBlocked) as caught:
        check_address(address, OutboundPolicy())
    message = str(caught.value)
    assert reason in message
    assert str(ipaddress.ip_address(address)) in message


def test_accepts_ipaddress_objects_and_names_host() -> None:
    with pytest.raises(OutboundBlocked, match=r"'0x7f\.1' \(127\.0\.0\.1\).*loopback"):
        check_address(ipaddress.IPv4Address("127.0.0.1"), OutboundPolicy(), host="0x7f.1")


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
        "2002:808:808::1",
        "64:ff9b::808:808",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    check_address(address, OutboundPolicy())


@pytest.mark.parametrize(
    ("address", "_reason"),
    [b for b in BLOCKED if b[1] != "cloud metadata" and "cloud metadata" not in b[1]],
)
def test_allow_private_network_lifts_everything_but_metadata(address: str, _reason: str) -> None:
    check_address(address, OutboundPolicy(allow_private_network=True))


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "100.100.100.200"])
def test_metadata_stays_blocked_with_private_network_allowed(address: str) -> None:
    with pytest.raises(OutboundBlocked, match="cloud metadata"):
        check_address(address, OutboundPolicy(allow_private_network=True))


@pytest.mark.parametrize(("address", "_reason"), BLOCKED)
def test_allowlisted_address_passes(address: str, _reason: str) -> None:
    net = ipaddress.ip_network(address)
    check_address(address, OutboundPolicy(allowlist=(str(net),)))


def test_allowlist_cidr_is_exact() -> None:
    policy = OutboundPolicy(allowlist=("127.0.0.1/32", "10.1.0.0/16"))
    check_address("127.0.0.1", policy)
    check_address("::ffff:127.0.0.1", policy)  # the very same host
    check_address("10.1.200.3", policy)
    for other in ("127.0.0.2", "10.2.0.1", "::1", "2002:7f00:1::"):
        with pytest.raises(OutboundBlocked):
            check_address(other, policy)


def test_policy_hostname_allowlist() -> None:
    policy = OutboundPolicy(allowlist=("hooks.internal", "*.corp.example", "[::1]"))
    assert policy.host_allowed("hooks.internal")
    assert policy.host_allowed("HOOKS.internal.")
    assert policy.host_allowed("a.b.corp.example")
    assert not policy.host_allowed("corp.example")
    assert not policy.host_allowed("evilhooks.internal")
    check_address("::1", policy)


def test_policy_rejects_bad_settings() -> None:
    with pytest.raises(ValidationError) as caught:
        OutboundPolicy(allowlist=("10.0.0.0/33x", "ok.host"), max_redirects=-1, timeout=0)
    assert set(caught.value.errors) == {"allowlist", "max_redirects", "timeout"}


def test_policy_is_frozen_and_defaults() -> None:
    policy = OutboundPolicy()
    assert (policy.allow_private_network, policy.allowlist) == (False, ())
    assert (policy.max_redirects, policy.max_response_bytes, policy.timeout) == (5, 5_000_000, 10.0)
    with pytest.raises(AttributeError):
        policy.timeout = 1.0  # type: ignore[misc]
