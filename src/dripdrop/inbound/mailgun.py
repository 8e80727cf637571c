"""Mailgun webhooks (JSON): ``{"signature": {timestamp, token, signature}, "event-data": {…}}``.

The signature is the hex HMAC-SHA256 of ``timestamp + token`` with the domain's HTTP webhook
signing key (credential ``webhook_signing_key``). The message id is
``event-data.message.headers.message-id``: the id Mailgun's send API answered, without its
angle brackets.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from dripdrop.channels.base import AdapterInfo
from dripdrop.inbound.events import (
    InboundRequest,
    ProviderEvent,
    SignatureRefused,
    check_age,
    event,
    from_unix,
    link_without_query,
    same,
)

CREDENTIAL = "webhook_signing_key"


def verify(payload: Any, signing_key: str) -> None:
    """Refuse the payload unless its ``signature`` object is Mailgun's, and recent."""
    signature = payload.get("signature") if isinstance(payload, dict) else None
    if not isinstance(signature, dict):
        raise SignatureRefused("no signature object")
    timestamp, token = signature.get("timestamp"), signature.get("token")
    given = signature.get("signature")
    if not all(isinstance(v, str | int) for v in (timestamp, token, given)):
        raise SignatureRefused("incomplete signature object")
    expected = hmac.new(
        signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    if not same(expected, str(given)):
        raise SignatureRefused("bad signature")
    check_age(timestamp)


def _kind(data: dict[str, Any]) -> str | None:
    name = data.get("event")
    if name == "failed":
        reason = data.get("reason")
        if data.get("severity") != "permanent":
            return "soft_bounced"
        if reason == "suppress-complaint":
            return "complained"
        if reason == "suppress-unsubscribe":
            return "unsubscribed"
        return "bounced"
    return {
        "accepted": "sent",
        "delivered": "delivered",
        "opened": "opened",
        "clicked": "clicked",
        "unsubscribed": "unsubscribed",
        "complained": "complained",
        "rejected": "failed",
    }.get(str(name))


def parse(payload: dict[str, Any]) -> list[ProviderEvent]:
    """The one event of a webhook call (none for events DripDrop does not track)."""
    data = payload.get("event-data")
    if not isinstance(data, dict):
        return []
    kind = _kind(data)
    if kind is None or not data.get("id"):
        return []
    message = data.get("message") if isinstance(data.get("message"), dict) else {}
    headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
    status = data.get("delivery-status") if isinstance(data.get("delivery-status"), dict) else {}
    return [
        event(
            data["id"],
            kind,
            headers.get("message-id"),
            from_unix(data.get("timestamp")),
            data.get("recipient"),
            event=data.get("event"),
            severity=data.get("severity"),
            reason=data.get("reason"),
            code=status.get("code"),
            description=(status.get("description") or status.get("message") or None),
            url=link_without_query(data.get("url")),
        )
    ]


async def receive(request: InboundRequest, adapter: AdapterInfo, ctx: Any) -> list[ProviderEvent]:
    """Verify and parse one Mailgun webhook call."""
    key = adapter.credentials.get(CREDENTIAL)
    if not key:
        raise SignatureRefused(f"the adapter has no credentials.{CREDENTIAL}")
    try:
        payload = json.loads(request.body)
    except ValueError:
        raise SignatureRefused("the body is not JSON (no signature to check)") from None
    verify(payload, str(key))
    return parse(payload)
