"""Guarded TCP sockets for the outbound paths that are not HTTP (SMTP, Redis).

Same rule as :class:`~dripdrop.net.transport.GuardedBackend`: the host is resolved once by
:func:`~dripdrop.net.guard.resolve_and_check`, every address is vetted, and the socket connects
to a vetted IP, never to the name (no second lookup to rebind). The caller hands the connected
socket to its library and keeps using the hostname for TLS (SNI and certificate checks).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from dripdrop.net.addresses import parse_host
from dripdrop.net.client import GuardedClient
from dripdrop.net.guard import resolve_and_check
from dripdrop.net.policy import OutboundPolicy


def policy_of(client: Any) -> OutboundPolicy:
    """The policy of the worker's guarded HTTP client (``ctx.http``); the strictest otherwise.

    Non-HTTP providers have no client of their own: they follow the instance's policy, and
    without one (a bare ``DeliveryContext()``) nothing private is reachable.
    """
    return client.policy if isinstance(client, GuardedClient) else OutboundPolicy()


def tls_server_name(host: str) -> str:
    """The name to verify a certificate against: the canonical IP for numeric hosts."""
    numeric = parse_host(host)
    return str(numeric) if numeric is not None else host.strip()


async def connect_guarded(
    host: str, port: int, policy: OutboundPolicy, *, timeout: float | None = None
) -> socket.socket:
    """A non-blocking TCP socket connected to a vetted address of ``host``.

    Tries each vetted address in turn; ``timeout`` bounds the lookup and all attempts.
    Raises :class:`~dripdrop.errors.OutboundBlocked` when the policy refuses the host (before
    any connect), ``OSError`` when it does not resolve or no address answers, and
    ``TimeoutError``.
    """
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        addresses = await resolve_and_check(host, port, policy)
        last: OSError | None = None
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, (address, port))
            except OSError as exc:
                sock.close()
                last = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
    assert last is not None  # resolve_and_check never returns an empty list
    raise last
