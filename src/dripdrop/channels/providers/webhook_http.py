"""Webhooks: an HTTP request to the step's URL, signed per Standard Webhooks when a secret is set.

Every request carries ``webhook-id`` and ``Idempotency-Key`` set to the delivery's idempotency
key, which is stable across retries, so receivers can drop duplicates. With
``credentials.signing_secret`` (``whsec_<base64>``) it also carries ``webhook-timestamp`` and
``webhook-signature``; receivers check them with
:func:`dripdrop.channels.webhook_signing.verify_signature`.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from pydantic import field_validator

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
from dripdrop.channels.webhook_signing import decode_secret, signature_headers
from dripdrop.errors import PermanentError
from dripdrop.observability.tracing import inject_headers

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


class WebhookCredentials(Fields):
    signing_secret: str | None = None
    # Secret request headers, e.g. {"Authorization": "Bearer ..."}.
    headers: dict[str, str] | None = None

    @field_validator("signing_secret")
    @classmethod
    def _secret_decodes(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                decode_secret(value)
            except ValueError:
                raise ValueError("must be 'whsec_' followed by base64") from None
        return value


class WebhookConfig(Fields):
    method: str = "POST"
    headers: dict[str, str] | None = None
    timeout_ms: TimeoutMs | None = None
    # Relative step URLs are joined to it; absolute ones are used as they are.
    base_url: str | None = None


def _timestamp(ctx: DeliveryContext) -> int:
    now = ctx.clock() if ctx.clock else None
    if isinstance(now, datetime):
        return int(now.timestamp())
    return int(now) if isinstance(now, int | float) else int(time.time())


def _body(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _url(message: Message, config: WebhookConfig) -> str:
    url = str(message.recipient or message.fields.get("url") or "")
    if not url:
        raise PermanentError("webhook: no url")
    if "://" not in url and config.base_url:
        url = url_join(config.base_url, url)
    return url


class WebhookProvider:
    """Sends one HTTP request per delivery; any 2xx is success."""

    async def send(
        self, message: Message, adapter: AdapterInfo, ctx: DeliveryContext
    ) -> DeliveryResult:
        """Send the (signed) request; raise Transient/PermanentError on failure."""
        creds = load(WebhookCredentials, adapter.credentials, "credentials")
        config = load(WebhookConfig, adapter.config, "config")
        fields = message.fields
        method = str(fields.get("method") or config.method).upper()
        if method not in _METHODS:
            raise PermanentError(f"webhook: unsupported method {method!r}")
        body = _body(fields.get("body"))
        headers = {"Content-Type": "application/json", **(config.headers or {})}
        headers.update({str(k): str(v) for k, v in (fields.get("headers") or {}).items()})
        headers.update(creds.headers or {})
        headers["Idempotency-Key"] = message.idempotency_key
        headers["webhook-id"] = message.idempotency_key
        inject_headers(headers)  # W3C traceparent of the delivery's span, when tracing is on
        if creds.signing_secret:
            headers.update(
                signature_headers(
                    creds.signing_secret, message.idempotency_key, _timestamp(ctx), body
                )
            )
        secrets = Secrets.of(adapter)
        response = await send(
            ctx,
            method,
            _url(message, config),
            secrets=secrets,
            label="webhook",
            content=body.encode() if body or method not in ("GET", "DELETE") else None,
            headers=headers,
            timeout_ms=fields.get("timeout_ms") or config.timeout_ms,
        )
        answer = parse_body(response)
        if response.status_code >= 300:
            raise error_for(response, secrets=secrets, label="webhook")
        return DeliveryResult(
            provider_message_id=message.idempotency_key, status="sent", response=answer
        )


register(
    ProviderSpec(
        "webhook",
        "http",
        WebhookCredentials,
        WebhookConfig,
        WebhookProvider,
        "HTTP request, signed per Standard Webhooks when a secret is set",
        secret_fields=("signing_secret", "headers"),
    )
)
