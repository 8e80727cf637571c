"""Email through Resend (``POST /emails``, JSON, Bearer key, ``Idempotency-Key``).

Resend deduplicates on the ``Idempotency-Key`` header for 24 hours, so a retried delivery does
not send twice; a 409 ``concurrent_idempotent_requests`` means the first attempt is still running.
"""

from __future__ import annotations

from typing import Any

from dripdrop.channels.base import (
    AdapterInfo,
    DeliveryContext,
    DeliveryResult,
    Fields,
    Message,
    ProviderSpec,
)
from dripdrop.channels.http import Secrets, error_for, load, parse_body, send, url_join
from dripdrop.channels.providers._email import EmailConfig, build_email
from dripdrop.channels.registry import register

API = "https://api.resend.com"


class ResendCredentials(Fields):
    api_key: str
    # The webhook signing secret (whsec_…): verifies /inbound/resend/<adapter id>.
    webhook_secret: str | None = None


class ResendConfig(EmailConfig):
    base_url: str | None = API


def payload(message: Message, adapter: AdapterInfo) -> dict[str, Any]:
    """The ``/emails`` JSON for a rendered email step."""
    email = build_email(message, adapter)
    body: dict[str, Any] = {
        "from": email.sender,
        "to": email.to,
        "subject": email.subject,
        "text": email.text,
    }
    if email.html:
        body["html"] = email.html
    if email.cc:
        body["cc"] = email.cc
    if email.bcc:
        body["bcc"] = email.bcc
    if email.reply_to:
        body["reply_to"] = email.reply_to
    if email.headers:
        body["headers"] = email.headers
    return body


class ResendProvider:
    """Sends one email per delivery through Resend."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Post the email JSON with the idempotency key; raise Transient/PermanentError."""
        creds = load(ResendCredentials, adapter.credentials, "credentials")
        config = load(ResendConfig, adapter.config, "config")
        secrets = Secrets.of(adapter)
        response = await send(
            ctx,
            "POST",
            url_join(config.base_url or API, "/emails"),
            secrets=secrets,
            label="resend",
            json=payload(message, adapter),
            headers={
                "Authorization": f"Bearer {creds.api_key}",
                "Idempotency-Key": message.idempotency_key,
            },
            timeout_ms=config.timeout_ms,
        )
        body = parse_body(response)
        if response.status_code >= 300:
            name = body.get("name") if isinstance(body, dict) else None
            detail = body.get("message") if isinstance(body, dict) else body
            transient = True if name == "concurrent_idempotent_requests" else None
            raise error_for(
                response,
                secrets=secrets,
                label="resend",
                detail=f"{name}: {detail}" if name else detail,
                transient=transient,
            )
        msg_id = body.get("id") if isinstance(body, dict) else None
        return DeliveryResult(provider_message_id=msg_id, status="sent", response=body)


register(
    ProviderSpec(
        "email",
        "resend",
        ResendCredentials,
        ResendConfig,
        ResendProvider,
        "Resend email API",
        secret_fields=("api_key", "webhook_secret"),
    )
)
