"""Malformed values at every public entry point: each call succeeds or raises a DripDropError —
never a TypeError, OverflowError, RecursionError or a psycopg error (issue 11).

Two passes over the same table of calls (inputs_support.entry_points): every argument and every
value nested in one, spoiled with each value of BAD_VALUES; then hypothesis generates more
(mixed, nested, random sizes). Both reuse one schema and one world per test."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inputs_support import (
    BAD_VALUES,
    INF,
    NAN,
    Call,
    Path,
    deep_dict,
    deep_list,
    entry_points,
    make_world,
    outcome,
    show,
    slots,
    spoil,
)

from dripdrop import AsyncDripDrop
from dripdrop.errors import DripDropError

GROUPS = {
    "sequences": ("sequence", "version"),
    "steps": ("step",),
    "conditions": ("condition",),
    "adapters": ("adapter",),
    "hooks": ("http_hook",),
    "enrollments": ("enroll", "execution", "replay", "track"),
    "api_keys": ("api_key",),
    "suppressions": ("suppress",),
    "delivery_events": ("delivery_events",),
    "flow": ("transition", "split_counts"),
}


def _group(label: str, group: str) -> bool:
    return any(word in label for word in GROUPS[group])


_WORLDS: dict[str, dict[str, Call]] = {}


def _calls(dd: Any, group: str | None = None) -> dict[str, Call]:
    """The calls of a group, on a world built once per test (per schema) and reused by the
    hypothesis examples."""
    if dd.schema not in _WORLDS:
        _WORLDS.clear()
        _WORLDS[dd.schema] = entry_points(make_world(dd))
    calls = _WORLDS[dd.schema]
    return {k: v for k, v in calls.items() if group is None or _group(k, group)}


def test_groups_cover_every_entry_point(dd) -> None:
    calls = _calls(dd)
    assert [label for label in calls if not any(_group(label, g) for g in GROUPS)] == []
    methods = {method for method, _, _ in calls.values()}
    from dripdrop.operations import OPERATIONS

    # enroll_many and the inbox are outside this table (see test_inputs_regressions).
    uncovered = set(OPERATIONS) - methods - {"enroll_many", "list_notifications", "mark_read"}
    assert not uncovered, f"add {sorted(uncovered)} to inputs_support.entry_points"


@pytest.mark.parametrize("group", GROUPS)
def test_every_argument_refuses_each_malformed_value(dd, group: str) -> None:
    escaped: list[str] = []
    calls = _calls(dd, group)
    assert calls
    for label, call in calls.items():
        for path in [*slots(call), ("connection",)]:
            for name, value in BAD_VALUES.items():
                if path == ("connection",) and value is None:
                    continue  # connection=None is the default
                if (exc := outcome(dd, spoil(call, path, value))) is not None:
                    escaped.append(f"{label} {path} = {name}: {show(exc)}")
    assert not escaped, "\n".join(escaped)


# --- hypothesis -----------------------------------------------------------------------------

_ORDINARY = st.text(max_size=6)
_SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
BAD_TEXT = st.one_of(
    st.tuples(_ORDINARY, st.just("\x00"), _ORDINARY).map("".join),
    st.tuples(_ORDINARY, _SURROGATE, _ORDINARY).map("".join),
    st.sampled_from([256, 1_001, 100_001, 1_000_001]).map(lambda n: "x" * n),
)
BAD_NUMBERS = st.one_of(
    st.integers(min_value=2**63),
    st.integers(max_value=-(2**63) - 1),
    st.sampled_from([2**70, NAN, INF, -INF]),
    st.builds(lambda: 10**5000),  # built on draw: hypothesis's repr of the strategy would fail
)
WRONG_TYPES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.binary(max_size=4),
    st.frozensets(st.integers(), max_size=2),
    st.datetimes(),
    st.uuids(),
    st.builds(object),
)
SCALARS = st.one_of(WRONG_TYPES, BAD_NUMBERS, BAD_TEXT, st.text(max_size=10))
KEYS = st.one_of(st.text(max_size=5), BAD_TEXT, st.integers(0, 3), st.none())
NESTED = st.recursive(
    SCALARS,
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(KEYS, kids, max_size=3)),
    max_leaves=6,
)
DEEP = st.tuples(st.integers(33, 3_000), st.booleans()).map(
    lambda t: deep_list(t[0]) if t[1] else deep_dict(t[0])
)
MALFORMED = st.one_of(SCALARS, NESTED, DEEP)

PROPERTY = settings(
    max_examples=250,  # per group: 20 to 40 per entry point
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays stable
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # dd and the world are shared by the examples
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def _draw_call(data: Any, calls: dict[str, Call]) -> tuple[str, Path, Call]:
    label = data.draw(st.sampled_from(sorted(calls)), label="entry point")
    call = calls[label]
    path = data.draw(st.sampled_from([*slots(call), ("connection",)]), label="argument")
    value = data.draw(MALFORMED)
    if path == ("connection",) and value is None:
        value = False
    return label, path, spoil(call, path, value)


@pytest.mark.parametrize("group", GROUPS)
@PROPERTY
@given(data=st.data())
def test_malformed_values_raise_dripdrop_errors(dd, group: str, data: Any) -> None:
    label, path, call = _draw_call(data, _calls(dd, group))
    exc = outcome(dd, call)
    assert exc is None, f"{label} {path}: {show(exc)}"


ASYNC_LABELS = (
    "create_sequence",
    "update_sequence",
    "create_sequence_version",
    "create_step[event]",
    "update_step",
    "create_condition[time_window]",
    "enroll",
    "get_enrollment",
    "list_active_enrollments",
    "track_event",
    "track",
)


@pytest.fixture
def async_face(dd, database_url: str) -> Any:
    """An AsyncDripDrop on dd's schema and one event loop for every example."""
    loop = asyncio.new_event_loop()
    add = AsyncDripDrop(database_url, schema=dd.schema)
    try:
        yield add, loop
    finally:
        loop.run_until_complete(add.close())
        loop.close()


@settings(PROPERTY, max_examples=80)
@given(data=st.data())
def test_async_face_raises_dripdrop_errors(dd, async_face: Any, data: Any) -> None:
    add, loop = async_face
    calls = {k: v for k, v in _calls(dd).items() if k in ASYNC_LABELS}
    label, path, (method, args, kwargs) = _draw_call(data, calls)

    async def call() -> None:
        await getattr(add, method)(*args, **kwargs)

    try:
        loop.run_until_complete(call())
    except DripDropError:
        pass
    except Exception as exc:
        raise AssertionError(f"{label} {path}: {show(exc)}") from exc
