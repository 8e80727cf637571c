"""The human phrase grammar: a table of phrases and what they mean, and what is refused."""

from __future__ import annotations

import dataclasses

import pytest

from dripdrop.errors import ValidationError
from dripdrop.timing import HumanTiming, parse_human

CRON_TABLE = [
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("every minute", "* * * * *"),
    ("every hour", "0 * * * *"),
    ("hourly", "0 * * * *"),
    ("every 1 minute", "* * * * *"),
    ("every 15 minutes", "*/15 * * * *"),
    ("every 7 minutes", "*/7 * * * *"),
    ("every 2 hours", "0 */2 * * *"),
    ("every 1 hour", "0 * * * *"),
    ("every day", "0 0 * * *"),
    ("every day at 9am", "0 9 * * *"),
    ("every day at 9:30am", "30 9 * * *"),
    ("every day at 3:30pm", "30 15 * * *"),
    ("every day at 15:00", "0 15 * * *"),
    ("every day at 07:05", "5 7 * * *"),
    ("every day at noon", "0 12 * * *"),
    ("every day at midnight", "0 0 * * *"),
    ("every day at 12am", "0 0 * * *"),
    ("every day at 12pm", "0 12 * * *"),
    ("every day at 9 a.m.", "0 9 * * *"),
    ("every day at 9am and 5pm", "0 9,17 * * *"),
    ("daily at 6pm", "0 18 * * *"),
    ("every monday at 9am", "0 9 * * MON"),
    ("every Monday at 9:30AM", "30 9 * * MON"),
    ("every mon at 9am", "0 9 * * MON"),
    ("every mondays at 9am", "0 9 * * MON"),
    ("every sunday at 8pm", "0 20 * * SUN"),
    ("every tues at 10am", "0 10 * * TUE"),
    ("every monday and thursday at 9am", "0 9 * * MON,THU"),
    ("every friday, monday and wednesday at 9am", "0 9 * * MON,WED,FRI"),
    ("every weekday at 8am", "0 8 * * MON-FRI"),
    ("every weekend at 10am", "0 10 * * SAT,SUN"),
    ("every month", "0 0 1 * *"),
    ("every month on the 1st at 9am", "0 9 1 * *"),
    ("every month on the 15th at 9am", "0 9 15 * *"),
    ("monthly on the 2nd", "0 0 2 * *"),
    ("every month on the last day at 6pm", "0 18 L * *"),
    ("  EVERY   Day   AT   9AM  ", "0 9 * * *"),
]


@pytest.mark.parametrize(("phrase", "cron"), CRON_TABLE)
def test_recurring_phrases_translate_to_cron(phrase: str, cron: str) -> None:
    assert parse_human(phrase) == HumanTiming("cron", cron=cron)


DELAY_TABLE = [
    ("in 3 days", 3, "days"),
    ("in 1 day", 1, "days"),
    ("in an hour", 1, "hours"),
    ("in a week", 1, "weeks"),
    ("in one minute", 1, "minutes"),
    ("in 90 minutes", 90, "minutes"),
    ("In 2 Weeks", 2, "weeks"),
]


@pytest.mark.parametrize(("phrase", "amount", "unit"), DELAY_TABLE)
def test_in_phrases_are_delays(phrase: str, amount: int, unit: str) -> None:
    assert parse_human(phrase) == HumanTiming("delay", amount=amount, unit=unit)


def test_human_timing_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        parse_human("in 3 days").amount = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("phrase", "fragment"),
    [
        ("every day at 13pm", "13pm"),
        ("every day at 0am", "0am"),
        ("every day at 25:00", "25:00"),
        ("every day at 9:75", "9:75"),
        ("every day at 9:75am", "9:75am"),
        ("every day at 9", "use 9am"),
        ("every day at 9am and 5:30pm", "same minute"),
        ("every 0 minutes", "between 1 and 59"),
        ("every 60 minutes", "between 1 and 59"),
        ("every 24 hours", "between 1 and 23"),
        ("every month on the 32nd", "days run 1-31"),
        ("in 0 days", "at least 1"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(phrase: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_human(phrase)
    (message,) = info.value.errors["human_expression"]
    assert fragment in message
    assert repr(phrase) in message


@pytest.mark.parametrize(
    "phrase",
    ["whenever", "every funday at 9am", "in 3 fortnights", "every day at", "@sometimes", "", "9am"],
)
def test_unknown_text_names_the_expression_and_lists_examples(phrase: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_human(phrase)
    (message,) = info.value.errors["human_expression"]
    assert repr(phrase) in message
    assert "every day at 9am" in message and "in 3 days" in message


def test_non_string_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse_human(3)  # type: ignore[arg-type]
