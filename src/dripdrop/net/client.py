"""The guarded client and ``guarded_request``, the one entry point for outbound HTTP."""

from __future__ import annotations

import asyncio
import functools
import ssl
from typing import Any

import aiohttp
import httpx2

from dripdrop.errors import ConfigurationError, PermanentError
from dripdrop.net.policy import MAX_TIMEOUT_MS, OutboundPolicy
from dripdrop.net.transport import GuardedTransport, checked_ssl_context, response_too_large
from dripdrop.net.wire import WIRE_OPTIONS, NotOnTheWire, new_session, wire_request
from dripdrop.timing.deadline import deadline as bound

# Options that would route requests around the guarded transport.
_FORBIDDEN = ("transport", "mounts", "proxy", "trust_env", "follow_redirects", "max_redirects")


class GuardedClient(httpx2.AsyncClient):
    """An ``AsyncClient`` bound to an :class:`OutboundPolicy`; build it with create_http_client.

    Its own methods (``get``, ``send`` …) go through the guarded httpx2 transport;
    :func:`guarded_request` goes through an aiohttp session under the same guard
    (:mod:`dripdrop.net.wire`), opened on first use and closed with the client."""

    policy: OutboundPolicy
    ssl_context: ssl.SSLContext
    _wire: aiohttp.ClientSession | None = None

    def wire_session(self) -> aiohttp.ClientSession:
        """The aiohttp session of this client (made in the running loop on first use)."""
        if self._wire is None or self._wire.closed:
            self._wire = new_session(self.policy, self.ssl_context)
        return self._wire

    async def _close_wire(self) -> None:
        if self._wire is not None:
            await self._wire.close()
            self._wire = None

    async def aclose(self) -> None:
        """Close both the httpx2 pool and the aiohttp session."""
        await self._close_wire()
        await super().aclose()

    async def __aexit__(self, *exc: Any) -> None:
        await self._close_wire()
        await super().__aexit__(*exc)


def create_http_client(policy: OutboundPolicy, **kwargs: Any) -> GuardedClient:
    """Build the guarded async HTTP client for ``policy``.

    ``kwargs`` go to ``httpx2.AsyncClient`` (``headers``, ``auth``, ``base_url``, ``timeout``
    …); ``verify`` (True or a verifying ``ssl.SSLContext``), ``http1``, ``http2``, ``limits``
    and ``retries`` configure the transport. Options that could bypass the guard
    (``transport``, ``mounts``, ``proxy``, ``trust_env``) or the redirect handling are refused,
    and ``verify=False`` raises :class:`ConfigurationError`.
    """
    bad = sorted(k for k in kwargs if k in _FORBIDDEN)
    if bad:
        raise ConfigurationError(f"create_http_client does not accept {', '.join(bad)}")
    verify: ssl.SSLContext | bool = kwargs.pop("verify", True)
    http2 = kwargs.pop("http2", False)
    if verify is True:
        ssl_context = _default_ssl_context(bool(http2))
    else:
        ssl_context = checked_ssl_context(verify)
    transport = GuardedTransport(
        policy,
        verify=ssl_context,
        http1=kwargs.pop("http1", True),
        http2=http2,
        limits=kwargs.pop("limits", None),
        retries=kwargs.pop("retries", 0),
    )
    kwargs.setdefault("timeout", httpx2.Timeout(policy.timeout))
    client = GuardedClient(
        transport=transport,
        # Environment proxies would be mounted as unguarded transports.
        trust_env=False,
        # Redirects are followed by guarded_request, hop by hop; the library's own following
        # (if a caller asks for it per request) still goes through the guarded transport.
        follow_redirects=False,
        max_redirects=policy.max_redirects,
        **kwargs,
    )
    client.policy = policy
    client.ssl_context = ssl_context
    return client


@functools.lru_cache(maxsize=2)
def _default_ssl_context(http2: bool) -> ssl.SSLContext:
    # Loading the trust store takes ~18 ms of CPU, and every run_due builds a client: one
    # context per process. Per HTTP/2 setting, since httpcore sets a context's ALPN protocols
    # from it on each connection (so clients that share one always set the same).
    return checked_ssl_context(True)


async def guarded_request(
    client: httpx2.AsyncClient,
    method: str,
    url: str | httpx2.URL,
    *,
    follow_redirects: bool = True,
    **kwargs: Any,
) -> httpx2.Response:
    """Send a request through the guard and return the fully read response.

    Every hop (the first request and each redirect) is resolved and vetted before connecting;
    at most ``policy.max_redirects`` redirects are followed (then :class:`PermanentError`
    "too many redirects"); the decoded body is capped at ``policy.max_response_bytes``
    (:class:`PermanentError` "response too large"); the whole call, redirects included, must
    finish within the request's own ``timeout`` when it names one (at most
    ``MAX_TIMEOUT_MS``), else ``policy.timeout`` seconds (``httpx2.TimeoutException``
    otherwise).
    Non-2xx responses are returned, not raised: pass them to ``classify_http_error``.
    ``kwargs`` are those of ``httpx2.AsyncClient.build_request`` (``json``, ``content``,
    ``headers``, ``params``, ``timeout``…).
    """
    if not isinstance(client, GuardedClient):
        raise ConfigurationError("guarded_request needs a client from create_http_client")
    policy = client.policy
    deadline = _deadline(kwargs.get("timeout"), policy)
    if WIRE_OPTIONS.issuperset(kwargs):  # what providers and hooks send: the fast path
        options = {k: v for k, v in kwargs.items() if k != "timeout"}
        session = client.wire_session()
        try:
            async with bound(deadline):  # asyncio.timeout's behaviour, one timer per loop
                return await wire_request(  # type: ignore[return-value]
                    session, policy, method, url, follow_redirects=follow_redirects, **options
                )
        except TimeoutError:
            host = httpx2.URL(str(url)).host
            raise httpx2.ReadTimeout(f"request to {host} exceeded {deadline}s") from None
        except NotOnTheWire:
            pass  # an exotic URL: the httpx2 transport below sends it, under the same guard
    request = client.build_request(method, url, **kwargs)
    try:
        async with asyncio.timeout(deadline):
            return await _send(client, request, policy, follow_redirects)
    except TimeoutError as exc:
        raise httpx2.ReadTimeout(
            f"request to {request.url.host} exceeded {deadline}s", request=request
        ) from exc


def _deadline(timeout: Any, policy: OutboundPolicy) -> float:
    """Seconds the whole call may take: the request's own timeout (a number, or the longest
    phase of an ``httpx2.Timeout``) up to MAX_TIMEOUT_MS, else the policy's default."""
    if isinstance(timeout, httpx2.Timeout):
        phases = [t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t]
        timeout = max(phases) if phases else None
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
        return min(float(timeout), MAX_TIMEOUT_MS / 1000)
    return policy.timeout


async def _send(
    client: GuardedClient, request: httpx2.Request, policy: OutboundPolicy, follow: bool
) -> httpx2.Response:
    history: list[httpx2.Response] = []
    while True:
        response = await client.send(request, stream=True, follow_redirects=False)
        next_request = response.next_request if follow else None
        if next_request is None:
            break
        await response.aclose()
        history.append(response)
        if len(history) > policy.max_redirects:
            raise PermanentError(
                f"too many redirects: more than {policy.max_redirects} from {history[0].url}",
                status=response.status_code,
            )
        request = next_request
    response.history = history
    await _read_capped(response, policy.max_response_bytes)
    return response


async def _read_capped(response: httpx2.Response, limit: int) -> None:
    """Like ``Response.aread`` but counting decoded bytes, so a compression bomb stops early."""
    chunks: list[bytes] = []
    total = 0
    try:
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > limit:
                raise response_too_large(limit, response.url)
            chunks.append(chunk)
    finally:
        await response.aclose()
    # Same attribute Response.aread fills; afterwards .content/.text/.json() work as usual.
    response._content = b"".join(chunks)
