"""Turn HTTP failures into DripDrop's TransientError / PermanentError."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx2

from dripdrop.errors import DeliveryError, OutboundBlocked, PermanentError, TransientError
from dripdrop.net.wire import WireResponse

MAX_RETRY_AFTER = 3600.0
EXCERPT_CHARS = 500
# Headers worth keeping in a delivery log; never cookies or auth.
_KEPT_HEADERS = (
    "content-type",
    "retry-after",
    "date",
    "x-request-id",
    "request-id",
    "x-amzn-requestid",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date).

    Returns None when absent or unparseable, 0 for dates in the past, and caps the result at
    one hour so a hostile or buggy server cannot park a message for days.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are always GMT
            when = when.replace(tzinfo=UTC)
        now = now or datetime.now(UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _body(response: httpx2.Response | WireResponse) -> Any:
    try:
        text = response.text
    except (httpx2.ResponseNotRead, httpx2.StreamError, UnicodeDecodeError):
        return None
    if "json" in response.headers.get("content-type", "") or text[:1] in "{[":
        try:
            return json.loads(text) if len(text) <= 4 * EXCERPT_CHARS else text[:EXCERPT_CHARS]
        except ValueError:
            pass
    return text[:EXCERPT_CHARS]


def response_summary(response: httpx2.Response | WireResponse) -> dict[str, Any]:
    """``{status, body, headers}`` for a delivery log: parsed JSON or a text excerpt."""
    headers = {k: response.headers[k] for k in _KEPT_HEADERS if k in response.headers}
    return {"status": response.status_code, "body": _body(response), "headers": headers}


def _excerpt(body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    return text[:EXCERPT_CHARS]


def _from_response(response: httpx2.Response | WireResponse) -> TransientError | PermanentError:
    status = response.status_code
    summary = response_summary(response)
    excerpt = _excerpt(summary["body"]) if summary["body"] not in (None, "") else ""
    message = f"HTTP {status} {response.reason_phrase}".rstrip()
    if excerpt:
        message += f": {excerpt}"
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return TransientError(message, retry_after=retry_after, response=summary, status=status)
    if status < 300:
        raise ValueError(f"HTTP {status} is a success, not an error")
    return PermanentError(message, response=summary, status=status)


def classify_http_error(
    exc_or_response: BaseException | httpx2.Response | WireResponse,
) -> TransientError | PermanentError:
    """Classify a failed HTTP exchange for the retry logic.

    Connection errors, timeouts, 5xx and 429 are transient (``retry_after`` from
    ``Retry-After``); other 4xx, 3xx that were not followed, malformed URLs and guard refusals
    are permanent. The result's ``response`` holds ``{status, body, headers}`` when there was
    a response. Raises ValueError for a 1xx/2xx response, which is not an error.
    """
    item = exc_or_response
    if isinstance(item, httpx2.Response | WireResponse):
        return _from_response(item)
    if isinstance(item, TransientError | PermanentError):
        return item
    if isinstance(item, httpx2.HTTPStatusError):
        error = _from_response(item.response)
    elif isinstance(item, httpx2.TimeoutException):
        error = TransientError(f"request timed out: {item}")
    elif isinstance(item, httpx2.UnsupportedProtocol | httpx2.LocalProtocolError):
        error = PermanentError(f"invalid request: {item}")
    elif isinstance(item, httpx2.TransportError | ConnectionError | OSError):
        error = TransientError(f"network error: {item or type(item).__name__}")
    elif isinstance(item, OutboundBlocked | httpx2.InvalidURL | ValueError):
        error = PermanentError(str(item))
    elif isinstance(item, DeliveryError):
        error = PermanentError(str(item), response=item.response, status=item.status)
    else:
        error = PermanentError(f"{type(item).__name__}: {item}")
    error.__cause__ = item
    return error
