"""Amazon SES notifications, delivered by SNS to an HTTPS subscription.

SNS signs each message with RSA: ``SignatureVersion`` 1 is SHA1withRSA, 2 is SHA256withRSA, over
the message's fields as ``name\\nvalue\\n`` in a documented order; the certificate is at
``SigningCertURL``, which must be HTTPS on ``sns.<region>.amazonaws.com``. It is fetched through
the outbound guard and cached. Only the topic set as the adapter's ``config.sns_topic_arn`` is
accepted (anyone can create a topic and sign messages for it). A ``SubscriptionConfirmation`` is
confirmed by fetching its ``SubscribeURL`` (checked the same way). The SES message inside is
either a notification (``notificationType``) or a configuration-set event (``eventType``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from dripdrop.channels.base import AdapterInfo
from dripdrop.inbound.context import InboundContext, NotTrusted
from dripdrop.inbound.events import (
    InboundRequest,
    ProviderEvent,
    SignatureRefused,
    event,
    from_iso,
    link_without_query,
)

log = logging.getLogger("dripdrop.inbound")

CONFIG = "sns_topic_arn"
_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


def string_to_sign(message: dict[str, Any]) -> bytes:
    """The text SNS signs: each present field as ``name\\nvalue\\n``, in SNS's order."""
    kind = message.get("Type")
    names = _NOTIFICATION_FIELDS if kind == "Notification" else _CONFIRMATION_FIELDS
    return "".join(
        f"{name}\n{message[name]}\n" for name in names if message.get(name) is not None
    ).encode()


async def verify(message: Any, topic_arn: str, ctx: InboundContext) -> None:
    """Refuse unless the message is SNS's, for ``topic_arn``, signed by a trusted certificate."""
    if not isinstance(message, dict):
        raise SignatureRefused("the body is not an SNS message")
    if message.get("Type") not in (
        "Notification",
        "SubscriptionConfirmation",
        "UnsubscribeConfirmation",
    ):
        raise SignatureRefused("not an SNS message type")
    if message.get("TopicArn") != topic_arn:
        raise SignatureRefused("the message is for another topic than config.sns_topic_arn")
    algorithm = _HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise SignatureRefused("unknown SignatureVersion")
    try:
        url = ctx.check_sns_url(message.get("SigningCertURL"), "SigningCertURL")
        raw = base64.b64decode(str(message.get("Signature") or ""), validate=True)
    except NotTrusted as exc:
        raise SignatureRefused(str(exc)) from None
    except (ValueError, binascii.Error):
        raise SignatureRefused("unreadable signature") from None
    try:
        pem = await ctx.certificate(url)
        key = x509.load_pem_x509_certificate(pem).public_key()
    except Exception as exc:  # the fetch or the certificate: either way nothing is verified
        raise SignatureRefused(
            f"the signing certificate could not be used ({type(exc).__name__})"
        ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureRefused("the signing certificate is not an RSA certificate")
    try:
        key.verify(raw, string_to_sign(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise SignatureRefused("bad signature") from None


def _recipients(items: Any, key: str = "emailAddress") -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(i.get(key) if isinstance(i, dict) else i) for i in items if i]


def parse(sns_message_id: str, notification: Any) -> list[ProviderEvent]:
    """The events of one SES notification: one per recipient it names."""
    if not isinstance(notification, dict):
        return []
    name = notification.get("notificationType") or notification.get("eventType")
    mail = notification.get("mail") if isinstance(notification.get("mail"), dict) else {}
    message_id = mail.get("messageId")
    destination = _recipients(mail.get("destination"), "")
    detail: dict[str, Any] = {}
    if name == "Bounce":
        detail = notification.get("bounce") or {}
        permanent = detail.get("bounceType") == "Permanent"
        kind, recipients = (
            ("bounced" if permanent else "soft_bounced"),
            _recipients(detail.get("bouncedRecipients")),
        )
        extra = {
            "bounce_type": detail.get("bounceType"),
            "bounce_subtype": detail.get("bounceSubType"),
        }
    elif name == "Complaint":
        detail = notification.get("complaint") or {}
        kind, recipients = "complained", _recipients(detail.get("complainedRecipients"))
        extra = {"feedback_type": detail.get("complaintFeedbackType")}
    elif name == "Delivery":
        detail = notification.get("delivery") or {}
        kind, recipients = "delivered", _recipients(detail.get("recipients"), "")
        extra = {"smtp_response": detail.get("smtpResponse")}
    elif name == "DeliveryDelay":
        detail = notification.get("deliveryDelay") or {}
        kind, recipients = "deferred", _recipients(detail.get("delayedRecipients"))
        extra = {"delay_type": detail.get("delayType")}
    elif name in ("Send", "Reject", "Rendering Failure"):
        kind, recipients, extra = ("sent" if name == "Send" else "failed"), destination, {}
        detail = notification.get("reject") or {}
    elif name in ("Open", "Click"):
        detail = notification.get(name.lower()) or {}
        kind, recipients = ("opened" if name == "Open" else "clicked"), destination[:1]
        extra = {"url": link_without_query(detail.get("link"))}
    elif name == "Subscription":
        detail = notification.get("subscription") or {}
        prefs = detail.get("newTopicPreferences") or {}
        if not prefs.get("unsubscribeAll"):
            return []
        kind, recipients, extra = "unsubscribed", destination, {}
    else:
        return []
    when = from_iso(detail.get("timestamp")) or from_iso(mail.get("timestamp"))
    return [
        event(
            f"{sns_message_id}:{recipient}", kind, message_id, when, recipient, event=name, **extra
        )
        for recipient in (recipients or [None])  # type: ignore[list-item]
    ]


async def receive(
    request: InboundRequest, adapter: AdapterInfo, ctx: InboundContext
) -> list[ProviderEvent]:
    """Verify one SNS post; confirm a subscription, or parse the SES notification it carries."""
    topic_arn = adapter.config.get(CONFIG)
    if not topic_arn:
        raise SignatureRefused(f"the adapter has no config.{CONFIG}")
    try:
        message = json.loads(request.body)
    except ValueError:
        raise SignatureRefused("the body is not JSON (no signature to check)") from None
    await verify(message, str(topic_arn), ctx)
    kind = message["Type"]
    if kind == "SubscriptionConfirmation":
        try:
            url = ctx.check_sns_url(message.get("SubscribeURL"), "SubscribeURL")
        except NotTrusted as exc:
            raise SignatureRefused(str(exc)) from None
        await ctx.get(url)
        log.info("inbound amazon_ses adapter %s: SNS subscription confirmed", adapter.id)
        return []
    if kind != "Notification":
        return []
    try:
        notification = json.loads(message.get("Message") or "")
    except ValueError:
        return []
    return parse(str(message.get("MessageId")), notification)
