"""Resend webhooks, signed the Svix way.

``svix-signature`` holds space-separated ``v1,<base64 HMAC-SHA256>`` of
``{svix-id}.{svix-timestamp}.{raw body}``, keyed with the base64 part of the ``whsec_…`` signing
secret (credential ``webhook_secret``). ``svix-id`` is the event's id (the same on retries);
``data.email_id`` is the id the send API answered.
"""

from __future__ import annotations

import base64
import binascii
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
    from_iso,
    link_without_query,
    same,
)

CREDENTIAL = "webhook_secret"


def verify(
    body: bytes, msg_id: str | None, timestamp: str | None, signatures: str | None, secret: str
) -> None:
    """Refuse unless one of the ``v1`` signatures matches, with a recent timestamp."""
    if not msg_id or not timestamp or not signatures:
        raise SignatureRefused("missing svix-id, svix-timestamp or svix-signature")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (ValueError, binascii.Error):
        raise SignatureRefused("the webhook secret is not a whsec_ secret") from None
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    candidates = [s.partition(",") for s in signatures.split()]
    if not any(version == "v1" and same(expected, sig) for version, _, sig in candidates):
        raise SignatureRefused("bad signature")
    check_age(timestamp)


_KINDS = {
    "email.sent": "sent",
    "email.delivered": "delivered",
    "email.delivery_delayed": "deferred",
    "email.complained": "complained",
    "email.opened": "opened",
    "email.clicked": "clicked",
    "email.failed": "failed",
}


def parse(payload: Any, event_id: str) -> list[ProviderEvent]:
    """The event of one post (none for types DripDrop does not track)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        return []
    name, data = str(payload.get("type")), payload["data"]
    bounce = data.get("bounce") if isinstance(data.get("bounce"), dict) else {}
    if name == "email.bounced":
        kind = "bounced" if bounce.get("type") == "Permanent" else "soft_bounced"
    elif name in _KINDS:
        kind = _KINDS[name]
    else:
        return []
    to = data.get("to")
    click = data.get("click") if isinstance(data.get("click"), dict) else {}
    return [
        event(
            event_id,
            kind,
            data.get("email_id"),
            from_iso(payload.get("created_at")),
            to[0] if isinstance(to, list) and to else to,
            event=name,
            bounce_type=bounce.get("type"),
            bounce_subtype=bounce.get("subType"),
            description=bounce.get("message"),
            url=link_without_query(click.get("link")),
        )
    ]


async def receive(request: InboundRequest, adapter: AdapterInfo, ctx: Any) -> list[ProviderEvent]:
    """Verify and parse one Resend webhook post."""
    secret = adapter.credentials.get(CREDENTIAL)
    if not secret:
        raise SignatureRefused(f"the adapter has no credentials.{CREDENTIAL}")
    msg_id = request.header("svix-id")
    verify(
        request.body,
        msg_id,
        request.header("svix-timestamp"),
        request.header("svix-signature"),
        str(secret),
    )
    try:
        return parse(json.loads(request.body), str(msg_id))
    except ValueError:
        return []
