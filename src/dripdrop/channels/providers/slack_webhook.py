"""Slack incoming webhooks: ``POST`` JSON to the webhook URL, which is itself the secret.

Slack answers ``200 ok`` or an error word in plain text (400 ``invalid_payload``, 403
``action_prohibited``, 404 ``no_service``/``channel_not_found``, 410 ``channel_is_archived``),
429 with Retry-After when rate limited. The URL never appears in error text.
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
from dripdrop.channels.http import Secrets, TimeoutMs, error_for, load, parse_body, rebase, send
from dripdrop.channels.registry import register
from dripdrop.errors import PermanentError


class SlackWebhookCredentials(Fields):
    webhook_url: str


class SlackWebhookConfig(Fields):
    username: str | None = None
    icon_emoji: str | None = None
    # Replaces the webhook URL's scheme and host (proxies, tests); the path is kept.
    base_url: str | None = None
    timeout_ms: TimeoutMs | None = None


def payload(message: Message, config: Fields) -> dict[str, Any]:
    """The Slack message JSON: text, optional blocks and channel."""
    fields = message.fields
    text = fields.get("text") or fields.get("body")
    if not text and not fields.get("blocks"):
        raise PermanentError("slack: a message needs text or blocks")
    body: dict[str, Any] = {"text": str(text or "")}
    if fields.get("blocks"):
        body["blocks"] = fields["blocks"]
    for key in ("username", "icon_emoji"):
        value = fields.get(key) or getattr(config, key, None)
        if value:
            body[key] = value
    return body


class SlackWebhookProvider:
    """Posts one message per delivery; incoming webhooks return no message id."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Post to the webhook; raise Transient/PermanentError on failure."""
        creds = load(SlackWebhookCredentials, adapter.credentials, "credentials")
        config = load(SlackWebhookConfig, adapter.config, "config")
        secrets = Secrets.of(adapter)
        body = payload(message, config)
        channel = message.recipient or message.fields.get("channel")
        if channel:
            body["channel"] = channel  # legacy webhooks honour it; app webhooks ignore it
        response = await send(
            ctx,
            "POST",
            rebase(creds.webhook_url, config.base_url),
            secrets=secrets,
            label="slack",
            json=body,
            timeout_ms=config.timeout_ms,
        )
        answer = parse_body(response)
        if response.status_code >= 300:
            detail = answer if isinstance(answer, str) else None
            raise error_for(response, secrets=secrets, label="slack", detail=detail)
        return DeliveryResult(provider_message_id=None, status="sent", response=answer)


register(
    ProviderSpec(
        "slack",
        "webhook",
        SlackWebhookCredentials,
        SlackWebhookConfig,
        SlackWebhookProvider,
        "Slack incoming webhook",
        secret_fields=("webhook_url",),
    )
)
