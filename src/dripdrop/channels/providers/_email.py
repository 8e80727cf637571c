"""What the HTTP email providers share: one :class:`Email` built from a rendered step.

Addresses, the text alternative, List-Unsubscribe and the stable Message-ID come from
:mod:`dripdrop.channels.emailfmt`, so SMTP and every HTTP API produce the same headers.
Each provider module only maps an :class:`Email` onto its API's shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import getaddresses, parseaddr
from typing import Any

from pydantic import ConfigDict, Field

from dripdrop.channels.base import AdapterInfo, Fields, Message
from dripdrop.channels.emailfmt import (
    from_address,
    html_to_text,
    make_message_id,
    unsubscribe_headers,
)
from dripdrop.channels.http import TimeoutMs
from dripdrop.errors import PermanentError

_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 field name: printable ASCII but ':'
# Headers the APIs set from their own fields; a step must not override them via ``headers``.
_RESERVED = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "reply-to",
        "content-type",
        "content-transfer-encoding",
        "mime-version",
    }
)


class EmailDefaults(Fields):
    """The defaults of an email adapter for fields its steps leave out (every email provider)."""

    # ``from`` is a keyword: keep the field's wire name when validated and dumped.
    model_config = ConfigDict(
        serialize_by_alias=True, validate_by_name=True, validate_by_alias=True
    )
    from_: str | None = Field(default=None, alias="from")
    reply_to: str | None = None
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None


class SoftBounceSettings(Fields):
    """When soft bounces suppress an address (provider events, :mod:`dripdrop.inbound`): at
    ``soft_bounce_limit`` different messages soft-bounced within ``soft_bounce_days`` (default
    3 in 30 days)."""

    soft_bounce_limit: int | None = Field(default=None, ge=1, le=1000)
    soft_bounce_days: int | None = Field(default=None, ge=1, le=365)


class EmailConfig(SoftBounceSettings, EmailDefaults):
    """Config every HTTP email provider accepts (plus its own ``base_url``)."""

    timeout_ms: TimeoutMs | None = None


@dataclass
class Email:
    """A rendered email, API-neutral. ``headers`` excludes Message-ID (see ``message_id``)."""

    sender: str
    to: list[str]
    subject: str
    html: str
    text: str
    message_id: str
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


# A bare address with nothing getaddresses would change: no name, quotes, brackets, comments,
# separators, spaces or escapes.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+")


def addresses(value: Any) -> list[str]:
    """A list of addresses from a string (comma-separated allowed) or a list."""
    if not value:
        return []
    if isinstance(value, str) and _PLAIN_ADDRESS.fullmatch(value):
        return [value]  # one bare address (nearly every recipient): nothing to parse
    items = [value] if isinstance(value, str) else [str(v) for v in value if v]
    out = []
    for name, addr in getaddresses(items):
        if addr:
            out.append(f"{name} <{addr}>" if name else addr)
    return out


def split_address(value: str) -> dict[str, str]:
    """``{"email": ..., "name": ...}`` (name only when present), as SendGrid wants."""
    name, addr = parseaddr(value)
    return {"email": addr, "name": name} if name else {"email": addr}


def _clean(name: str, value: Any) -> str:
    text = str(value)
    # CR/LF in a header value would let a template value inject headers.
    if any(c in text for c in "\r\n\0"):
        raise PermanentError(f"header {name!r} contains a line break")
    return text


def build_email(message: Message, adapter: AdapterInfo) -> Email:
    """The :class:`Email` for a rendered email step; PermanentError when it cannot be sent."""
    fields, config = message.fields, adapter.config
    sender = _clean("from", from_address(message, adapter))
    to = addresses(message.recipient or fields.get("to"))
    if not to:
        raise PermanentError("no recipient address")
    html = str(fields.get("body") or "")
    text = str(fields.get("text") or "") or (html_to_text(html) if html else "")
    if not html and not text:
        raise PermanentError("email has no body")
    headers: dict[str, str] = {}
    for name, value in (fields.get("headers") or {}).items():
        if not _HEADER_NAME.match(str(name)) or str(name).lower() in _RESERVED | {"message-id"}:
            raise PermanentError(f"header {name!r} cannot be set by a step")
        headers[str(name)] = _clean(str(name), value)
    unsubscribe = fields.get("unsubscribe_url") or config.get("unsubscribe_url")
    mailto = fields.get("unsubscribe_mailto") or config.get("unsubscribe_mailto")
    headers.update(unsubscribe_headers(unsubscribe, mailto))
    return Email(
        sender=sender,
        to=[_clean("to", a) for a in to],
        subject=_clean("subject", fields.get("subject") or ""),
        html=html,
        text=text,
        message_id=make_message_id(message.idempotency_key, sender),
        cc=addresses(fields.get("cc")),
        bcc=addresses(fields.get("bcc")),
        reply_to=addresses(fields.get("reply_to") or config.get("reply_to")),
        headers=headers,
    )
