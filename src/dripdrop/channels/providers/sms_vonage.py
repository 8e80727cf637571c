"""SMS through Vonage's SMS API (``POST /sms/json``, form-encoded, key and secret in the form).

Vonage answers HTTP 200 even when it refuses a message: each ``messages[i].status`` other than
``"0"`` is an error code (1 throttled, 5 internal error, 10 too many binds: retry later; the
rest — bad parameters, credentials, barred numbers, no credit — are permanent).
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
from dripdrop.channels.http import Secrets, TimeoutMs, error_for, load, parse_body, send, url_join
from dripdrop.channels.registry import register
from dripdrop.errors import PermanentError

API = "https://rest.nexmo.com"
_TRANSIENT_STATUS = frozenset({"1", "5", "10"})


class VonageCredentials(Fields):
    api_key: str
    api_secret: str


class VonageConfig(Fields):
    model_config = ConfigDict(
        serialize_by_alias=True, validate_by_name=True, validate_by_alias=True
    )

    from_: str | None = Field(default=None, alias="from")
    base_url: str | None = API
    timeout_ms: TimeoutMs | None = None


def form(message: Message, creds: VonageCredentials, config: VonageConfig) -> dict[str, str]:
    """The form fields for one SMS; the idempotency key rides along as ``client-ref``."""
    fields = message.fields
    to, sender = message.recipient or fields.get("to"), fields.get("from") or config.from_
    if not to or not sender:
        raise PermanentError("vonage: a recipient number and a from (config.from) are required")
    text = str(fields.get("body") or "")
    data = {
        "api_key": creds.api_key,
        "api_secret": creds.api_secret,
        "from": str(sender),
        "to": str(to).lstrip("+"),
        "text": text,
        "client-ref": message.idempotency_key[:100],
    }
    if not text.isascii():
        data["type"] = "unicode"  # otherwise Vonage mangles non-GSM characters
    return data


def _first(body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and body.get("messages"):
        first = body["messages"][0]
        return first if isinstance(first, dict) else {}
    return {}


class VonageProvider:
    """Sends one SMS per delivery; the result's id is ``messages[0].message-id``."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Post the SMS form; raise Transient/PermanentError per HTTP status or Vonage status."""
        creds = load(VonageCredentials, adapter.credentials, "credentials")
        config = load(VonageConfig, adapter.config, "config")
        secrets = Secrets.of(adapter)
        response = await send(
            ctx,
            "POST",
            url_join(config.base_url or API, "/sms/json"),
            secrets=secrets,
            label="vonage",
            data=form(message, creds, config),
            timeout_ms=config.timeout_ms,
        )
        body = parse_body(response)
        first = _first(body)
        status = str(first.get("status", "")) if first else None
        if response.status_code >= 300 or status != "0":
            detail = f"status {status}: {first.get('error-text')}" if first else None
            transient = True if status in _TRANSIENT_STATUS else None
            raise error_for(
                response, secrets=secrets, label="vonage", detail=detail, transient=transient
            )
        return DeliveryResult(
            provider_message_id=first.get("message-id"), status="sent", response=body
        )


register(
    ProviderSpec(
        "sms",
        "vonage",
        VonageCredentials,
        VonageConfig,
        VonageProvider,
        "Vonage (Nexmo) SMS API",
        secret_fields=("api_secret",),
    )
)
