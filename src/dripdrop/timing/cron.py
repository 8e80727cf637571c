"""Cron expressions: validation, translation and the next run in a timezone.

Matching is cronsim's. We iterate it over *naive local wall-clock time* and
map each wall time to an instant ourselves, so the DST rules are the same for
every expression (cronsim alone only applies them to fixed-time jobs):

* a wall time that does not exist (spring forward gap) fires once, at the
  first valid minute after the gap;
* a wall time that occurs twice (fall back overlap) fires once, at its first
  occurrence.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from cronsim import CronSim, CronSimError

from dripdrop.definitions.inputs import describe
from dripdrop.errors import ValidationError
from dripdrop.timing.human import parse_human

__all__ = ["load_zone", "next_cron_time", "to_cron", "validate_cron"]

# A cron expression's first field is digits, "*", "/", "," and "-"; a human phrase starts with a
# word or an ordinal ("1st monday of the month").
_LOOKS_LIKE_CRON = re.compile(r"^[\d*][\d*/,-]*(?:\s|$)")
# Bound the overlap-skipping loop; a day of minutely matches is 1440.
_MAX_SKIPS = 10_000
# Longer than any sensible 5-field expression; cronsim would take seconds on a megabyte.
MAX_CRON_LENGTH = 255


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    # "localtime" is the host's zone file, not an IANA name.
    return frozenset(available_timezones() - {"localtime"})


def load_zone(name: str, field: str = "timezone") -> ZoneInfo:
    """Return the ZoneInfo for an IANA name, or raise ValidationError on ``field``."""
    if not isinstance(name, str) or name not in _zone_names():
        raise ValidationError.single(
            field, f"unknown timezone {describe(name)} (use an IANA name such as 'Europe/Paris')"
        )
    return ZoneInfo(name)


def validate_cron(expression: str, field: str = "cron_expression") -> str:
    """Check a 5-field cron expression with cronsim; return it upper-cased and tidied."""
    expr = " ".join(expression.split()).upper()
    if len(expr.split()) != 5:
        raise ValidationError.single(
            field,
            f"invalid cron expression {describe(expression)}: "
            "needs 5 fields (minute hour day-of-month month day-of-week)",
        )
    try:
        CronSim(expr, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise ValidationError.single(
            field, f"invalid cron expression {describe(expression)}: {str(exc).lower()}"
        ) from exc
    return expr


def to_cron(expression: str, field: str = "cron_expression") -> str:
    """Translate cron, an @macro or a recurring human phrase into a 5-field cron expression.

    Raises ValidationError on ``field`` for bad cron, unknown text, or a delay
    phrase such as "in 3 days" (a delay is not a recurring schedule).
    """
    if not isinstance(expression, str) or not expression.strip():
        raise ValidationError.single(field, "must be a non-empty string")
    if len(expression) > MAX_CRON_LENGTH:
        raise ValidationError.single(
            field, f"is too long ({len(expression):,} characters; at most {MAX_CRON_LENGTH})"
        )
    text = expression.strip()
    if _LOOKS_LIKE_CRON.match(text):
        return validate_cron(text, field)
    try:
        parsed = parse_human(text)
    except ValidationError as exc:
        raise ValidationError({field: exc.errors["human_expression"]}) from None
    if parsed.kind != "cron" or parsed.cron is None:
        raise ValidationError.single(
            field, f"{describe(expression)} is a delay, not a recurring schedule; use type 'delay'"
        )
    return validate_cron(parsed.cron, field)


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """Map a naive local wall time to a UTC instant (first occurrence; gap → after the gap)."""
    aware = wall.replace(tzinfo=zone, fold=0)
    # A wall time in a gap does not survive the round trip through UTC.
    while aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != aware.replace(tzinfo=None):
        aware += timedelta(minutes=1)  # naive arithmetic: walks the wall clock
    return aware.astimezone(UTC)


def next_cron_time(expression: str, timezone: str, after: datetime) -> datetime:
    """Return the next run strictly after ``after``, as an aware UTC datetime.

    ``expression`` is 5-field cron, an @macro or a recurring human phrase,
    evaluated in the IANA ``timezone``. ``after`` must be timezone-aware.
    Non-existent local times fire at the first valid minute after the DST gap;
    repeated local times fire once, at their first occurrence.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("after must be a timezone-aware datetime")
    zone = load_zone(timezone)
    expr = to_cron(expression)
    start = after.astimezone(UTC)
    wall_start = start.astimezone(zone).replace(tzinfo=None)
    walls = CronSim(expr, wall_start)
    for _ in range(_MAX_SKIPS):
        try:
            wall = next(walls)
        except StopIteration:
            raise ValueError(f"cron expression {expression!r} never fires") from None
        instant = _instant(wall, zone)
        # In the second pass through a fall-back hour, wall times map to their
        # first occurrence, which is already in the past: they have fired.
        if instant > start:
            return instant
    raise ValueError(f"no run of {expression!r} found after {after.isoformat()}")
