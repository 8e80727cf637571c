"""Telegram Bot API ``sendMessage`` (``POST /bot{token}/sendMessage``, JSON).

The bot token travels in the URL path, so every error is scrubbed of it. Telegram answers
``{"ok": false, "error_code": n, "description": ...}``; on 429 the wait is in
``parameters.retry_after``.
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
    retry_after,
    send,
    url_join,
)
from dripdrop.channels.registry import register
from dripdrop.errors import PermanentError

API = "https://api.telegram.org"


class TelegramCredentials(Fields):
    bot_token: str


class TelegramConfig(Fields):
    parse_mode: str | None = "Markdown"
    disable_web_page_preview: bool | None = None
    base_url: str | None = API
    timeout_ms: TimeoutMs | None = None


def payload(message: Message, config: TelegramConfig) -> dict[str, Any]:
    """The sendMessage JSON; an empty ``parse_mode`` sends plain text."""
    fields = message.fields
    chat_id = message.recipient or fields.get("chat_id")
    text = fields.get("text") or fields.get("body")
    if not chat_id or not text:
        raise PermanentError("telegram: chat_id and text are required")
    body: dict[str, Any] = {"chat_id": chat_id, "text": str(text)}
    parse_mode = fields.get("parse_mode", config.parse_mode)
    if parse_mode:
        body["parse_mode"] = parse_mode
    if config.disable_web_page_preview is not None:
        body["disable_web_page_preview"] = config.disable_web_page_preview
    return body


class TelegramProvider:
    """Sends one message per delivery; the result's id is ``result.message_id``."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Call sendMessage; raise Transient/PermanentError on failure (token never shown)."""
        creds = load(TelegramCredentials, adapter.credentials, "credentials")
        config = load(TelegramConfig, adapter.config, "config")
        secrets = Secrets.of(adapter)
        url = url_join(config.base_url or API, f"/bot{creds.bot_token}/sendMessage")
        response = await send(
            ctx,
            "POST",
            url,
            secrets=secrets,
            label="telegram",
            json=payload(message, config),
            timeout_ms=config.timeout_ms,
        )
        answer = parse_body(response)
        ok = isinstance(answer, dict) and answer.get("ok") is True
        if response.status_code >= 300 or not ok:
            info = answer if isinstance(answer, dict) else {}
            params = info.get("parameters") if isinstance(info.get("parameters"), dict) else {}
            raise error_for(
                response,
                secrets=secrets,
                label="telegram",
                detail=info.get("description"),
                wait=retry_after(params.get("retry_after")),
            )
        result = answer.get("result") or {}
        msg_id = result.get("message_id") if isinstance(result, dict) else None
        return DeliveryResult(
            provider_message_id=None if msg_id is None else str(msg_id),
            status="sent",
            response=answer,
        )


register(
    ProviderSpec(
        "telegram",
        "bot_api",
        TelegramCredentials,
        TelegramConfig,
        TelegramProvider,
        "Telegram Bot API sendMessage",
        secret_fields=("bot_token",),
    )
)
