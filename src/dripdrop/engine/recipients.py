"""Who a message goes to, per channel: the step's field, else the enrollment data's field."""

from __future__ import annotations

from typing import Any

from dripdrop.errors import PermanentError

# channel → (field in the rendered config, enrollment data field used by default)
RECIPIENT_FIELDS: dict[str, tuple[str, str | None]] = {
    "email": ("to", "email"),
    "sms": ("to", "phone"),
    "telegram": ("chat_id", "telegram_chat_id"),
    "webhook": ("url", None),
    "pubsub": ("topic", None),
    "slack": ("channel", None),
    "discord": ("channel", None),
    "msteams": ("channel", None),
    "apprise": ("url", None),
}
REQUIRED = {"email", "sms", "telegram", "webhook", "pubsub"}


def resolve_recipient(channel: str, fields: dict[str, Any], data: dict[str, Any]) -> str | None:
    """The recipient, written back into ``fields`` so providers and the log agree."""
    field, data_field = RECIPIENT_FIELDS.get(channel, ("to", None))
    value = fields.get(field)
    if (value is None or value == "") and data_field:
        value = data.get(data_field)
    if value is None or value == "":
        if channel in REQUIRED:
            hint = f"enrollment data {data_field!r}" if data_field else "nothing else"
            raise PermanentError(
                f"no recipient: the step has no config {field!r} and {hint} is empty"
            )
        return None
    fields[field] = str(value) if not isinstance(value, list) else value
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
