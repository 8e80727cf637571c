"""Which module receives each provider's webhooks: adapter provider name → (channel, receive)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from dripdrop.inbound import amazon_ses, mailgun, postmark, resend, sendgrid, twilio
from dripdrop.inbound.events import ProviderEvent

Receive = Callable[..., Awaitable[list[ProviderEvent]]]

#: The path's ``{provider}`` is the adapter's provider name.
RECEIVERS: dict[str, tuple[str, Receive]] = {
    "mailgun": ("email", mailgun.receive),
    "sendgrid": ("email", sendgrid.receive),
    "postmark": ("email", postmark.receive),
    "amazon_ses": ("email", amazon_ses.receive),
    "resend": ("email", resend.receive),
    "twilio": ("sms", twilio.receive),
}


def receiver_for(provider: str, channel: str) -> Receive | None:
    """The receiver of ``provider`` for adapters of ``channel``; None when there is none."""
    found: Any = RECEIVERS.get(provider)
    if found is None or found[0] != channel:
        return None
    return found[1]
