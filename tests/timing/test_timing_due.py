"""delay_delta, due_time and event_timeout_at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dripdrop.errors import ValidationError
from dripdrop.timing import delay_delta, due_time, event_timeout_at

START = datetime(2024, 3, 8, 12, 0, tzinfo=UTC)  # a Friday, two days before US DST starts


@pytest.mark.parametrize(
    ("amount", "unit", "expected"),
    [(5, "minutes", timedelta(minutes=5)), (2, "hours", timedelta(hours=2)),
     (3, "days", timedelta(days=3)), (1, "week", timedelta(weeks=1))],
)  # fmt: skip
def test_delay_delta(amount: int, unit: str, expected: timedelta) -> None:
    assert delay_delta(amount, unit) == expected


@pytest.mark.parametrize(("amount", "unit"), [(0, "days"), (-1, "days"), (True, "days"),
                                              (1, "fortnights")])  # fmt: skip
def test_delay_delta_refuses_bad_input(amount: int, unit: str) -> None:
    with pytest.raises(ValidationError):
        delay_delta(amount, unit)


def test_immediate() -> None:
    done = START + timedelta(hours=5)
    assert due_time({"type": "immediate"}, enrollment_start=START, previous_done=None) == START
    assert due_time(None, enrollment_start=START, previous_done=done) == done  # type: ignore[arg-type]


def test_delay_measured_from_enrollment_start() -> None:
    timing = {"type": "delay", "delay_amount": 3, "delay_unit": "days"}
    done = START + timedelta(hours=1)
    assert due_time(timing, enrollment_start=START, previous_done=done) == START + timedelta(days=3)


def test_delay_never_before_previous_step_done() -> None:
    timing = {"type": "delay", "delay_amount": 1, "delay_unit": "hours"}
    done = START + timedelta(hours=4)
    assert due_time(timing, enrollment_start=START, previous_done=done) == done


def test_delay_relative_to_previous_step() -> None:
    timing = {"type": "delay", "delay_amount": 2, "delay_unit": "hours",
              "relative_to": "previous_step"}  # fmt: skip
    done = START + timedelta(hours=4)
    assert due_time(timing, enrollment_start=START, previous_done=done) == done + timedelta(hours=2)
    # With no previous step yet it falls back to enrollment start.
    got = due_time(timing, enrollment_start=START, previous_done=None)
    assert got == START + timedelta(hours=2)


def test_delay_days_are_elapsed_time_across_dst() -> None:
    # 3 days across the US spring-forward are exactly 72 hours.
    got = due_time({"human_expression": "in 3 days"}, enrollment_start=START, previous_done=None)
    assert got is not None and got - START == timedelta(hours=72)


def test_cron_strictly_after_previous_done_or_start() -> None:
    timing = {"type": "cron", "cron_expression": "every day at 9am", "timezone": "America/New_York"}
    assert due_time(timing, enrollment_start=START, previous_done=None) == datetime(
        2024, 3, 8, 14, 0, tzinfo=UTC
    )  # 07:00 EST → 09:00 EST the same day
    done = datetime(2024, 3, 10, 13, 0, tzinfo=UTC)  # exactly 09:00 EDT: the next is tomorrow
    assert due_time(timing, enrollment_start=START, previous_done=done) == datetime(
        2024, 3, 11, 13, 0, tzinfo=UTC
    )


def test_event_has_no_due_time() -> None:
    timing = {"type": "event", "trigger_event": "paid"}
    assert due_time(timing, enrollment_start=START, previous_done=None) is None


def test_results_are_utc_even_for_other_zones() -> None:
    start = START.astimezone(timezone(timedelta(hours=-7)))
    got = due_time({"type": "delay", "delay_amount": 1, "delay_unit": "days"},
                   enrollment_start=start, previous_done=None)  # fmt: skip
    assert got is not None and got.tzinfo is UTC and got == START + timedelta(days=1)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        due_time({"type": "immediate"}, enrollment_start=datetime(2024, 1, 1), previous_done=None)
    with pytest.raises(ValueError, match="aware"):
        event_timeout_at({"type": "event", "trigger_event": "e"}, activated_at=datetime(2024, 1, 1))


def test_invalid_timing_is_refused() -> None:
    with pytest.raises(ValidationError):
        due_time({"type": "delay"}, enrollment_start=START, previous_done=None)


def test_event_timeout() -> None:
    timing = {"type": "event", "trigger_event": "paid", "timeout_amount": 3,
              "timeout_unit": "days"}  # fmt: skip
    assert event_timeout_at(timing, activated_at=START) == START + timedelta(days=3)
    no_timeout = {"type": "event", "trigger_event": "paid"}
    assert event_timeout_at(no_timeout, activated_at=START) is None
    assert event_timeout_at({"type": "immediate"}, activated_at=START) is None
