"""normalize_timing: every shape, every validation rule, all problems reported at once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dripdrop.errors import ValidationError
from dripdrop.timing import normalize_timing


def errors_of(timing: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        normalize_timing(timing)
    return info.value.errors


# --- valid shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize("timing", [None, {}, {"type": "immediate"}])
def test_immediate(timing: Any) -> None:
    assert normalize_timing(timing) == {"type": "immediate"}


def test_delay_defaults_relative_to_enrollment_start() -> None:
    got = normalize_timing({"type": "delay", "delay_amount": 3, "delay_unit": "days"})
    assert got == {
        "type": "delay",
        "delay_amount": 3,
        "delay_unit": "days",
        "relative_to": "enrollment_start",
    }


def test_delay_relative_to_previous_step_and_singular_unit() -> None:
    got = normalize_timing(
        {"type": "delay", "delay_amount": 1, "delay_unit": "Hour", "relative_to": "previous_step"}
    )
    assert got["delay_unit"] == "hours"
    assert got["relative_to"] == "previous_step"


def test_cron_defaults_timezone_to_utc_and_tidies_expression() -> None:
    got = normalize_timing({"type": "cron", "cron_expression": " 0  9 * * mon "})
    assert got == {"type": "cron", "cron_expression": "0 9 * * MON", "timezone": "UTC"}


def test_cron_human_phrase_is_translated_and_original_kept() -> None:
    got = normalize_timing(
        {"type": "cron", "cron_expression": "every monday at 9am", "timezone": "America/New_York"}
    )
    assert got == {
        "type": "cron",
        "cron_expression": "0 9 * * MON",
        "human_expression": "every monday at 9am",
        "timezone": "America/New_York",
    }


def test_cron_macro_becomes_five_fields() -> None:
    got = normalize_timing({"type": "cron", "cron_expression": "@daily"})
    assert got["cron_expression"] == "0 0 * * *"
    assert got["human_expression"] == "@daily"


def test_human_expression_infers_delay() -> None:
    got = normalize_timing({"human_expression": "in 3 days"})
    assert got["type"] == "delay"
    assert (got["delay_amount"], got["delay_unit"]) == (3, "days")
    assert got["human_expression"] == "in 3 days"


def test_human_expression_infers_cron() -> None:
    got = normalize_timing(
        {"human_expression": "every weekday at 8am", "timezone": "Europe/Berlin"}
    )
    assert got["type"] == "cron"
    assert got["cron_expression"] == "0 8 * * MON-FRI"
    assert got["timezone"] == "Europe/Berlin"


def test_type_inferred_from_cron_expression_key() -> None:
    assert normalize_timing({"cron_expression": "@hourly"})["type"] == "cron"


def test_event_full_and_minimal() -> None:
    full = {
        "type": "event",
        "trigger_event": "order_completed",
        "trigger_data": {"plan": "pro"},
        "timeout_amount": 3,
        "timeout_unit": "days",
    }
    assert normalize_timing(full) == full
    assert normalize_timing({"type": "event", "trigger_event": "x"}) == {
        "type": "event",
        "trigger_event": "x",
    }


@pytest.mark.parametrize(
    "timing",
    [
        None,
        {"type": "delay", "delay_amount": 2, "delay_unit": "hours", "relative_to": "previous_step"},
        {"type": "cron", "cron_expression": "every monday at 9am", "timezone": "America/New_York"},
        {"type": "cron", "cron_expression": "*/5 * * * *"},
        {"human_expression": "in 3 days"},
        {"human_expression": "every day at noon"},
        {"type": "event", "trigger_event": "e", "timeout_amount": 1, "timeout_unit": "week"},
    ],
)
def test_normalising_is_idempotent_and_json_able(timing: Any) -> None:
    once = normalize_timing(timing)
    assert normalize_timing(once) == once
    assert json.loads(json.dumps(once)) == once
    assert "type" in once


# --- validation rules -----------------------------------------------------------------------


def test_not_a_dict() -> None:
    assert "timing" in errors_of(["delay"])


def test_unknown_type_lists_valid_ones() -> None:
    (msg,) = errors_of({"type": "sometimes"})["timing.type"]
    assert "'sometimes'" in msg
    for kind in ("immediate", "delay", "cron", "event"):
        assert kind in msg


def test_missing_type_without_hints() -> None:
    assert "timing.type" in errors_of({"timezone": "UTC"})


def test_unknown_extra_key() -> None:
    assert errors_of({"type": "immediate", "foo": 1}) == {
        "timing.foo": ["unknown field; expected one of type ('immediate' timing)"]
    }


def test_keys_of_another_shape_are_unknown() -> None:
    errs = errors_of({"type": "delay", "delay_amount": 1, "delay_unit": "days", "timezone": "UTC"})
    assert list(errs) == ["timing.timezone"]
    assert errs["timing.timezone"][0].startswith("unknown field; expected one of delay_amount")


@pytest.mark.parametrize("amount", [None, 0, -2, 1.5, 3.0, "3", True])
def test_delay_amount_must_be_a_positive_integer(amount: Any) -> None:
    timing = {"type": "delay", "delay_unit": "days"}
    if amount is not None:
        timing["delay_amount"] = amount
    assert errors_of(timing) == {"timing.delay_amount": ["must be a positive integer"]}


def test_delay_amount_too_large() -> None:
    errs = errors_of({"type": "delay", "delay_amount": 10_000, "delay_unit": "weeks"})
    assert "too large" in errs["timing.delay_amount"][0]


@pytest.mark.parametrize("unit", [None, "years", "", 3])
def test_delay_unit(unit: Any) -> None:
    errs = errors_of({"type": "delay", "delay_amount": 1, "delay_unit": unit})
    assert errs == {"timing.delay_unit": ["must be one of minutes, hours, days, weeks"]}


def test_relative_to() -> None:
    errs = errors_of(
        {"type": "delay", "delay_amount": 1, "delay_unit": "days", "relative_to": "yesterday"}
    )
    assert list(errs) == ["timing.relative_to"]


def test_all_problems_are_collected() -> None:
    errs = errors_of({"type": "delay", "delay_amount": 0, "delay_unit": "x", "foo": 1, "bar": 2})
    assert set(errs) == {"timing.delay_amount", "timing.delay_unit", "timing.foo", "timing.bar"}


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "localtime", "america/new_york", 5])
def test_timezone_must_be_iana(zone: Any) -> None:
    errs = errors_of({"type": "cron", "cron_expression": "@daily", "timezone": zone})
    assert list(errs) == ["timing.timezone"]


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("0 25 * * *", "hour"),
        ("60 * * * *", "minute"),
        ("0 0 32 * *", "day-of-month"),
        ("0 0 * 13 *", "month"),
        ("0 0 * * 9", "day-of-week"),
        ("0 0 30 2 *", "day-of-month"),
        ("0 9 * *", "5 fields"),
        ("0 0 9 * * *", "5 fields"),
    ],
)
def test_cron_expression_out_of_range_names_expression(expr: str, fragment: str) -> None:
    (msg,) = errors_of({"type": "cron", "cron_expression": expr})["timing.cron_expression"]
    assert repr(expr) in msg
    assert fragment in msg


def test_cron_expression_required() -> None:
    assert "timing.cron_expression" in errors_of({"type": "cron", "timezone": "UTC"})


def test_cron_and_timezone_errors_together() -> None:
    errs = errors_of({"type": "cron", "cron_expression": "0 99 * * *", "timezone": "Nowhere"})
    assert set(errs) == {"timing.cron_expression", "timing.timezone"}


def test_unrecognised_text_in_cron_expression_reported_there() -> None:
    (msg,) = errors_of({"type": "cron", "cron_expression": "when pigs fly"})[
        "timing.cron_expression"
    ]
    assert "'when pigs fly'" in msg and "every day at 9am" in msg


def test_unrecognised_human_expression_reported_there() -> None:
    errs = errors_of({"human_expression": "when pigs fly"})
    assert list(errs) == ["timing.human_expression"]
    assert "'when pigs fly'" in errs["timing.human_expression"][0]


def test_delay_phrase_in_a_cron_timing() -> None:
    assert "timing.cron_expression" in errors_of({"type": "cron", "cron_expression": "in 3 days"})
    assert "timing.human_expression" in errors_of({"type": "cron", "human_expression": "in 3 days"})


def test_type_and_human_expression_must_agree() -> None:
    assert "timing.human_expression" in errors_of(
        {"type": "delay", "human_expression": "every day at 9am"}
    )
    assert "timing.human_expression" in errors_of(
        {"type": "delay", "human_expression": "in 3 days", "delay_amount": 4, "delay_unit": "days"}
    )
    assert "timing.human_expression" in errors_of(
        {"type": "cron", "human_expression": "every day at 9am", "cron_expression": "0 10 * * *"}
    )
    assert "timing.human_expression" in errors_of({"type": "event", "human_expression": "in 1 day"})


@pytest.mark.parametrize("name", [None, "", "   ", 7])
def test_trigger_event_required(name: Any) -> None:
    timing: dict[str, Any] = {"type": "event"}
    if name is not None:
        timing["trigger_event"] = name
    assert list(errors_of(timing)) == ["timing.trigger_event"]


@pytest.mark.parametrize("data", [["plan"], "pro", {1: "x"}])
def test_trigger_data_must_be_an_object(data: Any) -> None:
    errs = errors_of({"type": "event", "trigger_event": "e", "trigger_data": data})
    assert list(errs) == ["timing.trigger_data"]


def test_timeout_both_or_neither() -> None:
    assert list(errors_of({"type": "event", "trigger_event": "e", "timeout_amount": 3})) == [
        "timing.timeout_unit"
    ]
    assert list(errors_of({"type": "event", "trigger_event": "e", "timeout_unit": "days"})) == [
        "timing.timeout_amount"
    ]


@pytest.mark.parametrize(
    ("amount", "unit", "bad"),
    [(0, "days", "timing.timeout_amount"), (True, "days", "timing.timeout_amount"),
     (2, "fortnights", "timing.timeout_unit")],
)  # fmt: skip
def test_timeout_values(amount: Any, unit: Any, bad: str) -> None:
    timing = {"type": "event", "trigger_event": "e", "timeout_amount": amount, "timeout_unit": unit}
    assert list(errors_of(timing)) == [bad]


def test_bad_phrase_and_bad_relative_to_reported_together() -> None:
    errs = errors_of({"type": "delay", "human_expression": "in 3 eons", "relative_to": "x"})
    assert set(errs) == {"timing.human_expression", "timing.relative_to"}


def test_public_surface_is_pinned() -> None:
    import dripdrop.timing

    assert sorted(dripdrop.timing.__all__) == [
        "HumanTiming", "delay_delta", "due_time", "event_timeout_at",
        "next_cron_time", "normalize_timing", "parse_human",
    ]  # fmt: skip
