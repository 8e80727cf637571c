"""Ordinal phrases ("first monday of the month", "every 2nd tuesday"): their cron, their next
fire times with a fixed clock in a fixed timezone, and the refusals that point at working cron."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from dripdrop.errors import ValidationError
from dripdrop.timing import HumanTiming, next_cron_time, normalize_timing, parse_human

ZONE = "America/New_York"
NY = ZoneInfo(ZONE)
# Thursday 10 January 2030, noon in New York. US daylight saving time starts on 10 March 2030.
AFTER = datetime(2030, 1, 10, 12, 0, tzinfo=NY)


def ny(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2030) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


# phrase, cron, the next three local fire times after AFTER (read off a 2030 calendar).
ORDINALS = [
    ("first monday of the month at 9am", "0 9 * * MON#1", [ny(2, 4, 9), ny(3, 4, 9), ny(4, 1, 9)]),
    ("1st monday of the month at 9am", "0 9 * * MON#1", [ny(2, 4, 9), ny(3, 4, 9), ny(4, 1, 9)]),
    ("on the first monday of each month at 9am", "0 9 * * MON#1",
     [ny(2, 4, 9), ny(3, 4, 9), ny(4, 1, 9)]),
    ("every month on the first monday at 9am", "0 9 * * MON#1",
     [ny(2, 4, 9), ny(3, 4, 9), ny(4, 1, 9)]),
    # The seed's family is "every <day>" = the days that match; every phrase is one cron
    # expression, so "every 2nd tuesday" is the second tuesday of each month.
    ("every 2nd tuesday", "0 0 * * TUE#2", [ny(2, 12), ny(3, 12), ny(4, 9)]),
    ("every second tuesday at 9am", "0 9 * * TUE#2", [ny(2, 12, 9), ny(3, 12, 9), ny(4, 9, 9)]),
    ("every 2nd tuesday at 9am and 5pm", "0 9,17 * * TUE#2",
     [ny(2, 12, 9), ny(2, 12, 17), ny(3, 12, 9)]),
    ("last friday of the month at 5pm", "0 17 * * 5L",
     [ny(1, 25, 17), ny(2, 22, 17), ny(3, 29, 17)]),
    ("monthly on the last friday at 5pm", "0 17 * * 5L",
     [ny(1, 25, 17), ny(2, 22, 17), ny(3, 29, 17)]),
    ("every last sunday", "0 0 * * 0L", [ny(1, 27), ny(2, 24), ny(3, 31)]),
    ("second wednesday of every month", "0 0 * * WED#2", [ny(2, 13), ny(3, 13), ny(4, 10)]),
    ("every first and third monday at 10:30am", "30 10 * * MON#1,MON#3",
     [ny(1, 21, 10, 30), ny(2, 4, 10, 30), ny(2, 18, 10, 30)]),
    ("every 2nd and 4th tuesday at 9am", "0 9 * * TUE#2,TUE#4",
     [ny(1, 22, 9), ny(2, 12, 9), ny(2, 26, 9)]),
    # Months with five mondays only.
    ("fifth monday of the month", "0 0 * * MON#5", [ny(4, 29), ny(7, 29), ny(9, 30)]),
    ("first monday of september at 9am", "0 9 * 9 MON#1",
     [ny(9, 2, 9), ny(9, 1, 9, year=2031), ny(9, 6, 9, year=2032)]),
    ("every 1st of the month", "0 0 1 * *", [ny(2, 1), ny(3, 1), ny(4, 1)]),
    ("the first of the month at 8am", "0 8 1 * *", [ny(2, 1, 8), ny(3, 1, 8), ny(4, 1, 8)]),
    ("every 1st and 15th of the month at 9am", "0 9 1,15 * *",
     [ny(1, 15, 9), ny(2, 1, 9), ny(2, 15, 9)]),
    ("every month on the 15th at 9am", "0 9 15 * *", [ny(1, 15, 9), ny(2, 15, 9), ny(3, 15, 9)]),
    ("last day of the month at 6pm", "0 18 L * *", [ny(1, 31, 18), ny(2, 28, 18), ny(3, 31, 18)]),
    ("every 1st and last day of the month", "0 0 1,L * *", [ny(1, 31), ny(2, 1), ny(2, 28)]),
    ("last weekday of the month at 6pm", "0 18 LW * *",
     [ny(1, 31, 18), ny(2, 28, 18), ny(3, 29, 18)]),
]  # fmt: skip


@pytest.mark.parametrize(("phrase", "cron", "runs"), ORDINALS)
def test_ordinal_phrase_translates_to_cron(phrase: str, cron: str, runs: list[datetime]) -> None:
    assert parse_human(phrase) == HumanTiming("cron", cron=cron)


@pytest.mark.parametrize(("phrase", "cron", "runs"), ORDINALS)
def test_ordinal_phrase_fires_at_the_expected_local_times(
    phrase: str, cron: str, runs: list[datetime]
) -> None:
    got, after = [], AFTER
    for _ in runs:
        after = next_cron_time(phrase, ZONE, after)
        got.append(after)
    assert got == runs
    # The same instants from the cron it stands for, and in UTC as the engine stores them.
    assert next_cron_time(cron, ZONE, AFTER) == runs[0]
    assert all(t.tzinfo is UTC for t in got)


def test_the_timezone_decides_which_monday_morning() -> None:
    # 23:30 UTC on Sunday 3 February is already 08:30 on Monday 4 February in Tokyo.
    after = datetime(2030, 2, 3, 23, 30, tzinfo=UTC)
    phrase = "first monday of the month at 9am"
    assert next_cron_time(phrase, "Asia/Tokyo", after) == datetime(2030, 2, 4, 0, 0, tzinfo=UTC)
    assert next_cron_time(phrase, "UTC", after) == datetime(2030, 2, 4, 9, 0, tzinfo=UTC)
    # 9am New York on the first monday of April is 13:00 UTC (daylight saving time).
    assert next_cron_time(phrase, ZONE, datetime(2030, 3, 5, tzinfo=UTC)) == datetime(
        2030, 4, 1, 13, 0, tzinfo=UTC
    )


def test_a_step_timing_keeps_the_phrase_and_stores_the_cron() -> None:
    timing = {"type": "cron", "cron_expression": "every 2nd tuesday at 9am", "timezone": ZONE}
    assert normalize_timing(timing) == {
        "type": "cron",
        "cron_expression": "0 9 * * TUE#2",
        "timezone": ZONE,
        "human_expression": "every 2nd tuesday at 9am",
    }
    inferred = normalize_timing({"human_expression": "last friday of the month at 5pm"})
    assert inferred["type"] == "cron" and inferred["cron_expression"] == "0 17 * * 5L"
    # Written as cron, the ordinal forms are plain cron and stay as written.
    assert normalize_timing({"type": "cron", "cron_expression": "0 9 * * mon#1"}) == {
        "type": "cron",
        "cron_expression": "0 9 * * MON#1",
        "timezone": "UTC",
    }


# phrase, a fragment of the message: the cron form that works, or why there is none.
REFUSED = [
    # Every other week: cron has no week counter. The message shows the monthly cron forms.
    ("every other tuesday at 9am", "'0 9 * * TUE#2,TUE#4'"),
    ("every other tuesday at 9am", "'0 9 * * TUE#2'"),
    ("every other tuesday at 9am", "'delay_amount': 2, 'delay_unit': 'weeks'"),
    ("every 2 weeks on friday", "'0 0 * * FRI#2,FRI#4'"),
    ("every 2 tuesdays", "'0 0 * * TUE#2'"),
    ("fortnightly on monday at 8am", "'0 8 * * MON#2,MON#4'"),
    ("biweekly", "no week counter"),
    ("every 2nd week", "no week counter"),
    ("every 3 weeks on monday", "'0 0 * * MON#2'"),
    # Every N days / months: cron restarts its count each month / year.
    ("every other day at 8am", "'0 8 */2 * *'"),
    ("every 2nd day", "'0 0 */2 * *'"),
    ("every 3 days", "starts again on the 1st"),
    ("every other month", "'0 0 1 */2 *'"),
    ("every 3 months at 9am", "'0 9 1 */3 *'"),
    ("every 40 days", "'delay_amount': 40, 'delay_unit': 'days'"),
    ("every 13 months", "a year has 12"),
    # Ordinals that need a month, or that cron cannot name.
    ("first monday at 9am", "'first monday of the month' (cron '0 9 * * MON#1')"),
    ("every 15th", "'every 15th of the month' (cron '0 0 15 * *')"),
    ("every 6th tuesday", "'TUE#5'"),
    ("first weekday of the month", "'0 0 LW * *'"),
    ("first monday of the year", "'0 0 * * MON#1'"),
    ("last friday of the year at 5pm", "'0 17 * * 5L'"),
    ("first monday of smarch", "unknown month 'smarch'"),
    ("every 32nd of the month", "days run 1-31"),
]


@pytest.mark.parametrize(("phrase", "fragment"), REFUSED)
def test_unsupported_ordinal_phrase_points_at_the_cron_that_works(
    phrase: str, fragment: str
) -> None:
    with pytest.raises(ValidationError) as info:
        parse_human(phrase)
    (message,) = info.value.errors["human_expression"]
    assert repr(phrase) in message
    assert fragment in message


def test_the_suggested_cron_forms_are_valid() -> None:
    # Each cron a refusal suggests is accepted and fires where it says.
    assert next_cron_time("0 9 * * TUE#2,TUE#4", ZONE, AFTER) == ny(1, 22, 9)
    assert next_cron_time("0 8 */2 * *", ZONE, AFTER) == ny(1, 11, 8)
    assert next_cron_time("0 0 1 */2 *", ZONE, AFTER) == ny(3, 1)
    assert next_cron_time("0 0 LW * *", ZONE, AFTER) == ny(1, 31)


def test_refusals_under_cron_expression_name_that_field() -> None:
    with pytest.raises(ValidationError) as info:
        normalize_timing({"type": "cron", "cron_expression": "every other monday at 9am"})
    (message,) = info.value.errors["timing.cron_expression"]
    assert "'0 9 * * MON#2,MON#4'" in message
