"""next_cron_time: strictly-after, timezones, and the DST gap and overlap rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from dripdrop.errors import ValidationError
from dripdrop.timing import next_cron_time

NY = "America/New_York"
BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold)


def runs(expr: str, zone: str, after: datetime, n: int) -> list[datetime]:
    out = []
    for _ in range(n):
        after = next_cron_time(expr, zone, after)
        out.append(after)
    return out


def test_result_is_aware_utc_and_evaluated_in_zone() -> None:
    got = next_cron_time("0 9 * * *", NY, utc(2024, 6, 1, 0, 0))
    assert got == utc(2024, 6, 1, 13, 0)  # 09:00 EDT
    assert got.tzinfo is UTC


def test_strictly_after_an_exact_match() -> None:
    at_nine = local(NY, 2024, 6, 3, 9, 0)
    assert next_cron_time("0 9 * * *", NY, at_nine) == local(NY, 2024, 6, 4, 9, 0)
    # Microseconds past the match also count as after it.
    assert next_cron_time("0 9 * * *", NY, at_nine + timedelta(microseconds=1)) == local(
        NY, 2024, 6, 4, 9, 0
    )
    just_before = at_nine - timedelta(microseconds=1)
    assert next_cron_time("0 9 * * *", NY, just_before) == at_nine


def test_after_may_be_in_any_zone() -> None:
    after = datetime(2024, 6, 3, 22, 0, tzinfo=timezone(timedelta(hours=9)))  # 13:00 UTC
    assert next_cron_time("30 13 * * *", "UTC", after) == utc(2024, 6, 3, 13, 30)


def test_human_phrase_and_macro_accepted() -> None:
    monday = utc(2024, 6, 3, 0, 0)  # a Monday
    assert next_cron_time("every monday at 9am", BERLIN, monday) == utc(2024, 6, 3, 7, 0)
    assert next_cron_time("@weekly", "UTC", monday) == utc(2024, 6, 9, 0, 0)


def test_half_hour_offset_zone() -> None:
    got = next_cron_time("0 9 * * *", "Asia/Kolkata", utc(2024, 1, 1, 0, 0))
    assert got == utc(2024, 1, 1, 3, 30)


def test_naive_after_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_cron_time("0 9 * * *", NY, datetime(2024, 1, 1))


def test_bad_zone_and_expression() -> None:
    with pytest.raises(ValidationError) as info:
        next_cron_time("0 9 * * *", "Nowhere/Land", utc(2024, 1, 1))
    assert "timezone" in info.value.errors
    with pytest.raises(ValidationError) as info:
        next_cron_time("0 24 * * *", NY, utc(2024, 1, 1))
    assert "cron_expression" in info.value.errors


# --- spring forward: the local time does not exist --------------------------------------------
# US 2024-03-10 02:00 EST → 03:00 EDT (07:00 UTC); EU 2024-03-31 02:00 CET → 03:00 CEST (01:00 UTC)


@pytest.mark.parametrize(
    ("zone", "day", "gap_end_utc"),
    [(NY, datetime(2024, 3, 10), utc(2024, 3, 10, 7)),
     (BERLIN, datetime(2024, 3, 31), utc(2024, 3, 31, 1))],
)  # fmt: skip
def test_gap_time_fires_at_first_valid_minute_after_the_gap(
    zone: str, day: datetime, gap_end_utc: datetime
) -> None:
    day_before = local(zone, day.year, day.month, day.day - 1, 12, 0)
    first, second = runs("30 2 * * *", zone, day_before, 2)
    assert first == gap_end_utc  # 03:00 local, the instant the gap ends
    assert first.astimezone(ZoneInfo(zone)).strftime("%H:%M") == "03:00"
    next_day = day + timedelta(days=1)
    assert second == local(zone, next_day.year, next_day.month, next_day.day, 2, 30)


def test_frequent_job_across_the_gap_fires_once_at_its_end() -> None:
    got = runs("*/15 * * * *", NY, local(NY, 2024, 3, 10, 1, 30), 4)
    assert [g.astimezone(ZoneInfo(NY)).strftime("%H:%M") for g in got] == [
        "01:45", "03:00", "03:15", "03:30",
    ]  # fmt: skip


def test_hourly_job_keeps_the_gap_run_at_the_gap_end() -> None:
    got = runs("30 * * * *", BERLIN, local(BERLIN, 2024, 3, 31, 0, 45), 3)
    assert [g.astimezone(ZoneInfo(BERLIN)).strftime("%H:%M") for g in got] == [
        "01:30", "03:00", "03:30",
    ]  # fmt: skip


# --- fall back: the local time occurs twice ---------------------------------------------------
# US 2024-11-03 02:00 EDT → 01:00 EST; EU 2024-10-27 03:00 CEST → 02:00 CET


@pytest.mark.parametrize(
    ("zone", "expr", "day", "first_utc"),
    [(NY, "30 1 * * *", datetime(2024, 11, 3), utc(2024, 11, 3, 5, 30)),
     (BERLIN, "30 2 * * *", datetime(2024, 10, 27), utc(2024, 10, 27, 0, 30))],
)  # fmt: skip
def test_overlap_time_fires_once_at_first_occurrence(
    zone: str, expr: str, day: datetime, first_utc: datetime
) -> None:
    first, second = runs(expr, zone, local(zone, day.year, day.month, day.day, 0, 0), 2)
    assert first == first_utc
    assert second.astimezone(ZoneInfo(zone)).day == day.day + 1  # not again an hour later


@pytest.mark.parametrize(
    ("zone", "expr", "second_pass"),
    [(NY, "30 1 * * *", local(NY, 2024, 11, 3, 1, 10, fold=1)),
     (BERLIN, "30 2 * * *", local(BERLIN, 2024, 10, 27, 2, 10, fold=1))],
)  # fmt: skip
def test_overlap_time_does_not_fire_during_the_second_pass(
    zone: str, expr: str, second_pass: datetime
) -> None:
    got = next_cron_time(expr, zone, second_pass)
    assert got.astimezone(ZoneInfo(zone)).day == second_pass.day + 1


def test_frequent_job_skips_the_repeated_hour() -> None:
    got = runs("*/30 * * * *", NY, local(NY, 2024, 11, 3, 0, 45), 4)
    offsets = [g.astimezone(ZoneInfo(NY)).strftime("%H:%M%z") for g in got]
    assert offsets == ["01:00-0400", "01:30-0400", "02:00-0500", "02:30-0500"]
