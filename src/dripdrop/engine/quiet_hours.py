"""Quiet hours: no message reaches a person at night in their own timezone.

A window such as ``{"start": "21:00", "end": "08:00", "timezone": "Europe/Paris"}`` comes from
the step, else the sequence version's config, else the instance (``DripDrop(quiet_hours=...)``).
A step due inside it is deferred to the minute the window ends, in the recipient's timezone:
the enrollment data field ``timezone_field`` (default ``"timezone"``), then the window's
``timezone``, then UTC. ``False`` on a step or version turns the instance default off; steps of
``transactional`` sequences (a password reset, a receipt) ignore it unless the step sets one;
webhooks and in-app pub/sub reach systems, not people, and are never held.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dripdrop.engine.conditions import next_window_opening
from dripdrop.errors import ValidationError

#: Channels that reach systems rather than people: never held by quiet hours.
UNHELD_CHANNELS = frozenset({"webhook", "pubsub"})
DEFAULT_TIMEZONE_FIELD = "timezone"
_KEYS = ("start", "end", "timezone", "timezone_field")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def check_quiet_hours(value: Any, field: str) -> dict[str, Any] | bool | None:
    """A quiet-hours setting as given by a caller: None, False (off), True (a step's way of
    keeping the default in a transactional sequence) or a window; ValidationError naming
    ``field`` otherwise."""
    if value is None or isinstance(value, bool):
        return value
    if not isinstance(value, dict):
        raise ValidationError.single(
            field, 'must be a window {"start": "21:00", "end": "08:00"} or false'
        )
    errors: dict[str, list[str]] = {}
    for key in value:
        if key not in _KEYS:
            errors.setdefault(f"{field}.{key}", []).append(
                f"unknown key; allowed: {', '.join(_KEYS)}"
            )
    for key in ("start", "end"):
        text = value.get(key)
        if not isinstance(text, str) or not _HHMM.match(text):
            errors.setdefault(f"{field}.{key}", []).append('must be a time "HH:MM" (00:00-23:59)')
    if not errors and value["start"] == value["end"]:
        errors.setdefault(f"{field}.end", []).append("must differ from start")
    zone = value.get("timezone")
    if zone is not None:
        try:
            if not isinstance(zone, str):
                raise ValueError
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            errors.setdefault(f"{field}.timezone", []).append(
                "must be an IANA timezone name, e.g. 'America/New_York'"
            )
    tz_field = value.get("timezone_field")
    if tz_field is not None and (not isinstance(tz_field, str) or not tz_field.strip()):
        errors.setdefault(f"{field}.timezone_field", []).append(
            "must name an enrollment data field, e.g. 'timezone'"
        )
    if errors:
        raise ValidationError(errors)
    return dict(value)


def window_for(
    channel: str,
    step_config: dict[str, Any],
    version_config: dict[str, Any],
    category: str | None,
    default: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """The quiet-hours window that applies to a step, or None."""
    if channel in UNHELD_CHANNELS:
        return None
    own = step_config.get("quiet_hours")
    if own is False:
        return None
    if isinstance(own, dict):
        return own
    if category == "transactional" and own is not True:
        return None
    version = version_config.get("quiet_hours")
    if version is False:
        return None
    if isinstance(version, dict):
        return version
    return default


def next_allowed(window: dict[str, Any], data: dict[str, Any], now: datetime) -> datetime | None:
    """None when ``now`` is outside the quiet window (in the recipient's timezone); otherwise
    the instant it ends (UTC). DST-correct: the end is a local wall-clock time."""
    allowed = {
        "start": window["end"],  # the allowed time is the complement of the quiet window
        "end": window["start"],
        "timezone": window.get("timezone"),
        "timezone_field": window.get("timezone_field", DEFAULT_TIMEZONE_FIELD),
    }
    return next_window_opening(allowed, data, now)
