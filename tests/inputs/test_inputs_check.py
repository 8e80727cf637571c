"""The central input checks (dripdrop.definitions.inputs) at their limits, without a database."""

from __future__ import annotations

import gc
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from inputs_support import INF, NAN, deep_dict, deep_list

from dripdrop.definitions.inputs import (
    INT64_MAX,
    INT64_MIN,
    MAX_ID_LENGTH,
    MAX_JSON_DEPTH,
    MAX_JSON_SIZE,
    check_identifier,
    check_json,
    describe,
    json_problem,
)
from dripdrop.errors import ValidationError
from dripdrop.timing import parse_human
from dripdrop.timing.cron import to_cron


def problem(value: Any, **kw: Any) -> str | None:
    found = json_problem(value, **kw)
    return None if found is None else (f"{found[0]}: " if found[0] else "") + found[1]


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"a": [1, 2.5, True, None, "x", {"b": []}]},
        {"t": (1, 2)},
        {"n": INT64_MAX, "m": INT64_MIN, "f": 1e308},
        deep_list(MAX_JSON_DEPTH - 1),  # 32 nested lists
        {"s": "é✓😀"},
    ],
)
def test_json_values_that_pass(value: Any) -> None:
    assert json_problem(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": NAN}, "a: numbers must be finite"),
        ({"a": [INF]}, "a.0: numbers must be finite"),
        ({"a": INT64_MAX + 1}, "a: integers must be within the 64-bit range"),
        ({"a": INT64_MIN - 1}, "a: integers must be within the 64-bit range"),
        ({"a": 10**5000}, "a: integers must be within the 64-bit range"),
        ({"a": "x\x00"}, "a: must not contain NUL"),
        ({"a": "x\udc80"}, "a: must not contain lone surrogates"),
        ({"a\x00": 1}, "a key must not contain NUL"),
        ({1: 1}, "keys must be strings, not 1"),
        ({"a": {(1, 2): 1}}, "a: keys must be strings, not a tuple"),
        ({"a": object()}, "a: a object is not JSON"),
        ({"a": {1, 2}}, "a: a set is not JSON"),
        ({"a": b"x"}, "a: a bytes is not JSON"),
        ({"a": Decimal("1.5")}, "a: a Decimal is not JSON"),
        ({"a": datetime(2024, 1, 1, tzinfo=UTC)}, "a: a datetime is not JSON"),
        ({"a": uuid.uuid4()}, "a: "),
        (deep_list(MAX_JSON_DEPTH), "is nested too deeply (at most 32 levels"),
        (deep_dict(10_000), "is nested too deeply"),
        ({"a": "x" * MAX_JSON_SIZE}, "is too large"),
        ([0] * (MAX_JSON_SIZE + 1), "is too large"),
    ],
)
def test_json_values_that_fail(value: Any, expected: str) -> None:
    found = problem(value)
    assert found is not None
    assert found.startswith(expected)


def test_a_cycle_is_too_deep_not_an_endless_walk() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    assert (
        problem(cycle)
        == f"is nested too deeply (at most {MAX_JSON_DEPTH} levels of lists and dicts)"
    )


def test_huge_values_are_refused_quickly() -> None:
    # The collector off while timed: late in a full run its passes over the whole session's
    # heap (triggered by these allocations) take seconds, which is not the check's time.
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        assert problem(deep_list(200_000)) is not None
        assert problem({"k": ["x" * 1000] * 100_000}) is not None
        assert problem({f"k{i}": i for i in range(200_000)}) is not None
        assert time.perf_counter() - started < 2
    finally:
        gc.enable()


def test_check_json_reports_the_field_and_where() -> None:
    with pytest.raises(ValidationError) as info:
        check_json({"address": {"zip": NAN}}, "data")
    assert info.value.errors == {
        "data": ["at data.address.zip: numbers must be finite (NaN and Infinity are not JSON)"]
    }
    with pytest.raises(ValidationError) as info:
        check_json([1], "data")
    assert info.value.errors == {"data": ["must be a dict, not a list"]}
    assert check_json(None, "data") is None


def test_identifiers_are_capped_at_255() -> None:
    assert check_identifier("x" * MAX_ID_LENGTH, "subscriber_id") == "x" * MAX_ID_LENGTH
    for bad, message in [
        ("x" * (MAX_ID_LENGTH + 1), "is too long (256 characters; at most 255)"),
        ("", "must not be empty"),
        (7, "must be a string, not 7"),
        ("a\x00", "must not contain NUL (\\x00) characters"),
    ]:
        with pytest.raises(ValidationError) as info:
            check_identifier(bad, "subscriber_id")
        assert info.value.errors == {"subscriber_id": [message]}


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param(10**5000, "a very large integer", id="huge-int"),
        pytest.param(deep_list(10_000), "a list", id="deep-list"),
        ("x" * 1_000_000, repr("x" * 40) + "…"),
        (2**70, str(2**70)),
        (NAN, "nan"),
    ],
)
def test_describe_never_fails_and_stays_short(value: Any, shown: str) -> None:
    assert describe(value) == shown


def test_timing_phrases_and_cron_are_capped() -> None:
    with pytest.raises(ValidationError) as info:
        parse_human("in 3 days" + " " * 1_000)
    assert "at most 200" in info.value.errors["human_expression"][0]
    with pytest.raises(ValidationError) as info:
        to_cron("0 " * 200 + "* * * *")
    assert "at most 255" in info.value.errors["cron_expression"][0]
