"""Address classification: which IPs the outbound guard refuses, and numeric-host parsing.

``ipaddress`` properties (``is_private``, ``is_global``…) changed between Python releases and
miss some ranges, so the refusal table below lists every range explicitly, with the reason
shown to the user. The properties are only a final catch-all ("not globally routable").

Ranges added explicitly on top of the ``ipaddress`` properties:

* cloud metadata: 169.254.169.254, 169.254.170.2 (AWS ECS), 100.100.100.200 (Alibaba),
  168.63.129.16 (Azure WireServer, a *public* address), fd00:ec2::254 (AWS IPv6)
* 100.64.0.0/10 carrier-grade NAT (neither private nor global for ``ipaddress``)
* 255.255.255.255 broadcast, 0.0.0.0/8 and :: unspecified, fec0::/10 site-local
* IPv4 embedded in IPv6: IPv4-mapped ::ffff:0:0/96, IPv4-translated ::ffff:0:0:0/96,
  IPv4-compatible ::/96, NAT64 64:ff9b::/96, 6to4 2002::/16 and Teredo 2001::/32 — the
  embedded IPv4 is checked with the IPv4 rules; 64:ff9b:1::/48 (local-use NAT64) is refused.

Cloud metadata is a separate check (:func:`metadata_target`), not a reason string: it looks at
the address itself and at every IPv4 address embedded in it (the forms above, Teredo, and each
RFC 6052 position inside local-use NAT64), so ``allow_private_network`` never lifts it.
"""

from __future__ import annotations

import ipaddress
from typing import NoReturn
from urllib.parse import unquote

from dripdrop.errors import OutboundBlocked
from dripdrop.net.policy import OutboundPolicy

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = "cloud metadata"
_net = ipaddress.ip_network

_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "100.100.100.200",
        "168.63.129.16",
        "fd00:ec2::254",
    )
)

# Order matters: the first match names the reason.
_IPV4_BLOCKED: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_net("0.0.0.0/8"), "unspecified address"),
    (_net("127.0.0.0/8"), "loopback"),
    (_net("10.0.0.0/8"), "private network"),
    (_net("172.16.0.0/12"), "private network"),
    (_net("192.168.0.0/16"), "private network"),
    (_net("169.254.0.0/16"), "link-local"),
    (_net("100.64.0.0/10"), "carrier-grade NAT"),
    (_net("192.0.0.0/24"), "IETF protocol assignment"),
    (_net("192.0.2.0/24"), "documentation range"),
    (_net("198.51.100.0/24"), "documentation range"),
    (_net("203.0.113.0/24"), "documentation range"),
    (_net("198.18.0.0/15"), "benchmarking range"),
    (_net("192.88.99.0/24"), "6to4 relay anycast"),
    (_net("224.0.0.0/4"), "multicast"),
    (_net("255.255.255.255/32"), "broadcast"),
    (_net("240.0.0.0/4"), "reserved"),
)

_IPV6_BLOCKED: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_net("::/128"), "unspecified address"),
    (_net("::1/128"), "loopback"),
    (_net("64:ff9b:1::/48"), "local-use NAT64"),
    (_net("100::/64"), "discard-only range"),
    (_net("2001:db8::/32"), "documentation range"),
    (_net("fc00::/7"), "private network (unique local)"),
    (_net("fe80::/10"), "link-local"),
    (_net("fec0::/10"), "site-local"),
    (_net("ff00::/8"), "multicast"),
)

_IPV4_COMPATIBLE = _net("::/96")
_IPV4_TRANSLATED = _net("::ffff:0:0:0/96")
_NAT64 = _net("64:ff9b::/96")
_LOCAL_NAT64 = _net("64:ff9b:1::/48")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address carries, and the name of the encoding."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_TRANSLATED:
        return low32, "IPv4-translated"
    if ip in _NAT64:
        return low32, "NAT64"
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # :: and ::1 are not IPv4-compatible
        return low32, "IPv4-compatible"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    return None


def _rfc6052_candidates(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses a local-use NAT64 address may carry, one per RFC 6052 prefix length.

    64:ff9b:1::/48 is carved by the operator with any prefix from /48 to /96; the IPv4 bits sit
    at a different position for each (skipping the reserved bits 64-71), so try them all.
    """
    b = ip.packed
    layouts = (b[6:8] + b[9:11], b[7:8] + b[9:12], b[9:13], b[12:16])  # /48, /56, /64, /96
    return [ipaddress.IPv4Address(part) for part in layouts]


def metadata_target(ip: IPAddress) -> IPAddress | None:
    """The cloud-metadata address ``ip`` reaches, directly or through an embedded IPv4, or None.

    Deliberately independent of :func:`_reason` so that no refusal reason (and no policy switch
    lifting one) can hide a metadata address behind an IPv6 encoding.
    """
    if ip in _METADATA_ADDRESSES:
        return ip
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    inner: list[ipaddress.IPv4Address] = []
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        inner.append(embedded[0])
    if ip.teredo is not None:
        inner.extend(ip.teredo)
    if ip in _LOCAL_NAT64:
        inner.extend(_rfc6052_candidates(ip))
    return next((a for a in inner if a in _METADATA_ADDRESSES), None)


def _reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is refused (ignoring the policy), or None when it is a public address."""
    if ip in _METADATA_ADDRESSES:
        return METADATA
    if isinstance(ip, ipaddress.IPv4Address):
        for network, reason in _IPV4_BLOCKED:
            if ip in network:
                return reason
    else:
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner, kind = embedded
            inner_reason = _reason(inner)
            if inner_reason is not None:
                return f"{inner_reason} ({kind} {inner})"
            return None  # the same public IPv4 host, reached over IPv6
        if ip.teredo is not None:
            server, client = ip.teredo
            for inner in (server, client):
                inner_reason = _reason(inner)
                if inner_reason is not None:
                    return f"{inner_reason} (Teredo {inner})"
            return "Teredo tunnel"
        for network, reason in _IPV6_BLOCKED:
            if ip in network:
                return reason
    # Catch-all for ranges the tables above do not name.
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not globally routable"
    return None


def _as_address(ip: str | IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
        address = ip
    else:
        parsed = parse_host(ip)
        if parsed is None:
            raise OutboundBlocked(f"{ip!r} is not an IP address")
        address = parsed
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        # Drop the zone (fe80::1%eth0) so range membership works on the bare address.
        address = ipaddress.IPv6Address(int(address))
    return address


def check_address(
    ip: str | IPAddress, policy: OutboundPolicy | None = None, *, host: str | None = None
) -> None:
    """Raise :class:`OutboundBlocked` when the policy forbids connecting to ``ip``.

    ``host`` is only used to name the original hostname in the error message. Allowlisted
    addresses always pass; ``allow_private_network`` lets everything but cloud metadata pass
    (in any encoding: see :func:`metadata_target`).
    """
    policy = policy or OutboundPolicy()
    address = _as_address(ip)
    if policy.address_allowed(address):
        return
    target = metadata_target(address)
    if target is not None:
        _refuse(address, host, _metadata_reason(address, target))
    reason = _reason(address)
    if reason is None or policy.allow_private_network:
        return
    _refuse(address, host, reason)


def check_metadata(
    ip: str | IPAddress, policy: OutboundPolicy | None = None, *, host: str | None = None
) -> None:
    """Raise :class:`OutboundBlocked` when ``ip`` reaches cloud metadata and is not allowlisted.

    The part of :func:`check_address` that even an allowlisted hostname cannot skip.
    """
    policy = policy or OutboundPolicy()
    address = _as_address(ip)
    target = metadata_target(address)
    if target is not None and not policy.address_allowed(address):
        _refuse(address, host, _metadata_reason(address, target))


def _metadata_reason(address: IPAddress, target: IPAddress) -> str:
    # Message only: the refusal itself was decided by metadata_target.
    reason = _reason(address) or ""
    return reason if reason.startswith(METADATA) else f"{METADATA} ({target})"


def _refuse(address: IPAddress, host: str | None, reason: str) -> NoReturn:
    where = f"{host!r} ({address})" if host and host != str(address) else str(address)
    raise OutboundBlocked(f"outbound request to {where} refused: {reason}")


def _inet_aton_part(text: str) -> int | None:
    """One dotted part the way inet_aton reads it: 0x hex, leading-0 octal, else decimal."""
    try:
        if text[:2].lower() == "0x":
            return int(text[2:], 16) if text[2:] else 0
        if len(text) > 1 and text.startswith("0"):
            return int(text[1:], 8)
        return int(text, 10) if text.isdigit() else None
    except ValueError:
        return None


def _parse_inet_aton(text: str) -> ipaddress.IPv4Address | None:
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(p.isascii() and p.isalnum() for p in parts):
        return None
    values = [_inet_aton_part(p) for p in parts]
    if any(v is None for v in values):
        return None
    nums: list[int] = [v for v in values if v is not None]
    # The last part fills the remaining bytes: a / a.b (8.24) / a.b.c (8.8.16) / a.b.c.d.
    last_bits = 8 * (5 - len(nums))
    if any(n > 0xFF for n in nums[:-1]) or nums[-1] >= 1 << last_bits:
        return None
    value = 0
    for n in nums[:-1]:
        value = value << 8 | n
    value = value << last_bits | nums[-1]
    return ipaddress.IPv4Address(value)


def parse_host(host: str) -> IPAddress | None:
    """Parse a URL host as an IP address, seeing through numeric disguises.

    Accepts what the C library's ``inet_aton`` accepts ("2130706433", "0x7f000001", "0x7f.1",
    "0177.1", "127.1", "0177.0.0.01") and IPv6 with or without brackets ("[::1]",
    "fe80::1%25eth0"). Returns None for real hostnames.
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text.endswith("."):
        text = text[:-1]  # a fully-qualified "127.0.0.1." still means 127.0.0.1
    if ":" in text:
        try:
            return ipaddress.IPv6Address(unquote(text))
        except ValueError:
            return None
    return _parse_inet_aton(text)
