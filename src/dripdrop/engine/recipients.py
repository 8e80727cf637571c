"""Who a message goes to, per channel: the step's field, else the enrollment data's field.

A recipient is exactly one destination. Enrollment data is user input: ``"a@x.com, b@y.com"``
(or ``;``, a line break…) would otherwise become several recipients or inject a header, so such
values fail the execution with a PermanentError naming the field they came from.
"""

from __future__ import annotations

import re
from email import policy
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
# Channels whose recipient is a phone number or chat id: a separator means several of them.
_SINGLE_TOKEN = {"sms", "telegram"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # CR/LF (header injection), NUL, tabs…
# A bare dot-atom address ("ann.lee+x@mail.example.org"): exactly one address as it stands.
# Nearly every recipient looks like this, and the full RFC 5322 parser costs ~70 us a call on
# the worker's hot path; anything else (display names, quotes, separators) goes to the parser.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@{_LABEL}(?:\.{_LABEL})+")


def _email_problem(value: str) -> tuple[str | None, str]:
    """(why ``value`` is not exactly one email address or None, its addr-spec)."""
    if _PLAIN_ADDRESS.fullmatch(value):
        return None, value
    if _CONTROL.search(value):
        return "contains a line break or control character", ""
    try:
        # The RFC 5322 parser of email.policy.default: unlike getaddresses it reports defects
        # instead of guessing, so "a@x.com b@y.com" or "a@x.com)<b@y.com>" are not one address.
        header = policy.default.header_factory("To", value)
        addresses, groups, defects = header.addresses, header.groups, header.defects
    except Exception:  # the parser raises on some malformed input ("ann@")
        return "is not an email address", ""
    if len(addresses) > 1 or (groups and groups[0].display_name is not None):
        return f"must be exactly one email address, not {len(addresses)}", ""
    if len(addresses) != 1 or defects:
        return "is not exactly one valid email address (',' or ';' separate several)", ""
    address = addresses[0]
    if not address.username or not address.domain:
        return "is not an email address", ""
    return None, address.addr_spec


#: (why a value is not exactly one email address or None, its addr-spec): for suppressions.
email_problem = _email_problem


def single_email_address(value: Any, field: str) -> str:
    """The addr-spec of ``value``, which must be exactly one email address.

    ``"Ann <ann@example.org>"`` and ``'"Doe, John" <j@example.org>'`` are one address each;
    lists of several, separators, groups and line breaks raise PermanentError naming ``field``.
    """
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise PermanentError(
                f"recipient {field!r} must be exactly one email address, not {len(value)}"
            )
        value = value[0]
    if value is None or value == "":
        raise PermanentError("no recipient address")
    problem, addr = _email_problem(str(value))
    if problem is not None:
        raise PermanentError(f"recipient {field!r} {problem}")
    return addr


def _check_single(channel: str, value: Any, source: str) -> str:
    """``value`` as one recipient string; PermanentError naming ``source`` otherwise."""
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise PermanentError(f"{source} must be exactly one recipient, not {len(value)}")
        value = value[0]
    text = str(value)
    if channel == "email":
        problem, _ = _email_problem(text)
    elif _CONTROL.search(text):
        problem = "contains a line break or control character"
    elif channel in _SINGLE_TOKEN and any(c in text for c in ",;"):
        problem = "must be exactly one recipient (',' or ';' separate several)"
    else:
        problem = None
    if problem is not None:
        raise PermanentError(f"{source} {problem}")
    return text


def resolve_recipient(channel: str, fields: dict[str, Any], data: dict[str, Any]) -> str | None:
    """The recipient, written back into ``fields`` so providers and the log agree.

    Raises PermanentError when it is missing on a channel that needs one, or is not exactly
    one destination (see the module docstring).
    """
    field, data_field = RECIPIENT_FIELDS.get(channel, ("to", None))
    value = fields.get(field)
    source = f"the step's {field!r}"
    if (value is None or value == "") and data_field:
        value = data.get(data_field)
        source = f"enrollment data {data_field!r}"
    if value is None or value == "":
        if channel in REQUIRED:
            hint = f"enrollment data {data_field!r}" if data_field else "nothing else"
            raise PermanentError(
                f"no recipient: the step has no config {field!r} and {hint} is empty"
            )
        return None
    recipient = _check_single(channel, value, source)
    fields[field] = recipient
    return recipient
