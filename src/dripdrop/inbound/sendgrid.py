"""SendGrid's Signed Event Webhook: a JSON array of events, signed with ECDSA (P-256, SHA-256).

``X-Twilio-Email-Event-Webhook-Signature`` is the base64 DER signature of
``X-Twilio-Email-Event-Webhook-Timestamp`` + the raw body; the verification key (Mail Settings →
Signed Event Webhook) is the base64 DER public key, stored as credential ``webhook_public_key``.
``sg_message_id`` is the ``X-Message-Id`` the send API answered, followed by ``.filter…``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from dripdrop.channels.base import AdapterInfo
from dripdrop.inbound.events import (
    InboundRequest,
    ProviderEvent,
    SignatureRefused,
    check_age,
    event,
    from_unix,
    link_without_query,
)

CREDENTIAL = "webhook_public_key"
SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"


def verify(body: bytes, signature: str | None, timestamp: str | None, public_key: str) -> None:
    """Refuse unless ``signature`` is the key's ECDSA signature of timestamp + body, recent."""
    if not signature or not timestamp:
        raise SignatureRefused("missing signature headers")
    try:
        key = load_der_public_key(base64.b64decode(public_key.strip()))
        raw = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error):
        raise SignatureRefused("unreadable public key or signature") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureRefused("the public key is not an elliptic-curve key")
    try:
        key.verify(raw, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureRefused("bad signature") from None
    check_age(timestamp)


def _kind(item: dict[str, Any]) -> str | None:
    name = item.get("event")
    if name == "bounce":
        # "blocked" is a refusal for now (reputation, content); "bounce" is permanent.
        return "soft_bounced" if item.get("type") == "blocked" else "bounced"
    return {
        "processed": "sent",
        "delivered": "delivered",
        "deferred": "deferred",
        "dropped": "failed",
        "open": "opened",
        "click": "clicked",
        "spamreport": "complained",
        "unsubscribe": "unsubscribed",
        "group_unsubscribe": "unsubscribed",
    }.get(str(name))


def _message_id(value: Any) -> str | None:
    # "<X-Message-Id>.filterdrecv-…" → the id the send API answered.
    return str(value).split(".", 1)[0] if value else None


def parse(items: Any) -> list[ProviderEvent]:
    """The events of one post (those DripDrop tracks)."""
    out: list[ProviderEvent] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not item.get("sg_event_id"):
            continue
        kind = _kind(item)
        if kind is None:
            continue
        out.append(
            event(
                item["sg_event_id"],
                kind,
                _message_id(item.get("sg_message_id")),
                from_unix(item.get("timestamp")),
                item.get("email"),
                event=item.get("event"),
                type=item.get("type"),
                reason=item.get("reason"),
                status=item.get("status"),
                response=item.get("response"),
                url=link_without_query(item.get("url")),
                asm_group_id=item.get("asm_group_id"),
            )
        )
    return out


async def receive(request: InboundRequest, adapter: AdapterInfo, ctx: Any) -> list[ProviderEvent]:
    """Verify and parse one SendGrid Event Webhook post."""
    key = adapter.credentials.get(CREDENTIAL)
    if not key:
        raise SignatureRefused(f"the adapter has no credentials.{CREDENTIAL}")
    verify(request.body, request.header(SIGNATURE), request.header(TIMESTAMP), str(key))
    try:
        return parse(json.loads(request.body))
    except ValueError:
        return []
