"""Shared HTTP plumbing for the HTTP providers.

Every provider sends through :func:`send` (the delivery context's shared, guarded client), reads
answers with :func:`parse_body` and turns failures into errors with :func:`error_for`. All three
take the adapter's secrets so tokens that travel in URLs (Telegram, chat webhooks) or echo back in
bodies never reach an error message or a delivery log.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx2
from pydantic import ValidationError as PydanticValidationError

from dripdrop.channels.base import DeliveryContext, Fields
from dripdrop.errors import (
    ConfigurationError,
    DeliveryError,
    OutboundBlocked,
    PermanentError,
    TransientError,
)

__all__ = [
    "Secrets",
    "basic_auth",
    "error_for",
    "load",
    "parse_body",
    "rebase",
    "retry_after",
    "send",
    "url_join",
]

REDACTED = "***"
F = TypeVar("F", bound=Fields)


class Secrets:
    """Values that must never appear in error text: credential values and secret URLs.

    A secret URL is also registered without its scheme and host, since errors often quote only
    the path (where Slack, Discord and Telegram keep their tokens).
    """

    def __init__(self, values: Iterable[Any] = ()) -> None:
        self._values: set[str] = set()
        for value in values:
            self.add(value)

    def add(self, value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                self.add(item)
        elif isinstance(value, str) and len(value) >= 4:  # tiny values would mangle every text
            self._values.add(value)
            parts = urlsplit(value)
            if parts.scheme in ("http", "https") and len(parts.path) > 1:
                self._values.add(urlunsplit(("", "", parts.path, parts.query, "")))

    def scrub(self, obj: Any) -> Any:
        """A copy of ``obj`` (str, dict, list) with every secret replaced by ``***``."""
        if isinstance(obj, str):
            # Longest first, so a URL is replaced whole before its path is.
            for value in sorted(self._values, key=len, reverse=True):
                obj = obj.replace(value, REDACTED)
            return obj
        if isinstance(obj, dict):
            return {k: self.scrub(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.scrub(v) for v in obj]
        return obj


def load(model: type[F], data: dict[str, Any] | None, where: str) -> F:
    """Parse an adapter's credentials or config; a PermanentError naming fields (never values)."""
    try:
        return model.model_validate(data or {})
    except PydanticValidationError as exc:
        names = ", ".join(".".join(str(p) for p in e["loc"]) or where for e in exc.errors())
        raise PermanentError(f"adapter {where} invalid or missing: {names}") from None


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
    response = secrets.scrub(err.response)
    kind_transient = isinstance(err, TransientError) if transient is None else transient
    if kind_transient:
        hint = wait if wait is not None else getattr(err, "retry_after", None)
        return TransientError(
            secrets.scrub(message), retry_after=hint, response=response, status=err.status
        )
    return PermanentError(secrets.scrub(message), response=response, status=err.status)


async def send(
    ctx: DeliveryContext,
    method: str,
    url: str,
    *,
    secrets: Secrets,
    label: str,
    timeout_ms: float | None = None,
    **kwargs: Any,
) -> httpx2.Response:
    """One request through ``ctx.http``; transport failures become classified, scrubbed errors.

    ``timeout_ms`` overrides the client's timeout for this request only.
    """
    client = ctx.http
    if client is None:
        raise ConfigurationError("the delivery context has no HTTP client (ctx.http)")
    if timeout_ms:
        kwargs["timeout"] = float(timeout_ms) / 1000
    from dripdrop.net import GuardedClient, guarded_request

    try:
        if isinstance(client, GuardedClient):
            # The worker's client: re-vetted redirects, capped body, overall deadline.
            return await guarded_request(client, method, url, **kwargs)
        return await client.request(method, url, **kwargs)
    except (httpx2.HTTPError, httpx2.InvalidURL, DeliveryError, OutboundBlocked, OSError) as exc:
        # The guard's OutboundBlocked is permanent; network failures and timeouts transient.
        err = _classifiers()[0](exc)
        # No chaining: the original exception may quote the URL, and with it a token.
        raise _rebuild(err, secrets, label, None) from None


def parse_body(response: httpx2.Response) -> Any:
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
    response: httpx2.Response,
    *,
    secrets: Secrets,
    label: str,
    detail: str | None = None,
    transient: bool | None = None,
    wait: float | None = None,
) -> DeliveryError:
    """The error for a failed answer, classified by status unless ``transient`` overrides it.

    ``detail`` (the provider's own error text) replaces the generic message; ``wait`` replaces
    the Retry-After hint (Telegram and Discord say it in the body).
    """
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
