"""The one form of a provider message id that is stored and matched.

Providers quote the same id differently: Mailgun answers ``<2026…@mg.example.com>`` but its
webhooks say ``2026…@mg.example.com``; an SMTP Message-ID is written with its angle brackets.
Both sides go through :func:`message_id_key`, so they meet.
"""

from __future__ import annotations

from typing import Any

#: Longer ids are not ids (RFC 5322 caps a header line at 998 characters).
MAX_LENGTH = 998


def message_id_key(value: Any) -> str | None:
    """``value`` without surrounding whitespace and angle brackets; None when empty or absurd."""
    if value is None:
        return None
    text = str(value).strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if not text or len(text) > MAX_LENGTH or "\x00" in text:
        return None
    return text
