"""Twilio status callbacks (form-encoded: ``MessageSid``, ``MessageStatus``, ``ErrorCode``…).

``X-Twilio-Signature`` is the base64 HMAC-SHA1, keyed with the account's auth token (the
adapter's ``auth_token``), of the full URL Twilio called followed by every POST parameter as
``name`` + ``value``, sorted by name. The URL must be exactly the one Twilio used: the adapter's
``config.status_callback_url`` when set (the provider then also asks Twilio to call it for every
message), else the URL this app was reached at, as ``X-Forwarded-Proto``/``-Host`` tell it
behind a proxy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from dripdrop.channels.base import AdapterInfo
from dripdrop.inbound.events import (
    InboundRequest,
    ProviderEvent,
    SignatureRefused,
    event,
    now_utc,
    public_url,
    same,
)

# Error codes that say the number can never receive SMS (unknown handset, landline) and the
# one that says the recipient replied STOP.
_UNREACHABLE = frozenset({"30005", "30006", "21614"})
_OPTED_OUT = frozenset({"21610"})


def signature(url: str, params: list[tuple[str, str]], auth_token: str) -> str:
    """Twilio's signature of a POST to ``url`` with form ``params``."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(request: InboundRequest, auth_token: str, configured_url: str | None) -> None:
    """Refuse unless ``X-Twilio-Signature`` matches for the configured or the public URL."""
    given = request.header("x-twilio-signature")
    if not given:
        raise SignatureRefused("missing X-Twilio-Signature")
    params = request.form()
    urls = [configured_url] if configured_url else [public_url(request)]
    if not any(same(signature(url, params, auth_token), given) for url in urls):
        raise SignatureRefused(
            "bad signature (is config.status_callback_url the URL Twilio calls?)"
        )


def _kind(status: str, error_code: str) -> str | None:
    if status in ("undelivered", "failed"):
        if error_code in _OPTED_OUT:
            return "unsubscribed"
        return "bounced" if error_code in _UNREACHABLE else "failed"
    return {"sent": "sent", "delivered": "delivered", "read": "opened"}.get(status)


def parse(params: list[tuple[str, str]]) -> list[ProviderEvent]:
    """The event of one callback (none for queued/sending and other in-between states)."""
    form = dict(params)
    sid = form.get("MessageSid") or form.get("SmsSid")
    status = form.get("MessageStatus") or form.get("SmsStatus") or ""
    error_code = form.get("ErrorCode") or ""
    kind = _kind(status, error_code)
    if not sid or kind is None:
        return []
    # Twilio gives a callback no id of its own: each status of a message happens once.
    return [
        event(
            f"{sid}:{status}",
            kind,
            sid,
            now_utc(),
            form.get("To"),
            status=status,
            error_code=error_code or None,
        )
    ]


async def receive(request: InboundRequest, adapter: AdapterInfo, ctx: Any) -> list[ProviderEvent]:
    """Verify and parse one Twilio status callback."""
    token = adapter.credentials.get("auth_token")
    if not token:
        raise SignatureRefused("the adapter has no credentials.auth_token")
    verify(request, str(token), adapter.config.get("status_callback_url"))
    return parse(request.form())
