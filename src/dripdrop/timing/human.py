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
    "first monday of the month at 9am",
    "last friday of the month at 5pm",
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

# Ordinal phrases: "first monday of the month", "every 2nd tuesday", "last day of the month".
LAST = -1
_ORDINAL_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": LAST}
_ORD = r"(?:first|second|third|fourth|fifth|last|\d{1,2}(?:st|nd|rd|th))"
_LIST_SEP = r"(?:\s*,\s*|\s*,?\s*and\s+|\s*&\s*)"
# what (the weekday, "day" …) is optional and tried shortest first, so a trailing "of the
# month" is read as the month part rather than as part of what.
_NTH = re.compile(
    rf"(?:(?P<every>every|each|on) )?(?:the )?(?P<ords>{_ORD}(?:{_LIST_SEP}{_ORD})*)"
    r"(?: (?P<what>.+?))??"
    r"(?P<tail> (?:of|in) (?:the|every|each) month| every month| each month| of (?P<month>[a-z]+))?"
)
_MONTHLY_ON = re.compile(r"(?:every month|each month|monthly) on (?:the )?(.+)")
_EVERY_OTHER = re.compile(r"every (other|two|three|four|\d+) (.+)")
_FORTNIGHTLY = re.compile(r"(?:fortnightly|bi-?weekly|every fortnight)(?: on (.+))?")
_COUNTS = {"other": 2, "two": 2, "three": 3, "four": 4}
_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip
_MONTH_ABBR = {n: name[:3].title() for name, n in _MONTHS.items()}
_DAY_NAMES = {code: name for name, code in _DAYS.items() if name.endswith("day")}


@dataclass(frozen=True)
class HumanTiming:
    """A parsed phrase: ``kind == "cron"`` with ``cron``, or ``"delay"`` with amount/unit."""

    kind: Literal["cron", "delay"]
    cron: str | None = None
    amount: int | None = None
    unit: str | None = None


def _refuse(text: str, why: str) -> ValidationError:
    """An error for a phrase that was understood but cannot be one cron expression."""
    return ValidationError.single("human_expression", f"{describe(text, 60)}: {why}")


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


def _hint_time(when: str, text: str) -> str:
    """The "minute hour" cron fields of " at …" for a hint; midnight when there is none."""
    try:
        minute, hour = _parse_times(when or None, text)
    except ValidationError:
        minute, hour = "0", "0"
    return f"{minute} {hour}"


def _ordinals(raw: str) -> list[int]:
    """ "1st, 3rd and last" → [1, 3, LAST], without repeats."""
    out: list[int] = []
    for token in (t.strip() for t in re.split(r",|\band\b|&", raw)):
        if token:
            n = _ORDINAL_WORDS.get(token) or int(token[:-2])
            if n not in out:
                out.append(n)
    return out


def _days_of_month(ords: list[int], text: str) -> str:
    """[1, 15, LAST] → "1,15,L" (the day-of-month field)."""
    bad = [n for n in ords if n != LAST and not 1 <= n <= 31]
    if bad:
        raise _fail(text, f"invalid day of month {bad[0]}, days run 1-31")
    days = sorted(n for n in ords if n != LAST)
    return ",".join([str(d) for d in days] + (["L"] if LAST in ords else []))


def _nth_weekdays(ords: list[int], days: str, text: str) -> str:
    """[1, 3] with "MON" → "MON#1,MON#3"; [LAST] with "FRI" → "5L" (the day-of-week field)."""
    items = []
    for day in days.split(","):
        for n in ords:
            if n == LAST:
                items.append(f"{_DAY_ORDER.index(day)}L")  # cronsim reads L only after a number
            elif 1 <= n <= 5:
                items.append(f"{day}#{n}")
            else:
                name = _DAY_NAMES[day]
                raise _refuse(
                    text,
                    f"a month has at most five {name}s: use first to fifth, or last "
                    f"(cron '{day}#1' to '{day}#5', or '{_DAY_ORDER.index(day)}L')",
                )
    return ",".join(items)


def _interval_error(text: str, n: int, unit: str, days: str | None, when: str) -> ValidationError:
    """Why "every other tuesday", "every 2 days" … are not cron, and the cron that comes closest."""
    at = _hint_time(when, text)
    delay = (
        f"for exactly {n} {unit} apart use a delay timing "
        f"{{'type': 'delay', 'delay_amount': {n}, 'delay_unit': '{unit}', "
        "'relative_to': 'previous_step'}"
    )
    if unit == "days":
        if n > 15:  # */n would fire once or twice a month: no closest cron worth showing
            return _refuse(text, f"cron cannot count every {n} days; {delay}")
        return _refuse(
            text,
            f"cron cannot count every {n} days; the closest cron, '{at} */{n} * *', runs on days "
            f"1, {1 + n}, {1 + 2 * n} … of each month and starts again on the 1st; {delay}",
        )
    if unit == "months":
        if n > 6:
            return _refuse(text, f"cron cannot count every {n} months (a year has 12)")
        months = ", ".join(_MONTH_ABBR[m] for m in range(1, 13, n)[:3])
        return _refuse(
            text,
            f"cron counts every {n} months from January: '{at} 1 */{n} *' runs on the 1st of "
            f"{months} …; write that cron expression if that is what you mean",
        )
    codes = (days or "MON").split(",")
    twice = ",".join(f"{d}#{k}" for d in codes for k in (2, 4))
    names = " and ".join(_DAY_NAMES[d] for d in codes)
    hint = f"'every 2nd {names}' is the second one of each month (cron '{at} * * "
    hint += ",".join(f"{d}#2" for d in codes) + "')"
    if n == 2:
        hint = f"'every 2nd and 4th {names}' is twice a month (cron '{at} * * {twice}'); " + hint
    why = f"cron has no week counter, so every {n} weeks cannot be written in cron"
    return _refuse(text, f"{why}; {hint}; {delay}")


def _interval(body: str, when: str, text: str) -> ValidationError | None:
    """The error for a phrase that counts days, weeks or months ("every other tuesday",
    "fortnightly", "every 2 days"); None when ``body`` is not such a phrase."""
    if m := _FORTNIGHTLY.fullmatch(body):
        days = _parse_days(m[1], text) if m[1] else None
        return _interval_error(text, 2, "weeks", days, when) if days or not m[1] else None
    if not (m := _EVERY_OTHER.fullmatch(body)):
        return None
    n = _COUNTS.get(m[1]) or int(m[1])
    if n < 2:
        return None
    what, _, on = m[2].partition(" on ")
    if what in ("day", "days") and not on:
        return _interval_error(text, n, "days", None, when)
    if what in ("month", "months") and not on:
        return _interval_error(text, n, "months", None, when)
    if what in ("week", "weeks"):
        days = _parse_days(on, text) if on else None
        return _interval_error(text, n, "weeks", days, when) if days or not on else None
    days = _parse_days(m[2], text)
    return _interval_error(text, n, "weeks", days, when) if days else None


def _nth(body: str, when: str, text: str) -> str | None:
    """Ordinal phrases → the "dom month dow" cron fields; None when ``body`` is not one.

    "first monday of the month" → ``* * MON#1``; "last friday of the month" → ``* * 5L``;
    "every 2nd tuesday" → ``* * TUE#2`` (the 2nd tuesday of each month: every phrase is one
    cron expression, and cron cannot count weeks); "1st and 15th of the month" → ``1,15 * *``;
    "last day of the month" → ``L * *``; "last weekday of the month" → ``LW * *``;
    "first monday of september" → ``* 9 MON#1``.
    """
    if m := _MONTHLY_ON.fullmatch(body):
        body = f"{m[1]} of the month"
    if not (m := _NTH.fullmatch(body)):
        return None
    ords, what = _ordinals(m["ords"]), m["what"]
    every, in_month = m["every"] in ("every", "each"), m["tail"] is not None
    month = "*"
    if m["month"]:
        if m["month"] not in _MONTHS:
            raise _refuse(text, f"unknown month {m['month']!r}")
        month = str(_MONTHS[m["month"]])
    at, said = _hint_time(when, text), ("every " if every else "") + m["ords"]
    if what in (None, "day"):
        if in_month:
            return f"{_days_of_month(ords, text)} {month} *"
        if every and what == "day" and len(ords) == 1 and ords[0] > 1:
            raise _interval_error(text, ords[0], "days", None, when)
        dom = _days_of_month(ords, text)
        raise _refuse(text, f"say '{said} of the month' (cron '{at} {dom} * *')")
    if what in ("weekday", "working day", "business day"):
        if ords == [LAST]:
            return f"LW {month} *"
        raise _refuse(
            text,
            "cron can name the last weekday of the month ('last weekday of the month', cron "
            f"'{at} LW * *') but not the first or nth; 'first monday of the month' is "
            f"'{at} * * MON#1'",
        )
    if what in ("week", "month") and every and len(ords) == 1 and ords[0] > 1:
        raise _interval_error(text, ords[0], what + "s", None, when)
    days = _parse_days(what, text)
    if days is None:
        raise _refuse(
            text,
            "ordinal phrases read '<first…fifth or last> <weekday> of the month' (cron "
            f"'{at} * * MON#1', last friday: '{at} * * 5L') or '<1st…31st or last> of the month' "
            f"(cron '{at} 1 * *', last day: '{at} L * *')",
        )
    dow = _nth_weekdays(ords, days, text)
    if not (every or in_month):
        raise _refuse(text, f"say '{said} {what} of the month' (cron '{at} * * {dow}')")
    return f"* {month} {dow}"


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
    days = _recurring(body, text) or _nth(body, when, text)
    if days is None:
        raise _interval(body, when, text) or _fail(text)
    minute, hour = _parse_times(when if when else None, text)
    return HumanTiming("cron", cron=f"{minute} {hour} {days}")
