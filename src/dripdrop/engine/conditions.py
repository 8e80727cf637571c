"""Evaluating conditions: value lookup, operators with coercion, time windows."""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dripdrop.datapath import lookup

__all__ = ["compare", "lookup", "next_window_opening", "window_zone"]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _number(value: Any) -> float | None:
    """The value as a finite number, or None. "nan", "inf" and "Infinity" are words, not
    numbers: as floats they would make every ordering false (NaN) or everything smaller (inf)."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str):
            number = float(value.strip())
        else:
            return None
    except (ValueError, OverflowError):  # OverflowError: an int past the float range
        return None
    return number if math.isfinite(number) else None


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _equal(actual: Any, expected: Any) -> bool:
    a_num, e_num = _number(actual), _number(expected)
    if a_num is not None and e_num is not None:
        return a_num == e_num
    a_bool, e_bool = _boolean(actual), _boolean(expected)
    if a_bool is not None and e_bool is not None:
        return a_bool == e_bool
    if actual is None:
        return expected is None or expected == ""
    return str(actual) == str(expected)


def _as_list(expected: Any) -> list[Any]:
    if isinstance(expected, list):
        return expected
    if isinstance(expected, str):
        text = expected.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
                if isinstance(parsed, list):
                    return parsed
            except (ValueError, RecursionError):  # RecursionError: "[[[[…" thousands deep
                pass
        return [p.strip() for p in text.split(",")]
    return [expected]


_ORDER = {"gt": operator.gt, "lt": operator.lt, "gte": operator.ge, "lte": operator.le}


def compare(actual: Any, operator: str, expected: Any) -> bool:
    """Apply an operator. Numbers compare as numbers when both sides are numeric, "true"/"false"
    as booleans; ordering operators are false when either side is not a number (or both text).

    A condition's operator and expected value are read once (:func:`_compiled`): conditions
    and transitions are checked for every execution, and coercing the same expected value each
    time was most of their cost."""
    # 0.0 and -0.0 are equal keys but not the same text ("contains" compares text): floats
    # are told apart by their repr too.
    spelled = repr(expected) if type(expected) is float else None
    try:
        check = _compiled(operator, type(expected), spelled, expected)
    except TypeError:  # an unhashable expected value (a list): the slow path
        return _compare(actual, operator, expected)
    return check(actual)


@lru_cache(maxsize=4096)
def _compiled(
    operator: str, kind: type, spelled: str | None, expected: Any
) -> Callable[[Any], bool]:
    """``compare`` with ``operator`` and ``expected`` fixed (``kind``, the expected value's
    type, and ``spelled``, a float's repr, are in the key: ``True``, ``1`` and ``1.0`` are
    equal keys but not equal values, and so are ``0.0`` and ``-0.0``)."""
    if operator in ("eq", "neq"):
        same = _equal_to(expected)
        return same if operator == "eq" else lambda actual: not same(actual)
    if operator in ("gt", "lt", "gte", "lte"):
        order, e = _ORDER[operator], _number(expected)
        text = isinstance(expected, str) and e is None

        def ordered(actual: Any) -> bool:
            a = _number(actual)
            if a is None or e is None:
                # Text orders as text only when neither side is a number (ISO dates compare well).
                return text and isinstance(actual, str) and a is None and order(actual, expected)
            return order(a, e)

        return ordered
    if operator in ("in", "not_in"):
        members = [_equal_to(e) for e in _as_list(expected)]
        if operator == "in":
            return lambda actual: any(m(actual) for m in members)
        return lambda actual: not any(m(actual) for m in members)
    if operator == "exists":
        wanted = _boolean(expected)
        if wanted is None:
            return lambda actual: actual is not None
        return lambda actual: (actual is not None) == wanted
    if operator == "contains":
        return lambda actual: _compare(actual, operator, expected)
    raise ValueError(f"unknown operator {operator!r}")


def _equal_to(expected: Any) -> Callable[[Any], bool]:
    """``_equal(actual, expected)`` as a function of ``actual``, ``expected`` coerced once."""
    e_num, e_bool, e_text = _number(expected), _boolean(expected), str(expected)
    when_none = expected is None or expected == ""

    def equal(actual: Any) -> bool:
        if e_num is not None:
            a_num = _number(actual)
            if a_num is not None:
                return a_num == e_num
        if e_bool is not None:
            a_bool = _boolean(actual)
            if a_bool is not None:
                return a_bool == e_bool
        if actual is None:
            return when_none
        return str(actual) == e_text

    return equal


def _compare(actual: Any, operator: str, expected: Any) -> bool:
    """``compare`` evaluated from scratch (expected values that cannot be cached)."""
    if operator == "eq":
        return _equal(actual, expected)
    if operator == "neq":
        return not _equal(actual, expected)
    if operator in ("gt", "lt", "gte", "lte"):
        a, e = _number(actual), _number(expected)
        if a is None or e is None:
            if isinstance(actual, str) and isinstance(expected, str) and a is None and e is None:
                return _ORDER[operator](actual, expected)
            return False
        return _ORDER[operator](a, e)
    if operator == "in":
        return any(_equal(actual, e) for e in _as_list(expected))
    if operator == "not_in":
        return not any(_equal(actual, e) for e in _as_list(expected))
    if operator == "contains":
        if isinstance(actual, list | tuple | set):
            return any(_equal(a, expected) for a in actual)
        if isinstance(actual, dict):
            return str(expected) in actual
        return actual is not None and str(expected) in str(actual)
    if operator == "exists":
        wanted = _boolean(expected)
        present = actual is not None
        return present if wanted is None else present == wanted
    raise ValueError(f"unknown operator {operator!r}")


def _hhmm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def window_zone(config: dict[str, Any], data: dict[str, Any]) -> ZoneInfo:
    """The window's timezone: the enrollment's ``timezone_field`` when set and valid."""
    field = config.get("timezone_field")
    candidates = [lookup(data, field) if field else None, config.get("timezone"), "UTC"]
    for name in candidates:
        if isinstance(name, str) and name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def next_window_opening(
    config: dict[str, Any], data: dict[str, Any], now: datetime
) -> datetime | None:
    """None when ``now`` is inside the window; otherwise the next instant it opens (UTC).

    A window whose end is before its start spans midnight (22:00-06:00).
    """
    tz = window_zone(config, data)
    days = {str(d).lower()[:3] for d in config.get("days") or DAY_NAMES}
    start, end = _hhmm(config["start"]), _hhmm(config["end"])
    local = now.astimezone(tz)

    def inside(moment: datetime) -> bool:
        t = moment.timetz().replace(tzinfo=None)
        day = DAY_NAMES[moment.weekday()]
        if start <= end:
            return day in days and start <= t < end
        # Overnight window: the part after midnight belongs to the previous day's window.
        if t >= start:
            return day in days
        prev = DAY_NAMES[(moment.weekday() - 1) % 7]
        return t < end and prev in days

    if inside(local):
        return None
    for offset in range(0, 8):
        day = (local + timedelta(days=offset)).date()
        if DAY_NAMES[day.weekday()] not in days:
            continue
        # fold=0 and normalising through UTC moves a start inside a DST gap forward.
        opening = datetime.combine(day, start, tzinfo=tz).astimezone(UTC)
        if opening > now:
            return opening
    return None
