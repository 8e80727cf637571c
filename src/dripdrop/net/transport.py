"""The guarded transport: vet the address at connect time and connect only to that address.

The check lives in an httpcore network backend, the one place that opens sockets. httpcore
asks it to ``connect_tcp(hostname, port)``; the backend resolves the name once, refuses the
connection if any address is blocked, then connects to the vetted IP itself — so there is no
second lookup to rebind. The connection pool, the ``Host`` header and TLS all keep using the
hostname, so HTTPS still sends SNI for the hostname and verifies its certificate.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpcore2
import httpx2

# httpcore2 does not export its default backend; it picks anyio or trio for the running loop.
from httpcore2._backends.auto import AutoBackend

from dripdrop.errors import ConfigurationError, OutboundBlocked, PermanentError
from dripdrop.net.guard import resolve_and_check
from dripdrop.net.policy import OutboundPolicy

ALLOWED_SCHEMES = frozenset({"http", "https"})


class GuardedBackend(httpcore2.AsyncNetworkBackend):
    """Network backend that refuses blocked destinations and pins connections to vetted IPs."""

    def __init__(self, policy: OutboundPolicy, inner: httpcore2.AsyncNetworkBackend | None = None):
        self.policy = policy
        self._inner = inner or AutoBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        """Resolve and vet ``host`` once, then connect to the first vetted address that answers."""
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve_and_check(host, port, self.policy)
        except TimeoutError as exc:
            raise httpcore2.ConnectTimeout(f"resolving {host!r} timed out") from exc
        except OSError as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                last = exc
        assert last is not None  # resolve_and_check never returns an empty list
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        """Unix sockets reach local services, so the guard never opens one."""
        raise OutboundBlocked(f"outbound request to unix socket {path!r} refused")

    async def sleep(self, seconds: float) -> None:
        """Delegate to the wrapped backend (used by httpcore's connect retries)."""
        await self._inner.sleep(seconds)


class _CappedStream(httpx2.AsyncByteStream):
    """Stops reading once more than ``limit`` (wire) bytes arrived."""

    def __init__(self, inner: httpx2.AsyncByteStream, limit: int, url: httpx2.URL):
        self._inner, self._limit, self._url = inner, limit, url

    async def __aiter__(self) -> AsyncIterator[bytes]:
        total = 0
        async for chunk in self._inner:
            total += len(chunk)
            if total > self._limit:
                raise response_too_large(self._limit, self._url)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def response_too_large(limit: int, url: httpx2.URL) -> PermanentError:
    """The error raised when a response body exceeds the policy's size cap."""
    return PermanentError(f"response too large: more than {limit} bytes from {url.host}")


def checked_ssl_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    """A verifying SSL context for ``verify`` (True: the default trust store); anything that
    would not verify is a ConfigurationError."""
    if verify is True:
        return httpx2.create_ssl_context(verify=True, trust_env=False)
    if (
        isinstance(verify, ssl.SSLContext)
        and verify.verify_mode == ssl.CERT_REQUIRED
        and verify.check_hostname
    ):
        return verify
    raise ConfigurationError("TLS certificate verification cannot be turned off")


class GuardedTransport(httpx2.AsyncHTTPTransport):
    """``AsyncHTTPTransport`` whose pool connects through :class:`GuardedBackend`.

    Also refuses non-HTTP schemes and caps the (wire) body at ``policy.max_response_bytes``.
    """

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        verify: ssl.SSLContext | bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx2.Limits | None = None,
        retries: int = 0,
    ):
        # Deliberately not calling super().__init__: it would build an unguarded pool. The
        # parent's request handling only uses ``self._pool``.
        limits = limits or httpx2.Limits()
        self.policy = policy
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=checked_ssl_context(verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=http1,
            http2=http2,
            retries=retries,
            network_backend=GuardedBackend(policy),
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send one request (one hop) through the guarded pool."""
        if request.url.scheme not in ALLOWED_SCHEMES:
            raise OutboundBlocked(f"outbound request refused: scheme {request.url.scheme!r}")
        response = await super().handle_async_request(request)
        limit = self.policy.max_response_bytes
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await response.aclose()
            raise response_too_large(limit, request.url)
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        response.stream = _CappedStream(response.stream, limit, request.url)
        return response
