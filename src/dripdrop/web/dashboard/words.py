"""Step timings and conditions in words, as the step builder shows them.

Cron expressions are described by ``cron-descriptor`` ("At 09:00 AM, only on Monday"); the
timezone is named after it, shortened to its city ("New York").
"""

from __future__ import annotations

from typing import Any

_UNIT_ONE = {"minutes": "minute", "hours": "hour", "days": "day", "weeks": "week"}
_OPERATORS = {
    "eq": "is",
    "ne": "is not",
    "neq": "is not",
    "gt": "is more than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "contains": "contains",
    "not_contains": "does not contain",
    "in": "is one of",
    "not_in": "is not one of",
    "exists": "is set",
    "not_exists": "is not set",
    "is_true": "is true",
    "is_false": "is false",
}


def _amount(amount: Any, unit: Any) -> str:
    unit = str(unit or "")
    if amount == 1:
        return f"1 {_UNIT_ONE.get(unit, unit)}"
    return f"{amount} {unit}"


def cron_in_words(expression: str) -> str:
    """ "0 9 * * MON" → "At 09:00 AM, only on Monday"; the expression itself when it cannot be
    described."""
    try:
        from cron_descriptor import Options, get_description

        options = Options()
        options.use_24hour_time_format = True
        return str(get_description(expression, options))
    except Exception:  # an exotic expression: show it as it is
        return expression


def _zone(name: Any) -> str:
    if not name or name == "UTC":
        return "UTC"
    return str(name).rsplit("/", 1)[-1].replace("_", " ")


def timing_in_words(timing: Any, first: bool = False) -> str:
    """A stored timing as a sentence: "2 days after enrollment", "At 09:00, only on Monday
    (New York)", "when order_completed happens (or after 3 days)"."""
    if not isinstance(timing, dict):
        return "immediately"
    kind = timing.get("type", "immediate")
    if kind == "immediate":
        return "immediately at enrollment" if first else "immediately after the previous step"
    if kind == "delay":
        after = (
            "the previous step"
            if timing.get("relative_to") == "previous_step" and not first
            else "enrollment"
        )
        return f"{_amount(timing.get('delay_amount'), timing.get('delay_unit'))} after {after}"
    if kind == "cron":
        words = cron_in_words(str(timing.get("cron_expression", "")))
        return f"{words} ({_zone(timing.get('timezone'))})"
    if kind == "event":
        text = f"when {timing.get('trigger_event')} happens"
        if timing.get("timeout_amount"):
            text += f" (or after {_amount(timing['timeout_amount'], timing.get('timeout_unit'))})"
        return text
    return str(kind)


def condition_in_words(condition: Any) -> str:
    """A condition as a sentence: "plan_tier is enterprise", "3 paid events or more"."""
    kind = getattr(condition, "condition_type", "")
    op = _OPERATORS.get(getattr(condition, "operator", ""), getattr(condition, "operator", ""))
    expected = getattr(condition, "expected_value", None)
    config = getattr(condition, "config", None) or {}
    value = "" if expected is None else f" {expected}"
    if kind == "enrollment_data":
        return f"data {condition.field_path} {op}{value}"
    if kind == "event":
        return f"count of {config.get('event_key')} events {op}{value}"
    if kind == "time_window":
        days = ", ".join(config.get("days") or []) or "any day"
        zone = config.get("timezone") or f"data.{config.get('timezone_field')}"
        return f"only {days} {config.get('start')}–{config.get('end')} ({zone})"
    if kind == "hook":
        target = condition.hook_function or f"HTTP hook {condition.http_hook_id}"
        return f"hook {target} {op}{value}"
    return f"{kind} {op}{value}"
