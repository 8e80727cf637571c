"""Email through Postmark (``POST /email``, JSON, ``X-Postmark-Server-Token``).

Postmark reports API errors as ``{"ErrorCode": n, "Message": ...}``, mostly with HTTP 422
(406 = inactive recipient, 300 = invalid request): permanent, unlike its 429 and 5xx.
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

API = "https://api.postmarkapp.com"
_MAINTENANCE = 100  # Postmark's "service is down for maintenance": try again later


class PostmarkCredentials(Fields):
    server_token: str
    # What Postmark's webhooks must present at /inbound/postmark/<id>: HTTP Basic credentials
    # (put in the webhook URL) and/or an X-Webhook-Token header (dripdrop.inbound.postmark).
    webhook_username: str | None = None
    webhook_password: str | None = None
    webhook_token: str | None = None


class PostmarkConfig(EmailConfig):
    base_url: str | None = API
    message_stream: str = "outbound"


def _detail(body: Any) -> str | None:
    if isinstance(body, dict) and "Message" in body:
        return f"ErrorCode {body.get('ErrorCode')}: {body['Message']}"
    return body if isinstance(body, str) else None


def payload(message: Message, adapter: AdapterInfo, stream: str) -> dict[str, Any]:
    """The ``/email`` JSON for a rendered email step."""
    email = build_email(message, adapter)
    headers = {**email.headers, "Message-ID": email.message_id}
    body: dict[str, Any] = {
        "From": email.sender,
        "To": ", ".join(email.to),
        "Subject": email.subject,
        "TextBody": email.text,
        "Headers": [{"Name": k, "Value": v} for k, v in headers.items()],
        "MessageStream": stream,
    }
    if email.html:
        body["HtmlBody"] = email.html
    if email.cc:
        body["Cc"] = ", ".join(email.cc)
    if email.bcc:
        body["Bcc"] = ", ".join(email.bcc)
    if email.reply_to:
        body["ReplyTo"] = ", ".join(email.reply_to)
    return body


class PostmarkProvider:
    """Sends one email per delivery through Postmark."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Post the email JSON; raise Transient/PermanentError on failure."""
        creds = load(PostmarkCredentials, adapter.credentials, "credentials")
        config = load(PostmarkConfig, adapter.config, "config")
        secrets = Secrets.of(adapter)
        response = await send(
            ctx,
            "POST",
            url_join(config.base_url or API, "/email"),
            secrets=secrets,
            label="postmark",
            json=payload(message, adapter, config.message_stream),
            headers={"X-Postmark-Server-Token": creds.server_token, "Accept": "application/json"},
            timeout_ms=config.timeout_ms,
        )
        body = parse_body(response)
        code = body.get("ErrorCode") if isinstance(body, dict) else None
        if response.status_code >= 300 or code:
            transient = True if code == _MAINTENANCE else None
            raise error_for(
                response,
                secrets=secrets,
                label="postmark",
                detail=_detail(body),
                transient=transient,
            )
        return DeliveryResult(
            provider_message_id=body.get("MessageID"), status="sent", response=body
        )


register(
    ProviderSpec(
        "email",
        "postmark",
        PostmarkCredentials,
        PostmarkConfig,
        PostmarkProvider,
        "Postmark email API",
        secret_fields=("server_token", "webhook_password", "webhook_token"),
    )
)
