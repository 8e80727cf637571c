"""Slack Web API ``chat.postMessage`` with a bot token.

Slack answers HTTP 200 with ``{"ok": false, "error": "..."}`` for most failures: rate limits and
Slack-side outages are transient, everything else (``channel_not_found``, ``not_in_channel``,
``invalid_auth``, ...) permanent. Real rate limits also come as HTTP 429 with Retry-After.
"""

from __future__ import annotations

from dripdrop.channels.base import (
    AdapterInfo,
    DeliveryContext,
    DeliveryResult,
    Fields,
    Message,
    ProviderSpec,
)
from dripdrop.channels.http import Secrets, TimeoutMs, error_for, load, parse_body, send, url_join
from dripdrop.channels.providers.slack_webhook import payload
from dripdrop.channels.registry import register
from dripdrop.errors import PermanentError

API = "https://slack.com"
_TRANSIENT = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    }
)


class SlackBotCredentials(Fields):
    bot_token: str


class SlackBotConfig(Fields):
    default_channel: str | None = None
    username: str | None = None
    icon_emoji: str | None = None
    base_url: str | None = API
    timeout_ms: TimeoutMs | None = None


class SlackBotProvider:
    """Posts one message per delivery; the result's id is the message ``ts``."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Call chat.postMessage; raise Transient/PermanentError on failure."""
        creds = load(SlackBotCredentials, adapter.credentials, "credentials")
        config = load(SlackBotConfig, adapter.config, "config")
        secrets = Secrets.of(adapter)
        channel = message.recipient or message.fields.get("channel") or config.default_channel
        if not channel:
            raise PermanentError("slack: no channel (step channel or config.default_channel)")
        body = {"channel": channel, **payload(message, config)}
        response = await send(
            ctx,
            "POST",
            url_join(config.base_url or API, "/api/chat.postMessage"),
            secrets=secrets,
            label="slack",
            json=body,
            headers={"Authorization": f"Bearer {creds.bot_token}"},
            timeout_ms=config.timeout_ms,
        )
        answer = parse_body(response)
        ok = isinstance(answer, dict) and answer.get("ok") is True
        if response.status_code >= 300 or not ok:
            error = answer.get("error") if isinstance(answer, dict) else None
            transient = True if error in _TRANSIENT else None
            raise error_for(
                response, secrets=secrets, label="slack", detail=error, transient=transient
            )
        return DeliveryResult(provider_message_id=answer.get("ts"), status="sent", response=answer)


register(
    ProviderSpec(
        "slack",
        "bot_api",
        SlackBotCredentials,
        SlackBotConfig,
        SlackBotProvider,
        "Slack Web API chat.postMessage (bot token)",
        secret_fields=("bot_token",),
    )
)
