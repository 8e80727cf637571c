"""What every provider module produces and needs: normalised events, the request as received,
the refusal of a bad signature, and small parsing helpers."""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from dripdrop.inbound.message_ids import message_id_key

#: Event types, weakest first: an execution's ``delivery_status`` only moves to an equal or
#: stronger one, so a late "delivered" never hides an "opened", and a bounce or complaint that
#: arrives after "delivered" replaces it.
EVENT_TYPES: tuple[str, ...] = (
    "sent",  # the provider accepted the message (SendGrid processed, SES Send, Twilio sent)
    "deferred",  # delivery delayed; the provider keeps trying
    "soft_bounced",  # refused for now (mailbox full, greylisting…); counts toward a threshold
    "delivered",
    "opened",
    "clicked",
    "failed",  # given up without a bounce (dropped, rejected, SMS undelivered)
    "bounced",  # hard bounce: the address does not exist → suppression
    "unsubscribed",  # the recipient opted out at the provider → suppression
    "complained",  # marked as spam → suppression
)
RANK = {name: rank for rank, name in enumerate(EVENT_TYPES)}

#: Seconds a signed timestamp may be away from now (Svix's documented tolerance; Mailgun and
#: SendGrid advise a check without a number). A replay inside it is stored once anyway.
TOLERANCE_SECONDS = 300


class SignatureRefused(Exception):
    """The request is not the provider's: unsigned, wrongly signed or too old. The message
    says why, never what the body or the secret holds."""


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One event, in DripDrop's words. ``provider_event_id`` is unique per provider (a retry of
    the same event carries the same id); ``data`` holds a few documented fields, no secrets."""

    provider_event_id: str
    type: str
    provider_message_id: str | None
    occurred_at: datetime
    recipient: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InboundRequest:
    """A webhook request as received: ``url`` is the URL the app saw (behind a proxy, see
    :func:`public_url`), ``headers`` lower-cased names."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def form(self) -> list[tuple[str, str]]:
        """The body as ``application/x-www-form-urlencoded`` pairs, in order."""
        return parse_qsl(self.body.decode("utf-8", errors="replace"), keep_blank_values=True)


def public_url(request: InboundRequest) -> str:
    """The URL the sender used: behind a TLS-terminating proxy the app sees ``http://`` and an
    inner host; ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` (first values) say what it was.
    Only used to recompute a signature, so a forged header can only make it fail."""
    parts = urlsplit(request.url)
    proto = (request.header("x-forwarded-proto") or "").split(",")[0].strip()
    host = (request.header("x-forwarded-host") or "").split(",")[0].strip()
    return urlunsplit(
        (proto or parts.scheme, host or parts.netloc, parts.path, parts.query, parts.fragment)
    )


def check_age(timestamp: Any, *, tolerance: float = TOLERANCE_SECONDS) -> None:
    """Refuse a signed timestamp (Unix seconds) further than ``tolerance`` from now (real
    time: signatures are about the world's clock, not the engine's)."""
    try:
        when = float(timestamp)
    except (TypeError, ValueError):
        raise SignatureRefused("the signature timestamp is not a number") from None
    if abs(time.time() - when) > tolerance:
        raise SignatureRefused("the signature timestamp is too old (or in the future)")


def same(expected: str | bytes, given: str | bytes | None) -> bool:
    """Constant-time comparison (a timing difference must not reveal a signature)."""
    if given is None:
        return False
    a = expected.encode() if isinstance(expected, str) else expected
    b = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(a, b)


def from_unix(value: Any) -> datetime | None:
    """A datetime from Unix seconds (int, float or numeric text)."""
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def from_iso(value: Any) -> datetime | None:
    """A datetime from RFC 3339 / ISO 8601 text (``Z`` and 7-digit fractions accepted)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    # .NET writes 7 fractional digits (Postmark); Python reads at most 6.
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


def link_without_query(url: Any) -> str | None:
    """A clicked link without its query and fragment: those often carry tokens (password
    resets, magic links), which must not be stored."""
    if not isinstance(url, str) or not url:
        return None
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def event(
    provider_event_id: Any,
    kind: str,
    message_id: Any,
    occurred_at: datetime | None,
    recipient: Any = None,
    **data: Any,
) -> ProviderEvent:
    """A ProviderEvent with its ids normalised and empty data left out."""
    return ProviderEvent(
        provider_event_id=str(provider_event_id)[:500],
        type=kind,
        provider_message_id=message_id_key(message_id),
        occurred_at=occurred_at or now_utc(),
        recipient=str(recipient)[:500] if recipient else None,
        data={k: v for k, v in data.items() if v not in (None, "", [], {})},
    )
