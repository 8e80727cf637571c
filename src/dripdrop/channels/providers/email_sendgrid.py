"""Email through SendGrid's v3 Mail Send API (``POST /v3/mail/send``, JSON).

SendGrid answers ``202 Accepted`` with an empty body; the message id is the ``X-Message-Id``
response header.
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
from dripdrop.channels.providers._email import EmailConfig, build_email, split_address
from dripdrop.channels.registry import register

API = "https://api.sendgrid.com"


class SendGridCredentials(Fields):
    api_key: str
    # The Signed Event Webhook's verification key (base64 DER): checks /inbound/sendgrid/<id>.
    webhook_public_key: str | None = None


class SendGridConfig(EmailConfig):
    base_url: str | None = API


def _detail(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(str(e.get("message")) for e in body["errors"] if isinstance(e, dict))
    return body if isinstance(body, str) else None


def payload(message: Message, adapter: AdapterInfo) -> dict[str, Any]:
    """The Mail Send JSON for a rendered email step."""
    email = build_email(message, adapter)
    personalization: dict[str, Any] = {"to": [split_address(a) for a in email.to]}
    if email.cc:
        personalization["cc"] = [split_address(a) for a in email.cc]
    if email.bcc:
        personalization["bcc"] = [split_address(a) for a in email.bcc]
    # SendGrid requires text/plain before text/html in ``content``.
    content = [{"type": "text/plain", "value": email.text}]
    if email.html:
        content.append({"type": "text/html", "value": email.html})
    body: dict[str, Any] = {
        "personalizations": [personalization],
        "from": split_address(email.sender),
        "subject": email.subject,
        "content": content,
        "headers": {**email.headers, "Message-ID": email.message_id},
    }
    if len(email.reply_to) == 1:
        body["reply_to"] = split_address(email.reply_to[0])
    elif email.reply_to:
        body["reply_to_list"] = [split_address(a) for a in email.reply_to]
    return body


class SendGridProvider:
    """Sends one email per delivery through SendGrid."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Post the Mail Send JSON; raise Transient/PermanentError on failure."""
        creds = load(SendGridCredentials, adapter.credentials, "credentials")
        config = load(SendGridConfig, adapter.config, "config")
        secrets = Secrets.of(adapter)
        response = await send(
            ctx,
            "POST",
            url_join(config.base_url or API, "/v3/mail/send"),
            secrets=secrets,
            label="sendgrid",
            json=payload(message, adapter),
            headers={"Authorization": f"Bearer {creds.api_key}"},
            timeout_ms=config.timeout_ms,
        )
        body = parse_body(response)
        if response.status_code >= 300:
            raise error_for(response, secrets=secrets, label="sendgrid", detail=_detail(body))
        return DeliveryResult(
            provider_message_id=response.headers.get("x-message-id"), status="sent", response=body
        )


register(
    ProviderSpec(
        "email",
        "sendgrid",
        SendGridCredentials,
        SendGridConfig,
        SendGridProvider,
        "SendGrid v3 Mail Send API",
        secret_fields=("api_key", "webhook_public_key"),
    )
)
