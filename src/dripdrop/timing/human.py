"""Human-friendly timing phrases → a 5-field cron expression or a delay.

The grammar is small on purpose (see docs/timing.md): every phrase either
translates to exactly one standard cron expression or to a delay, so what is
stored and evaluated is always plain cron.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from dripdrop.definitions.inputs import describe
from dripdrop.errors import ValidationError

__all__ = ["EXAMPLES", "MACROS", "HumanTiming", "parse_human"]

MACROS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

EXAMPLES = (
    "every day at 9am",
    "every monday at 9:30am",
    "every weekday at 8am",
    "every 2 hours",
    "every 15 minutes",
    "every month on the 1st at 9am",
    "in 3 days",
    "@daily",
)

_DAYS = {
    "sunday": "SUN", "sun": "SUN",
    "monday": "MON", "mon": "MON",
    "tuesday": "TUE", "tue": "TUE", "tues": "TUE",
    "wednesday": "WED", "wed": "WED",
    "thursday": "THU", "thu": "THU", "thur": "THU", "thurs": "THU",
    "friday": "FRI", "fri": "FRI",
    "saturday": "SAT", "sat": "SAT",
}  # fmt: skip
_DAY_ORDER = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_UNITS = {"minute": "minutes", "hour": "hours", "day": "days", "week": "weeks"}
_ONE = {"a": 1, "an": 1, "one": 1}
# The longest phrase of the grammar is far shorter; the cap keeps the regexes and messages small.
MAX_PHRASE_LENGTH = 200

_TIME_12 = re.compile(r"(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\.?")
_TIME_24 = re.compile(r"(\d{1,2}):(\d{2})")
_IN = re.compile(r"in (\d+|an?|one) (minute|hour|day|week)s?")
_EVERY_N = re.compile(r"every (\d+) (minute|hour)s?")
_MONTHLY = re.compile(r"(?:every month|monthly) on the (\d{1,2})(?:st|nd|rd|th)?(?: day)?")
_MONTHLY_LAST = re.compile(r"(?:every month|monthly) on the last day")


@dataclass(frozen=True)
class HumanTiming:
    """A parsed phrase: ``kind == "cron"`` with ``cron``, or ``"delay"`` with amount/unit."""

    kind: Literal["cron", "delay"]
    cron: str | None = None
    amount: int | None = None
    unit: str | None = None


def _fail(text: str, why: str | None = None) -> ValidationError:
    examples = ", ".join(repr(e) for e in EXAMPLES)
    shown = describe(text, 60)
    reason = f"{shown}: {why}" if why else f"unrecognised timing expression {shown}"
    return ValidationError.single("human_expression", f"{reason}. Examples: {examples}")


def _parse_time(raw: str, text: str) -> tuple[int, int]:
    """One time of day → (hour, minute); rejects 13pm, 25:00, 9:75 and friends."""
    if raw in ("noon", "midday"):
        return 12, 0
    if raw == "midnight":
        return 0, 0
    if m := _TIME_12.fullmatch(raw):
        hour, minute = int(m[1]), int(m[2] or 0)
        if not 1 <= hour <= 12:
            raise _fail(text, f"invalid time {raw!r}, with am/pm the hour runs 1-12")
        if minute > 59:
            raise _fail(text, f"invalid time {raw!r}, minutes run 00-59")
        # 12am is midnight and 12pm is noon.
        return hour % 12 + (12 if m[3] == "p" else 0), minute
    if m := _TIME_24.fullmatch(raw):
        hour, minute = int(m[1]), int(m[2])
        if hour > 23:
            raise _fail(text, f"invalid time {raw!r}, hours run 0-23")
        if minute > 59:
            raise _fail(text, f"invalid time {raw!r}, minutes run 00-59")
        return hour, minute
    raise _fail(text, f"invalid time {raw!r} (use 9am, 9:30pm, 15:00, noon or midnight)")


def _parse_times(raw: str | None, text: str) -> tuple[str, str]:
    """ "9am and 5pm" → cron minute and hour fields; several times must share the minute."""
    if raw is None:
        return "0", "0"
    parts = [p.strip() for p in re.split(r",|\band\b|&", raw) if p.strip()]
    times = [_parse_time(p, text) for p in parts]
    minutes = {m for _, m in times}
    if not times or len(minutes) > 1:
        raise _fail(text, "several times of day must share the same minute")
    hours = sorted({h for h, _ in times})
    return str(minutes.pop()), ",".join(map(str, hours))


def _parse_days(raw: str, text: str) -> str | None:
    """ "monday and thursday" → "MON,THU"; None when ``raw`` is not a list of weekdays."""
    names = [p.strip() for p in re.split(r",|\band\b|&", raw) if p.strip()]
    days: set[str] = set()
    for name in names:
        name = name.removesuffix("s") if name.removesuffix("s") in _DAYS else name
        if name not in _DAYS:
            return None
        days.add(_DAYS[name])
    return ",".join(d for d in _DAY_ORDER if d in days) if days else None


def _recurring(body: str, text: str) -> str | None:
    """The part before " at …": which days it fires on → "dom month dow" cron fields."""
    if body in ("every day", "daily", "each day", "every day of the week"):
        return "* * *"
    if body in ("every weekday", "weekdays", "on weekdays", "every weekdays"):
        return "* * MON-FRI"
    if body in ("every weekend", "every weekend day", "weekends", "on weekends"):
        return "* * SAT,SUN"
    if m := _MONTHLY.fullmatch(body):
        day = int(m[1])
        if not 1 <= day <= 31:
            raise _fail(text, f"invalid day of month {day}, days run 1-31")
        return f"{day} * *"
    if _MONTHLY_LAST.fullmatch(body):
        return "L * *"
    for prefix in ("every ", "on "):
        if body.startswith(prefix) and (days := _parse_days(body[len(prefix) :], text)):
            return f"* * {days}"
    return None


def parse_human(text: str) -> HumanTiming:
    """Parse a human timing phrase (case-insensitive) into a cron expression or a delay.

    Raises :class:`ValidationError` on ``human_expression`` naming the text and
    listing example forms when the phrase is not understood.
    """
    if not isinstance(text, str):
        raise ValidationError.single("human_expression", "must be a string")
    if len(text) > MAX_PHRASE_LENGTH:
        raise ValidationError.single(
            "human_expression",
            f"is too long ({len(text):,} characters; at most {MAX_PHRASE_LENGTH})",
        )
    phrase = " ".join(text.lower().split()).rstrip(".")
    if phrase in MACROS:
        return HumanTiming("cron", cron=MACROS[phrase])
    if m := _IN.fullmatch(phrase):
        amount = _ONE.get(m[1]) or int(m[1])
        if amount < 1:
            raise _fail(text, "the amount must be at least 1")
        return HumanTiming("delay", amount=amount, unit=_UNITS[m[2]])
    if phrase in ("every minute", "each minute"):
        return HumanTiming("cron", cron="* * * * *")
    if phrase in ("every hour", "hourly", "each hour"):
        return HumanTiming("cron", cron="0 * * * *")
    if m := _EVERY_N.fullmatch(phrase):
        n, unit = int(m[1]), m[2]
        limit = 59 if unit == "minute" else 23
        if not 1 <= n <= limit:
            raise _fail(text, f"every N {unit}s needs N between 1 and {limit}")
        if unit == "minute":
            return HumanTiming("cron", cron="* * * * *" if n == 1 else f"*/{n} * * * *")
        return HumanTiming("cron", cron="0 * * * *" if n == 1 else f"0 */{n} * * *")
    if phrase in ("every month", "monthly"):
        return HumanTiming("cron", cron=MACROS["@monthly"])
    body, _, when = phrase.partition(" at ")
    days = _recurring(body, text)
    if days is None:
        raise _fail(text)
    minute, hour = _parse_times(when if when else None, text)
    return HumanTiming("cron", cron=f"{minute} {hour} {days}")
