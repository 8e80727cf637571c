"""Discord webhooks: ``POST {webhook_url}?wait=true`` with JSON ``content``.

``wait=true`` makes Discord answer with the created message, whose ``id`` we keep. A 429 carries
``retry_after`` (seconds) in its JSON body as well as the Retry-After header.
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
from dripdrop.channels.http import (
    Secrets,
    TimeoutMs,
    error_for,
    load,
    parse_body,
    rebase,
    retry_after,
    send,
)
from dripdrop.channels.registry import register
from dripdrop.errors import PermanentError


class DiscordCredentials(Fields):
    webhook_url: str


class DiscordConfig(Fields):
    username: str | None = None
    avatar_url: str | None = None
    # Replaces the webhook URL's scheme and host (proxies, tests); the path is kept.
    base_url: str | None = None
    timeout_ms: TimeoutMs | None = None


def payload(message: Message, config: DiscordConfig) -> dict[str, Any]:
    """The execute-webhook JSON: content plus optional username, avatar and embeds."""
    fields = message.fields
    content = fields.get("content") or fields.get("text") or fields.get("body")
    if not content and not fields.get("embeds"):
        raise PermanentError("discord: a message needs content or embeds")
    body: dict[str, Any] = {"content": str(content or "")}
    if fields.get("embeds"):
        body["embeds"] = fields["embeds"]
    for key in ("username", "avatar_url"):
        value = fields.get(key) or getattr(config, key)
        if value:
            body[key] = value
    # Mentions in rendered text must not ping @everyone unless the step asks for it.
    body["allowed_mentions"] = fields.get("allowed_mentions") or {"parse": []}
    return body


class DiscordProvider:
    """Executes the webhook once per delivery; the result's id is the Discord message id."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Execute the webhook; raise Transient/PermanentError on failure (URL never shown)."""
        creds = load(DiscordCredentials, adapter.credentials, "credentials")
        config = load(DiscordConfig, adapter.config, "config")
        secrets = Secrets.of(adapter)
        response = await send(
            ctx,
            "POST",
            rebase(creds.webhook_url, config.base_url),
            secrets=secrets,
            label="discord",
            params={"wait": "true"},
            json=payload(message, config),
            timeout_ms=config.timeout_ms,
        )
        answer = parse_body(response)
        if response.status_code >= 300:
            info = answer if isinstance(answer, dict) else {}
            raise error_for(
                response,
                secrets=secrets,
                label="discord",
                detail=info.get("message"),
                wait=retry_after(info.get("retry_after")),
            )
        msg_id = answer.get("id") if isinstance(answer, dict) else None
        return DeliveryResult(provider_message_id=msg_id, status="sent", response=answer)


register(
    ProviderSpec(
        "discord",
        "webhook",
        DiscordCredentials,
        DiscordConfig,
        DiscordProvider,
        "Discord webhook",
        secret_fields=("webhook_url",),
    )
)
