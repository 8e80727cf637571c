"""When a step is due: delays, cron runs and event timeouts, always in aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dripdrop.errors import ValidationError
from dripdrop.timing.cron import next_cron_time
from dripdrop.timing.spec import UNITS, normalize_timing, unit_of

__all__ = ["delay_delta", "due_time", "event_timeout_at"]


def delay_delta(amount: int, unit: str) -> timedelta:
    """Return ``amount`` times ``unit`` (minutes, hours, days or weeks) as a timedelta.

    Days and weeks are fixed lengths (24 h and 168 h): delays are measured in
    elapsed time, not on a local calendar, so DST never stretches them.
    """
    canonical = unit_of(unit)
    if canonical is None:
        raise ValidationError.single("unit", f"must be one of {', '.join(UNITS)}")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
        raise ValidationError.single("amount", "must be a positive integer")
    return timedelta(**{canonical: amount})


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _utc(value: datetime, name: str) -> datetime:
    return _as_utc(_aware(value, name))


def due_time(
    timing: dict,
    *,
    enrollment_start: datetime,
    previous_done: datetime | None,
    normalized: bool = False,
) -> datetime | None:
    """Return when a step with this timing is due, or None for event steps.

    immediate → when the previous step was done (or enrollment start);
    delay → base + delay but never before the previous step was done, where
    base is enrollment start, or the previous step with relative_to
    "previous_step"; cron → the next run strictly after the previous step was
    done (or enrollment start). Event steps are due when their event arrives.
    ``normalized=True`` skips re-validation for timings already stored normalised (the
    engine's hot path).
    """
    t = timing if normalized else normalize_timing(timing)
    # Aware datetimes compare and add correctly whatever their zone: check they are aware, and
    # convert only the answer to UTC.
    start = _aware(enrollment_start, "enrollment_start")
    done = _aware(previous_done, "previous_done") if previous_done is not None else None
    since = done or start
    kind = t["type"]
    if kind == "immediate":
        return _as_utc(since)
    if kind == "delay":
        base = done if done and t["relative_to"] == "previous_step" else start
        return _as_utc(max(base + timedelta(**{t["delay_unit"]: t["delay_amount"]}), since))
    if kind == "cron":
        return next_cron_time(t["cron_expression"], t["timezone"], _as_utc(since))
    return None


def event_timeout_at(
    timing: dict, *, activated_at: datetime, normalized: bool = False
) -> datetime | None:
    """Return when an event step activated at ``activated_at`` times out, if it has a timeout."""
    t = timing if normalized else normalize_timing(timing)
    activated = _utc(activated_at, "activated_at")
    if t["type"] != "event" or "timeout_amount" not in t:
        return None
    return activated + delay_delta(t["timeout_amount"], t["timeout_unit"])
