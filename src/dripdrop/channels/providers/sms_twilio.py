"""SMS through Twilio's Messages resource (``POST /2010-04-01/Accounts/{sid}/Messages.json``).

Form-encoded, HTTP Basic ``account_sid:auth_token``. Twilio has no idempotency header, so a
retry after a lost answer may send twice. Errors carry ``{"code", "message"}``; a few codes are
rate limits or outages whatever the HTTP status says.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

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
    basic_auth,
    error_for,
    load,
    parse_body,
    send,
    url_join,
)
from dripdrop.channels.registry import register
from dripdrop.errors import PermanentError

API = "https://api.twilio.com"
# 20429 too many requests, 14107 send rate exceeded, 20500/20503 Twilio outage.
_TRANSIENT_CODES = frozenset({20429, 14107, 20500, 20503})


class TwilioCredentials(Fields):
    account_sid: str
    auth_token: str


class TwilioConfig(Fields):
    model_config = ConfigDict(
        serialize_by_alias=True, validate_by_name=True, validate_by_alias=True
    )

    from_: str | None = Field(default=None, alias="from")
    messaging_service_sid: str | None = None
    base_url: str | None = API
    timeout_ms: TimeoutMs | None = None
    # The public URL of /inbound/twilio/<adapter id>: sent as every message's StatusCallback,
    # and the URL its X-Twilio-Signature is checked against (dripdrop.inbound.twilio).
    status_callback_url: str | None = Field(default=None, pattern=r"^https?://\S+$")


def form(message: Message, config: TwilioConfig) -> dict[str, Any]:
    """The form fields: To, Body and either From or MessagingServiceSid."""
    fields = message.fields
    to = message.recipient or fields.get("to")
    if not to:
        raise PermanentError("twilio: no recipient phone number")
    data: dict[str, Any] = {"To": str(to), "Body": str(fields.get("body") or "")}
    sender = fields.get("from") or config.from_
    if sender:
        data["From"] = str(sender)
    elif config.messaging_service_sid:
        data["MessagingServiceSid"] = config.messaging_service_sid
    else:
        raise PermanentError("twilio: set config.from or config.messaging_service_sid")
    if config.status_callback_url:
        data["StatusCallback"] = config.status_callback_url
    return data


class TwilioProvider:
    """Sends one SMS per delivery; the result's id is the message ``sid``."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Create the Message resource; raise Transient/PermanentError on failure."""
        creds = load(TwilioCredentials, adapter.credentials, "credentials")
        config = load(TwilioConfig, adapter.config, "config")
        secrets = Secrets.of(adapter)
        path = f"/2010-04-01/Accounts/{creds.account_sid}/Messages.json"
        response = await send(
            ctx,
            "POST",
            url_join(config.base_url or API, path),
            secrets=secrets,
            label="twilio",
            headers={"Authorization": basic_auth(creds.account_sid, creds.auth_token)},
            data=form(message, config),
            timeout_ms=config.timeout_ms,
        )
        body = parse_body(response)
        if response.status_code >= 300:
            code = body.get("code") if isinstance(body, dict) else None
            detail = f"{code}: {body.get('message')}" if isinstance(body, dict) else body
            transient = True if code in _TRANSIENT_CODES else None
            raise error_for(
                response, secrets=secrets, label="twilio", detail=detail, transient=transient
            )
        sid = body.get("sid") if isinstance(body, dict) else None
        return DeliveryResult(provider_message_id=sid, status="sent", response=body)


register(
    ProviderSpec(
        "sms",
        "twilio",
        TwilioCredentials,
        TwilioConfig,
        TwilioProvider,
        "Twilio Programmable Messaging",
        secret_fields=("auth_token",),
    )
)
