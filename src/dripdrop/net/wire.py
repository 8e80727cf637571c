"""The delivery path of :func:`~dripdrop.net.guarded_request`: aiohttp under the same guard.

httpx2 costs about 1 ms of CPU per request here (its connection pool and models), aiohttp about
0.2 ms: for every provider the HTTP client, not the engine, was the ceiling. So the requests the
worker makes go through one aiohttp session per :class:`~dripdrop.net.GuardedClient`, with every
rule of the httpx2 transport kept:

* **Vetted, pinned addresses.** :class:`GuardedResolver` is the session's only resolver: it
  resolves a name once with :func:`~dripdrop.net.guard.resolve_and_check` and hands aiohttp the
  vetted addresses, which it connects to while TLS still verifies (and sends SNI for) the name.
  aiohttp never resolves an IP literal, so those are vetted here before the request.
* **Redirects** are followed hop by hop here (each hop vetted again), at most
  ``policy.max_redirects``, with httpx's method rules, and credentials are dropped when a hop
  changes origin.
* **TLS** always verifies (the client's checked context); no proxies from the environment.
* **Size caps**: a ``Content-Length`` above the cap is refused before reading; the decoded body
  is counted while it streams, so a compression bomb stops at the cap.
* **One deadline** for the whole call, redirects included.

Failures are raised as the httpx2 exceptions the rest of DripDrop classifies
(``httpx2.ConnectError``, ``httpx2.ReadTimeout`` …), and the answer is a :class:`WireResponse`
with the parts of ``httpx2.Response`` that providers read.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import re
import socket
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import httpx2
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from dripdrop.errors import DripDropError, OutboundBlocked, PermanentError
from dripdrop.net.addresses import check_address, parse_host
from dripdrop.net.guard import resolve_and_check
from dripdrop.net.policy import OutboundPolicy

ALLOWED_SCHEMES = frozenset({"http", "https"})
# Options guarded_request's fast path understands (httpx2's build_request names).
WIRE_OPTIONS = frozenset({"json", "data", "content", "headers", "params", "timeout"})
# Connections per host: above the worker's usual concurrency, so a host is never starved by its
# own pool; the worker's concurrency bounds the total.
PER_HOST = 256
# Same defaults httpx2 sends, so providers see the same requests on either path.
_DEFAULT_HEADERS = {"Accept": "*/*", "User-Agent": "dripdrop"}
_CHUNK = 64 * 1024


class NotOnTheWire(Exception):
    """A URL this path cannot send as written (yarl refuses IPv4 literals such as ``127.1``
    that httpx2 accepts): the caller sends it through the httpx2 transport instead."""


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, vetting every address of a name before aiohttp may connect to it."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The vetted addresses of ``host`` (OutboundBlocked if any of them is refused)."""
        try:
            addresses = await resolve_and_check(host, port, self.policy)
        except OSError as exc:  # aiohttp reports strerror in its connection error
            raise OSError(exc.errno or 0, f"cannot resolve {host!r}: {exc}") from exc
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        """Nothing to release (lookups run on the loop's executor)."""


class WireRequest:
    """What was sent, as ``httpx2.Request`` shows it: ``method``, ``url`` and ``headers``."""

    __slots__ = ("headers", "method", "url")

    def __init__(self, method: str, url: httpx2.URL | str, headers: Mapping[str, str]) -> None:
        self.method, self.headers = method, headers
        self.url = url if isinstance(url, httpx2.URL) else httpx2.URL(url)


class WireResponse:
    """An answer read whole, with the ``httpx2.Response`` attributes DripDrop uses."""

    __slots__ = (
        "_method",
        "_text",
        "_url",
        "content",
        "encoding",
        "extensions",
        "headers",
        "history",
        "reason_phrase",
        "status_code",
    )

    def __init__(
        self,
        status_code: int,
        headers: CIMultiDictProxy[str] | CIMultiDict[str],
        content: bytes,
        *,
        url: str,
        method: str = "GET",
        reason_phrase: str = "",
        encoding: str | None = None,
        history: list[WireResponse] | None = None,
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.reason_phrase = reason_phrase
        self.encoding = encoding
        self.history = history or []
        self.extensions: dict[str, Any] = {}
        self._url = url
        self._method = method
        self._text: str | None = None

    @property
    def url(self) -> httpx2.URL:
        return httpx2.URL(self._url)

    @property
    def request(self) -> WireRequest:
        return WireRequest(self._method, self._url, {})

    @property
    def text(self) -> str:
        if self._text is None:  # decoded once: the scrubber, the parser and excerpts read it
            self._text = self.content.decode(self.encoding or "utf-8", errors="replace")
        return self._text

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def is_error(self) -> bool:
        return self.status_code >= 400

    @property
    def is_redirect(self) -> bool:
        return self.status_code in (301, 302, 303, 307, 308) and "location" in self.headers

    async def aclose(self) -> None:
        """Read whole already: nothing to close."""

    def __repr__(self) -> str:
        return f"<WireResponse [{self.status_code}]>"


def new_session(policy: OutboundPolicy, ssl_context: ssl.SSLContext) -> aiohttp.ClientSession:
    """One session per guarded client: its pools stay open across batches until ``aclose``."""
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(policy),
        ssl=ssl_context,
        limit=0,  # the worker's concurrency bounds the total
        limit_per_host=PER_HOST,
        ttl_dns_cache=10,  # vetted answers only: a cached one is as safe as a fresh one
        enable_cleanup_closed=False,
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,  # environment proxies would route around the guard
        auto_decompress=True,  # decoded bytes are what the size cap counts
        timeout=aiohttp.ClientTimeout(total=None),
        skip_auto_headers=("User-Agent",),
    )


_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")


@functools.lru_cache(maxsize=4096)
def canonical_host(host: str) -> bool:
    """False for an IP address written in a form aiohttp would refuse or rewrite (``127.1``,
    ``0177.0.0.1``, ``2130706433``, ``::ffff:127.0.0.1``): the Host header must stay as given."""
    lowered = host.lower()
    if ":" in lowered or all(_NUMERIC_LABEL.fullmatch(p) for p in lowered.split(".")):
        try:
            return str(ipaddress.ip_address(lowered)) == lowered
        except ValueError:
            return False
    return True


def _primitive(value: Any) -> str:
    # As httpx2 encodes form values: True → "true", None → "".
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def encode_body(kwargs: Mapping[str, Any], headers: dict[str, str]) -> bytes | None:
    """The body bytes httpx2 would send for ``json``/``data``/``content``, and their headers."""
    body: bytes | None = None
    content_type = None
    if kwargs.get("content") is not None:
        content = kwargs["content"]
        body = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    elif kwargs.get("data") is not None:
        pairs = [
            (key, _primitive(item))
            for key, value in kwargs["data"].items()
            for item in (value if isinstance(value, list | tuple) else [value])
        ]
        body = urlencode(pairs, doseq=True).encode("utf-8")
        content_type = "application/x-www-form-urlencoded"
    elif kwargs.get("json") is not None:
        text = json.dumps(
            kwargs["json"], ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
        body = text.encode("utf-8")
        content_type = "application/json"
    given = {name.lower() for name in headers}
    if content_type and "content-type" not in given:
        headers["Content-Type"] = content_type
    if body is not None and "content-length" not in given:
        headers["Content-Length"] = str(len(body))
    return body


def redirect_method(status: int, method: str) -> str:
    """httpx's rules: 303 turns anything but HEAD into GET; 301/302 turn POST into GET."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def _same_origin(a: URL, b: URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


@functools.lru_cache(maxsize=4096)
def _vet_address(host: str, policy: OutboundPolicy) -> None:
    """resolve_and_check's rule for a numeric host (no lookup); a refusal raises and is not
    cached, an allowed address is (the policy of a client never changes)."""
    numeric = parse_host(host)
    if numeric is None:  # aiohttp took it for an address, our parser does not: refuse
        raise OutboundBlocked(f"outbound request refused: {host!r} is not a valid address")
    check_address(numeric, policy, host=host)


def vet_literal(url: URL, policy: OutboundPolicy) -> None:
    """Refuse a bad scheme, and vet an IP-literal host (aiohttp only resolves names)."""
    if url.scheme not in ALLOWED_SCHEMES:
        raise OutboundBlocked(f"outbound request refused: scheme {url.scheme!r}")
    host = url.raw_host or ""
    if not host:
        raise OutboundBlocked("outbound request refused: empty host")
    if aiohttp.helpers.is_ip_address(host):
        _vet_address(host, policy)


@functools.lru_cache(maxsize=4096)
def _first_hop(url: str, encoded: bool, policy: OutboundPolicy) -> URL:
    """A request's URL parsed and vetted (scheme, IP-literal host), once per URL and policy:
    providers post to the same few URLs all day. A refusal raises and is not cached."""
    try:
        target = URL(url, encoded=encoded)
    except ValueError as exc:
        raise NotOnTheWire(str(exc)) from None
    written = urlsplit(url).hostname or ""  # as given: yarl has normalised target's
    if not canonical_host(written):
        raise NotOnTheWire(f"host {written!r} is an IP address in a non-canonical form")
    vet_literal(target, policy)
    return target


async def _read(response: aiohttp.ClientResponse, limit: int, url: URL) -> bytes:
    """The decoded body, refused as soon as it (or its announced length) exceeds ``limit``."""
    headers = response.headers
    length = headers.get("Content-Length", "")
    if length.isdigit():
        if int(length) > limit:
            raise _too_large(limit, url)
        if "Content-Encoding" not in headers:  # the parser stops at the length: read it whole
            return await response.read()
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        total += len(chunk)
        if total > limit:
            raise _too_large(limit, url)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int, url: URL) -> PermanentError:
    return PermanentError(f"response too large: more than {limit} bytes from {url.host}")


def _wire_error(exc: BaseException, url: URL) -> Exception:
    """aiohttp's failure as the httpx2 exception DripDrop classifies (same kinds, same text)."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ClientSSLError):
        return httpx2.ConnectError(text)
    if isinstance(exc, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        return httpx2.ReadTimeout(text)
    if isinstance(exc, aiohttp.InvalidURL | ValueError):
        return httpx2.InvalidURL(text)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx2.RemoteProtocolError(text)
    if isinstance(exc, aiohttp.ClientResponseError):
        return httpx2.RemoteProtocolError(text)
    return httpx2.NetworkError(f"{type(exc).__name__}: {text} ({url.host})")


async def wire_request(
    session: aiohttp.ClientSession,
    policy: OutboundPolicy,
    method: str,
    url: str | httpx2.URL,
    *,
    follow_redirects: bool = True,
    json: Any = None,
    data: Any = None,
    content: Any = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> WireResponse:
    """Send one request (and its redirects) through ``session``; the deadline is the caller's."""
    method = method.upper()
    target = _first_hop(str(url), isinstance(url, httpx2.URL), policy)
    if params:
        target = target.update_query({k: _primitive(v) for k, v in params.items()})
    sent = {**_DEFAULT_HEADERS, **{str(k): str(v) for k, v in (headers or {}).items()}}
    body = encode_body({"json": json, "data": data, "content": content}, sent)
    history: list[WireResponse] = []
    while True:
        if history:  # the first hop was vetted with its URL
            vet_literal(target, policy)
        try:
            async with session.request(
                method, target, data=body, headers=sent, allow_redirects=False
            ) as response:
                location = response.headers.get("Location") if follow_redirects else None
                redirect = location is not None and response.status in (301, 302, 303, 307, 308)
                payload = (
                    b"" if redirect else await _read(response, policy.max_response_bytes, target)
                )
                answer = WireResponse(
                    response.status,
                    response.headers,
                    payload,
                    url=str(target),
                    method=method,
                    reason_phrase=response.reason or "",
                    encoding=response.charset,
                    history=history,
                )
        except DripDropError:  # the guard's refusal, a cap: already what callers expect
            raise
        except (aiohttp.ClientError, ValueError) as exc:
            # No chaining: aiohttp's text is kept, its objects are not.
            raise _wire_error(exc, target) from None
        if not redirect:
            return answer
        history = [*history, answer]
        if len(history) > policy.max_redirects:
            raise PermanentError(
                f"too many redirects: more than {policy.max_redirects} from {history[0].url}",
                status=answer.status_code,
            )
        following = target.join(URL(location))  # type: ignore[arg-type]
        new_method = redirect_method(answer.status_code, method)
        if new_method != method:  # the body goes with the old method (httpx does the same)
            body = None
            sent = {
                k: v for k, v in sent.items() if k.lower() not in ("content-type", "content-length")
            }
        if not _same_origin(target, following):  # credentials never follow to another origin
            sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
        method, target = new_method, following
