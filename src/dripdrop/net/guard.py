"""Resolve a destination once and vet every address it resolves to."""

from __future__ import annotations

import asyncio
import socket

from dripdrop.errors import OutboundBlocked
from dripdrop.net.addresses import check_address, check_metadata, parse_host
from dripdrop.net.policy import OutboundPolicy


async def resolve_and_check(host: str, port: int, policy: OutboundPolicy) -> list[str]:
    """Resolve ``host`` once and return its addresses, refusing if ANY of them is blocked.

    Numeric hosts (including disguises such as ``0x7f.1`` or ``[::1]``) are checked without a
    lookup. Hostnames are resolved with ``getaddrinfo`` exactly once; the caller must connect
    to the returned addresses only, never resolve the name again (DNS rebinding). An
    allowlisted hostname skips the private-range refusals (not the cloud-metadata one) and is
    still pinned to what it resolved to.

    Raises :class:`OutboundBlocked` for a refused destination and ``OSError``
    (``socket.gaierror``) when the name does not resolve.
    """
    name = host.strip()
    if not name:
        raise OutboundBlocked("outbound request refused: empty host")
    numeric = parse_host(name)
    if numeric is not None:
        check_address(numeric, policy, host=name)
        return [str(numeric)]  # canonical form: "127.0.0.1" for "0x7f.1"

    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OutboundBlocked(f"outbound request to {name!r} refused: it resolved to no IP address")
    allowed_name = policy.host_allowed(name)
    for address in addresses:
        if allowed_name:
            # An allowlisted name may be private, but never a way into cloud metadata.
            check_metadata(address, policy, host=name)
        else:
            check_address(address, policy, host=name)
    return addresses
