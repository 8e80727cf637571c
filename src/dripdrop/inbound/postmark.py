"""Postmark webhooks: one JSON record per call (``RecordType`` Delivery, Bounce, SpamComplaint,
Open, Click, SubscriptionChange).

Postmark does not sign its webhooks; it sends the credentials you put in the webhook URL as
HTTP Basic (``https://user:pass@host/inbound/postmark/<adapter id>``) and any custom header you
add. Credentials ``webhook_username`` + ``webhook_password`` are checked against Basic auth,
credential ``webhook_token`` against the ``X-Webhook-Token`` header; set at least one.
Records other than bounces carry no id of their own: theirs is made from the record type,
message id, recipient and time, the same for every retry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from dripdrop.channels.base import AdapterInfo
from dripdrop.inbound.events import (
    InboundRequest,
    ProviderEvent,
    SignatureRefused,
    event,
    from_iso,
    link_without_query,
    same,
)

TOKEN_HEADER = "x-webhook-token"

# Bounce types (Postmark's Bounce API) by what they mean for the address.
_HARD = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})
_SOFT = frozenset({"SoftBounce", "Transient", "DnsError", "Blocked", "DMARCPolicy"})
_COMPLAINT = frozenset({"SpamComplaint", "SpamNotification"})


def verify(request: InboundRequest, credentials: dict[str, Any]) -> None:
    """Refuse unless the Basic credentials or the token header match the adapter's."""
    user, password = credentials.get("webhook_username"), credentials.get("webhook_password")
    token = credentials.get("webhook_token")
    if not (user and password) and not token:
        raise SignatureRefused(
            "the adapter has neither credentials.webhook_username/webhook_password "
            "nor credentials.webhook_token"
        )
    ok = False
    if user and password:
        auth = request.header("authorization") or ""
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "basic":
            try:
                given = base64.b64decode(value.strip(), validate=True)
            except (ValueError, binascii.Error):
                given = b""
            ok = same(f"{user}:{password}".encode(), given)
    if token and not ok:
        ok = same(str(token), request.header(TOKEN_HEADER))
    if not ok:
        raise SignatureRefused("bad or missing webhook credentials")


def _derived_id(record: dict[str, Any], when: Any) -> str:
    parts = [record.get("RecordType"), record.get("MessageID"), record.get("Recipient"), when]
    return "pm-" + hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:40]


def parse(record: Any) -> list[ProviderEvent]:
    """The event of one record (none for record types DripDrop does not track)."""
    if not isinstance(record, dict):
        return []
    kind_of = record.get("RecordType")
    message_id = record.get("MessageID")
    if kind_of in ("Bounce", "SpamComplaint"):
        bounce_type = str(record.get("Type") or "")
        if kind_of == "SpamComplaint" or bounce_type in _COMPLAINT:
            kind = "complained"
        elif bounce_type in _HARD:
            kind = "bounced"
        elif bounce_type in _SOFT:
            kind = "soft_bounced"
        elif bounce_type == "Unsubscribe":
            kind = "unsubscribed"
        else:
            return []  # auto-responders, challenge mails…: not about deliverability
        when = record.get("BouncedAt")
        return [
            event(
                f"bounce-{record.get('ID')}" if record.get("ID") else _derived_id(record, when),
                kind,
                message_id,
                from_iso(when),
                record.get("Email"),
                record_type=kind_of,
                bounce_type=bounce_type,
                type_code=record.get("TypeCode"),
                description=record.get("Description"),
            )
        ]
    if kind_of == "Delivery":
        kind, when = "delivered", record.get("DeliveredAt")
    elif kind_of == "Open":
        kind, when = "opened", record.get("ReceivedAt")
    elif kind_of == "Click":
        kind, when = "clicked", record.get("ReceivedAt")
    elif kind_of == "SubscriptionChange" and record.get("SuppressSending"):
        reason = record.get("SuppressionReason")
        kind = {"HardBounce": "bounced", "SpamComplaint": "complained"}.get(
            str(reason), "unsubscribed"
        )
        when = record.get("ChangedAt")
    else:
        return []
    return [
        event(
            _derived_id(record, when),
            kind,
            message_id,
            from_iso(when),
            record.get("Recipient"),
            record_type=kind_of,
            details=record.get("Details"),
            suppression_reason=record.get("SuppressionReason"),
            url=link_without_query(record.get("OriginalLink")),
        )
    ]


async def receive(request: InboundRequest, adapter: AdapterInfo, ctx: Any) -> list[ProviderEvent]:
    """Check the credentials and parse one Postmark webhook record."""
    verify(request, adapter.credentials)
    try:
        return parse(json.loads(request.body))
    except ValueError:
        return []
