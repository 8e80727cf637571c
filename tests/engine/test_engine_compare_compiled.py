"""``compare`` reads a condition's operator and expected value once (a cached comparator); it
must answer exactly what evaluating from scratch answers, for any pair of values."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dripdrop.engine.conditions import _compare, compare

OPERATORS = ("eq", "neq", "gt", "lt", "gte", "lte", "in", "not_in", "contains", "exists")
WORDS = st.sampled_from(
    ["", " ", "true", "False", "1", "1.0", " 2 ", "nan", "inf", "a,b", "[1, 2]"]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    WORDS,
    st.text(max_size=5),
)
VALUES: Any = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))


@settings(max_examples=3000, deadline=None)
@given(actual=VALUES, operator=st.sampled_from(OPERATORS), expected=VALUES)
def test_the_cached_comparator_answers_as_evaluating_from_scratch(
    actual: Any, operator: str, expected: Any
) -> None:
    assert compare(actual, operator, expected) == _compare(actual, operator, expected)
    # and again, now from the cache
    assert compare(actual, operator, expected) == _compare(actual, operator, expected)


def test_equal_keys_of_different_types_are_not_confused() -> None:
    assert compare(1, "eq", True) is False and compare(True, "eq", True) is True
    assert compare(1, "eq", 1) is True and compare("true", "eq", True) is True
    assert compare(1.0, "eq", 1.0) is True and compare(True, "eq", 1.0) is False
    # 0.0 and -0.0 are equal keys, but "contains" compares their text
    assert compare(0.0, "contains", -0.0) is False and compare(0.0, "contains", 0.0) is True
