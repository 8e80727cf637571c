"""Microsoft Teams incoming webhooks (connector or Workflows URL), JSON card.

``config.format`` picks the body: ``messagecard`` (default; Office 365 connectors) or
``adaptive`` (an Adaptive Card attachment, for Power Automate Workflows webhooks). Legacy
connectors answer ``200 "1"`` on success and sometimes 200 with an error sentence, which we treat
as failed.
"""

from __future__ import annotations

from typing import Any, Literal

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


class TeamsCredentials(Fields):
    webhook_url: str


class TeamsConfig(Fields):
    format: Literal["messagecard", "adaptive"] = "messagecard"
    # Replaces the webhook URL's scheme and host (proxies, tests); the path is kept.
    base_url: str | None = None
    timeout_ms: TimeoutMs | None = None


def payload(message: Message, config: TeamsConfig) -> dict[str, Any]:
    """A MessageCard or an Adaptive Card message with the step's title and text."""
    fields = message.fields
    text = str(fields.get("text") or fields.get("body") or "")
    title = fields.get("title") or fields.get("subject")
    if not text:
        raise PermanentError("msteams: a message needs text")
    if config.format == "adaptive":
        items: list[dict[str, Any]] = []
        if title:
            items.append(
                {
                    "type": "TextBlock",
                    "text": str(title),
                    "weight": "Bolder",
                    "size": "Medium",
                    "wrap": True,
                }
            )
        items.append({"type": "TextBlock", "text": text, "wrap": True})
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": items,
        }
        return {
            "type": "message",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
            ],
        }
    card_body: dict[str, Any] = {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": str(title or text)[:80],
        "text": text,
    }
    if title:
        card_body["title"] = str(title)
    return card_body


class TeamsProvider:
    """Posts one card per delivery; Teams webhooks return no message id."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Post the card; raise Transient/PermanentError on failure (URL never shown)."""
        creds = load(TeamsCredentials, adapter.credentials, "credentials")
        config = load(TeamsConfig, adapter.config, "config")
        secrets = Secrets.of(adapter)
        response = await send(
            ctx,
            "POST",
            rebase(creds.webhook_url, config.base_url),
            secrets=secrets,
            label="msteams",
            json=payload(message, config),
            timeout_ms=config.timeout_ms,
        )
        answer = parse_body(response)
        text = answer.strip() if isinstance(answer, str) else ""
        if response.status_code >= 300:
            raise error_for(response, secrets=secrets, label="msteams", detail=text or None)
        if response.status_code == 200 and text and text != "1" and "error" in text.lower():
            # Legacy connectors report downstream failures (even 429s) inside a 200.
            raise error_for(
                response, secrets=secrets, label="msteams", detail=text, transient="429" in text
            )
        return DeliveryResult(provider_message_id=None, status="sent", response=answer)


register(
    ProviderSpec(
        "msteams",
        "webhook",
        TeamsCredentials,
        TeamsConfig,
        TeamsProvider,
        "Microsoft Teams incoming webhook",
        secret_fields=("webhook_url",),
    )
)
