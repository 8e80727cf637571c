"""Shared HTTP plumbing for the HTTP providers.

Every provider sends through :func:`send` (the delivery context's shared, guarded client), reads
answers with :func:`parse_body` and turns failures into errors with :func:`error_for`. They take
the adapter's :class:`~dripdrop.channels.secrets.Secrets` (``Secrets.of(adapter)``): :func:`send`
adds the request's ``Authorization`` header to them and hands back the answer already scrubbed,
so a token echoed in any form (raw, base64 of a Basic pair, percent-encoded) reaches neither the
stored response, nor an error message, nor a log — and is scrubbed before any excerpt is cut.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx2
from multidict import CIMultiDict
from pydantic import Field
from pydantic import ValidationError as PydanticValidationError

from dripdrop.channels.base import DeliveryContext, Fields
from dripdrop.channels.memo import PerObject
from dripdrop.channels.secrets import Secrets
from dripdrop.errors import (
    ConfigurationError,
    DeliveryError,
    OutboundBlocked,
    PermanentError,
    TransientError,
)
from dripdrop.net.client import GuardedClient, guarded_request
from dripdrop.net.policy import MAX_TIMEOUT_MS
from dripdrop.net.wire import WireResponse

__all__ = [
    "Secrets",
    "TimeoutMs",
    "basic_auth",
    "error_for",
    "load",
    "parse_body",
    "rebase",
    "retry_after",
    "scrub_response",
    "send",
    "url_join",
]

F = TypeVar("F", bound=Fields)

#: A per-request timeout in milliseconds, as adapters' ``config.timeout_ms`` declare it: the
#: guard honours it up to :data:`~dripdrop.net.policy.MAX_TIMEOUT_MS`, so validation refuses more.
TimeoutMs = Annotated[int, Field(gt=0, le=MAX_TIMEOUT_MS)]

#: An answer: httpx2's from a plain client, :class:`WireResponse` from the guarded client.
Response = httpx2.Response | WireResponse


def load(model: type[F], data: dict[str, Any] | None, where: str) -> F:
    """Parse an adapter's credentials or config; a PermanentError naming fields (never values).

    No stored credentials at all (NULL or ``{}``, e.g. written by hand in SQL) is said so: the
    delivery fails before any request, never goes out unauthenticated.
    """
    return _parsed.get((data,), lambda: _validate(model, data, where), model)


def _validate(model: type[F], data: dict[str, Any] | None, where: str) -> F:
    try:
        return model.model_validate(data or {})
    except PydanticValidationError as exc:
        names = ", ".join(".".join(str(p) for p in e["loc"]) or where for e in exc.errors())
        if not data and where == "credentials":
            raise PermanentError(
                f"adapter credentials missing: {names} (the adapter has no stored credentials; "
                "store them again)"
            ) from None
        raise PermanentError(f"adapter {where} invalid or missing: {names}") from None


_parsed = PerObject()  # each adapter dict is parsed once


def url_join(base_url: str, path: str) -> str:
    """``base_url`` + ``path`` with exactly one slash between them."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def rebase(url: str, base_url: str | None) -> str:
    """Point a full URL (a chat webhook) at ``base_url``'s scheme and host, keeping its path."""
    if not base_url:
        return url
    base, parts = urlsplit(base_url), urlsplit(url)
    path = base.path.rstrip("/") + parts.path
    return urlunsplit((base.scheme, base.netloc, path, parts.query, parts.fragment))


def _classifiers() -> tuple[Any, Any]:
    # Imported late: dripdrop.net is a sibling leaf, and channels must load without it.
    from dripdrop.net import classify_http_error, parse_retry_after

    return classify_http_error, parse_retry_after


def basic_auth(user: str, password: str) -> str:
    """An ``Authorization`` header value for HTTP Basic (a header, so it works with the guard)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def retry_after(value: Any) -> float | None:
    """Seconds from a ``Retry-After`` header value or a number in a provider's JSON body."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(float(value), 0.0)
    return _classifiers()[1](str(value))


def _rebuild(
    err: DeliveryError,
    secrets: Secrets,
    label: str,
    detail: str | None,
    *,
    transient: bool | None = None,
    wait: float | None = None,
) -> DeliveryError:
    message = f"{label}: {detail}" if detail else f"{label}: {err}"
    kind_transient = isinstance(err, TransientError) if transient is None else transient
    if kind_transient:
        hint = wait if wait is not None else getattr(err, "retry_after", None)
        rebuilt: DeliveryError = TransientError(
            message, retry_after=hint, response=err.response, status=err.status
        )
    else:
        rebuilt = PermanentError(message, response=err.response, status=err.status)
    return secrets.scrub_error(rebuilt)


def scrub_response(response: Response, secrets: Secrets) -> Response:
    """``response`` with every secret form replaced in its body and headers (itself when none
    occurs), so whatever reads it next — JSON parsing, excerpts, error texts — never sees one."""
    if not secrets:
        return response
    text = response.text
    items = list(
        response.headers.multi_items()
        if isinstance(response, httpx2.Response)
        else response.headers.items()
    )
    # One search over the body and the header values (a match across the joints only sends
    # the answer down the exact path below, which scrubs each part on its own).
    if not secrets.found_in("\n".join([text, *(value for _, value in items)])):
        return response
    clean = secrets.scrub(text)
    # The body is decoded already: drop the headers that described the wire form.
    headers = [
        (name, secrets.scrub(value))
        for name, value in items
        if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    if isinstance(response, WireResponse):
        return WireResponse(
            response.status_code,
            CIMultiDict(headers),
            clean.encode("utf-8", errors="replace"),
            url=str(response.url),
            method=response.request.method,
            reason_phrase=response.reason_phrase,
            encoding="utf-8",
            history=response.history,
        )
    try:
        request: httpx2.Request | None = response.request
    except RuntimeError:  # an answer built by hand (tests) has none
        request = None
    encoding = response.encoding or "utf-8"
    scrubbed = httpx2.Response(
        response.status_code,
        headers=headers,
        content=clean.encode(encoding, errors="replace"),
        request=request,
        extensions=response.extensions,
        history=response.history,
    )
    scrubbed.encoding = encoding
    return scrubbed


def _timeout(timeout_ms: Any) -> float | None:
    """Seconds from a step's or adapter's ``timeout_ms``; above the maximum is refused, since
    the guard would not wait that long."""
    if timeout_ms in (None, "", 0):
        return None
    try:
        value = float(timeout_ms)
    except (TypeError, ValueError):
        raise PermanentError(
            f"timeout_ms must be a number of milliseconds: {timeout_ms!r}"
        ) from None
    if not 0 < value <= MAX_TIMEOUT_MS:
        raise PermanentError(f"timeout_ms must be from 1 to {MAX_TIMEOUT_MS}, not {timeout_ms}")
    return value / 1000


async def send(
    ctx: DeliveryContext,
    method: str,
    url: str,
    *,
    secrets: Secrets,
    label: str,
    timeout_ms: Any = None,
    **kwargs: Any,
) -> Response:
    """One request through ``ctx.http``; the answer comes back scrubbed of ``secrets``, and
    transport failures become classified, scrubbed errors.

    The request's ``Authorization`` header joins ``secrets`` first, in every encoding.
    ``timeout_ms`` overrides the client's timeout for this request only (up to
    :data:`~dripdrop.net.policy.MAX_TIMEOUT_MS`).
    """
    client = ctx.http
    if client is None:
        raise ConfigurationError("the delivery context has no HTTP client (ctx.http)")
    for name, value in (kwargs.get("headers") or {}).items():
        secrets.add_header(name, value)
    timeout = _timeout(timeout_ms)
    if timeout is not None:
        kwargs["timeout"] = timeout
    try:
        if isinstance(client, GuardedClient):
            # The worker's client: re-vetted redirects, capped body, overall deadline.
            response = await guarded_request(client, method, url, **kwargs)
        else:
            response = await client.request(method, url, **kwargs)
    except (httpx2.HTTPError, httpx2.InvalidURL, DeliveryError, OutboundBlocked, OSError) as exc:
        # The guard's OutboundBlocked is permanent; network failures and timeouts transient.
        err = _classifiers()[0](exc)
        # No chaining: the original exception may quote the URL, and with it a token.
        raise _rebuild(err, secrets, label, None) from None
    return scrub_response(response, secrets)


def parse_body(response: Response) -> Any:
    """The answer as JSON when it parses, else text (``None`` when empty)."""
    text = response.text
    if not text:
        return None
    if "json" in response.headers.get("content-type", "") or text.lstrip()[:1] in "{[":
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def error_for(
    response: Response,
    *,
    secrets: Secrets,
    label: str,
    detail: str | None = None,
    transient: bool | None = None,
    wait: float | None = None,
) -> DeliveryError:
    """The error for a failed answer, classified by status unless ``transient`` overrides it.

    ``detail`` (the provider's own error text) replaces the generic message; ``wait`` replaces
    the Retry-After hint (Telegram and Discord say it in the body). The answer is scrubbed
    before it is classified, so no excerpt can cut a secret in half.
    """
    response = scrub_response(response, secrets)
    status = response.status_code
    if 200 <= status < 300:
        # A 2xx that the provider's body marks as failed (Slack ok:false, Vonage status).
        err: DeliveryError = PermanentError(
            f"HTTP {status}",
            response={"status": status, "body": parse_body(response), "headers": {}},
            status=status,
        )
    elif 300 <= status < 400:
        err = PermanentError(
            f"HTTP {status} redirect not followed",
            status=status,
            response={"status": status, "body": None, "headers": {}},
        )
    else:
        err = _classifiers()[0](response)
    return _rebuild(err, secrets, label, detail, transient=transient, wait=wait)
