"""The cases reproduced in issue 11, each of which escaped as a raw TypeError, OverflowError,
RecursionError, psycopg error or template error: now a ValidationError naming the field."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from inputs_support import INF, NAN, deep_dict, deep_list, make_world

from dripdrop import AsyncDripDrop, DripDrop
from dripdrop.engine.conditions import compare
from dripdrop.engine.notify import channel_name
from dripdrop.errors import ValidationError
from dripdrop.testing import TestEnv


def errors_of(call: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        call()
    # The message stays short whatever the input (a megabyte value is not echoed back).
    assert len(str(info.value)) < 2_000
    return info.value.errors


@pytest.fixture
def world(dd) -> Any:
    return make_world(dd)


# --- wrong types that reached SQL -------------------------------------------------------------


def test_create_step_active_must_be_a_boolean(dd, world) -> None:
    errors = errors_of(
        lambda: dd.create_step(world.version.id, name="S", channel="email", active="yes")
    )
    assert errors == {"active": ["must be True or False, not 'yes'"]}


def test_enroll_sequence_key_must_be_a_string(dd, world) -> None:
    errors = errors_of(lambda: dd.enroll(True, {"type": "User", "id": 5}))
    assert list(errors) == ["sequence_key"]
    assert "must be a string" in errors["sequence_key"][0]


@pytest.mark.parametrize(
    ("method", "target", "changes", "field"),
    [
        ("update_sequence", "seq", {"active": "yes"}, "active"),
        ("update_sequence", "seq", {"description": 5}, "description"),
        ("update_sequence_version", "version", {"name": 5}, "name"),
        ("update_step", "step", {"position": 2**40}, "position"),
        ("update_step", "step", {"active": None}, "active"),
        ("update_step", "step", {"template_module": ["m"]}, "template_module"),
        ("update_condition", "condition", {"hook_function": ["h"]}, "hook_function"),
        ("update_condition", "condition", {"expected_value": 10**5000}, "expected_value"),
        ("update_condition", "condition", {"config": {"a": NAN}}, "config"),
        ("update_channel_adapter", "adapter", {"active": "no"}, "active"),
        ("update_channel_adapter", "adapter", {"name": "a\x00"}, "name"),
        ("update_http_hook", "hook", {"active": "no"}, "active"),
        ("update_http_hook", "hook", {"description": 5}, "description"),
    ],
)
def test_updates_check_the_type_of_each_change(
    dd, world, method: str, target: str, changes: dict[str, Any], field: str
) -> None:
    errors = errors_of(lambda: getattr(dd, method)(getattr(world, target).id, **changes))
    assert list(errors) == [field]


def test_update_to_none_is_an_empty_config_not_a_null_violation(dd, world) -> None:
    assert dd.update_condition(world.condition.id, config=None).config == {}
    assert dd.update_http_hook(world.hook.id, headers=None).headers == {}


def test_empty_tenant_key_is_refused(dd) -> None:
    # '' would share the global tenant's unique indexes (COALESCE(tenant_key, '')).
    dd.create_sequence(name="A", key="a")
    errors = errors_of(lambda: dd.create_sequence(name="A", key="a", tenant_key=""))
    assert list(errors) == ["tenant_key"]


def test_list_limit_must_be_an_integer(dd, world) -> None:
    assert list(errors_of(lambda: dd.list_active_enrollments("world", limit=INF))) == ["limit"]


def test_huge_int_ids_are_refused(dd, world) -> None:
    # str() of 10**5000 raises ValueError, which the old message formatting hit.
    assert list(errors_of(lambda: dd.get_step(10**5000))) == ["step_id"]


# --- NUL bytes and lone surrogates ------------------------------------------------------------


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda dd, w, s: dd.create_sequence(name=s, key="k"), "name"),
        (lambda dd, w, s: dd.get_sequence(s), "key"),
        (lambda dd, w, s: dd.create_step(w.version.id, name="S", channel=s), "channel"),
        (lambda dd, w, s: dd.enroll("world", {"type": s, "id": 1}), "subscriber.type"),
        (lambda dd, w, s: dd.enroll("world", {"type": "U", "id": s}), "subscriber.id"),
        (lambda dd, w, s: dd.track({"type": "User", "id": 1}, s), "event_key"),
        (lambda dd, w, s: dd.unenroll("world", "User", s), "subscriber_id"),
        (lambda dd, w, s: dd.enroll("world", {"type": "U", "id": 1}, data={"a": s}), "data"),
        (lambda dd, w, s: dd.enroll("world", {"type": "U", "id": 1}, data={s: 1}), "data"),
        (lambda dd, w, s: dd.create_sequence(name="S", key="k", tenant_key=s), "tenant_key"),
        (lambda dd, w, s: dd.update_step(w.step.id, config={"subject": s}), "config"),
        (lambda dd, w, s: dd.enroll_many(s, []), "sequence_key"),
    ],
)
def test_nul_and_lone_surrogates_are_refused(dd, world, call: Any, field: str, bad: str) -> None:
    errors = errors_of(lambda: call(dd, world, bad))
    assert list(errors) == [field]
    assert "NUL" in errors[field][0] or "surrogate" in errors[field][0]


# --- NaN, Infinity and deep nesting in JSON values --------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": {"score": NAN}}, "at data.score: numbers must be finite"),
        ({"data": {"a": [1, INF]}}, "at data.a.1: numbers must be finite"),
        ({"metadata": {"m": -INF}}, "at metadata.m: numbers must be finite"),
        ({"data": deep_dict(10_000)}, "is nested too deeply (at most 32 levels"),
        ({"metadata": {"a": deep_list(10_000)}}, "is nested too deeply (at most 32 levels"),
        ({"data": {"n": 2**70}}, "at data.n: integers must be within the 64-bit range"),
    ],
)
def test_enroll_data_must_be_finite_and_shallow(
    dd, world, kwargs: dict[str, Any], message: str
) -> None:
    errors = errors_of(lambda: dd.enroll("world", {"type": "User", "id": 3}, **kwargs))
    [(field, [text])] = errors.items()
    assert field == next(iter(kwargs))
    assert text.startswith(message)


@pytest.mark.parametrize(
    ("event_data", "field"),
    [({"x": NAN}, "event_data"), (deep_dict(10_000), "event_data")],
)
def test_event_data_must_be_finite_and_shallow(dd, world, event_data: Any, field: str) -> None:
    assert list(errors_of(lambda: dd.track_event(world.enrollment.id, "e", event_data))) == [field]
    assert list(errors_of(lambda: dd.track({"type": "User", "id": 1}, "e", event_data))) == [field]


def test_step_config_nesting_is_refused_before_the_template_engine(dd, world) -> None:
    errors = errors_of(
        lambda: dd.create_step(
            world.version.id, name="S", channel="email", config={"body": deep_list(5_000)}
        )
    )
    assert list(errors) == ["config"]


@pytest.mark.parametrize(
    ("engine", "body", "message"),
    [
        ("jinja2", "{{ " + "(" * 3_000 + "a" + ")" * 3_000 + " }}", "nested too deeply"),
        ("jinja2", "{% if a %}" * 3_000 + "{% endif %}" * 3_000, "nested too deeply"),
        ("mustache", "{{#a}}" * 3_000 + "{{/a}}" * 3_000, "nested too deeply"),
        ("jinja2", "{{ " + "9" * 5_000 + " }}", "cannot be compiled"),
        ("liquid", '{% include "other" %}', "cannot be compiled"),
    ],
)
def test_template_engine_errors_become_validation_errors(
    dd, world, engine: str, body: str, message: str
) -> None:
    config = {"subject": "S", "body": body, "template_engine": engine}
    errors = errors_of(
        lambda: dd.create_step(world.version.id, name="S", channel="email", config=config)
    )
    assert list(errors) == ["config.body"]
    assert message in errors["config.body"][0]


def test_http_hook_templates_are_compiled_safely(dd, world) -> None:
    errors = errors_of(
        lambda: dd.create_http_hook(
            world.seq.id,
            name="H",
            key="h",
            url="https://example.com",
            body_template='{"a": 1}{% include "x" %}',
        )
    )
    assert list(errors) == ["body_template"]


# --- timing -----------------------------------------------------------------------------------


def test_delay_amount_past_the_datetime_range_is_refused(dd, world) -> None:
    errors = errors_of(
        lambda: dd.create_step(
            world.version.id,
            name="S",
            channel="email",
            timing={"type": "delay", "delay_amount": 2**70, "delay_unit": "days"},
        )
    )
    assert errors == {"timing.delay_amount": ["is too large (at most 100 years)"]}


def test_delay_phrase_past_the_datetime_range_is_refused_at_create_time(dd, world) -> None:
    # It used to be accepted and then fail with OverflowError when an enrollment was planned.
    errors = errors_of(
        lambda: dd.create_step(
            world.version.id,
            name="S",
            channel="email",
            timing={"human_expression": "in 99999999999999999999 days"},
        )
    )
    assert list(errors) == ["timing.human_expression"]


def test_megabyte_timing_phrase_is_refused(dd, world) -> None:
    phrase = "every monday and " * 60_000 + "at 9am"
    errors = errors_of(
        lambda: dd.create_step(
            world.version.id, name="S", channel="email", timing={"human_expression": phrase}
        )
    )
    assert list(errors) == ["timing.human_expression"]
    assert "at most 200" in errors["timing.human_expression"][0]


def test_megabyte_cron_expression_is_refused(dd, world) -> None:
    errors = errors_of(
        lambda: dd.create_step(
            world.version.id,
            name="S",
            channel="email",
            timing={"type": "cron", "cron_expression": "1," * 500_000 + "1 * * * *"},
        )
    )
    assert list(errors) == ["timing.cron_expression"]


# --- identifiers ------------------------------------------------------------------------------


def test_megabyte_subscriber_id_is_refused_with_the_cap(dd, world) -> None:
    errors = errors_of(lambda: dd.enroll("world", {"type": "User", "id": "x" * 1_000_000}))
    assert list(errors) == ["subscriber.id"]
    assert "at most 255" in errors["subscriber.id"][0]
    assert dd.enroll("world", {"type": "User", "id": "x" * 255}).subscriber_id == "x" * 255


def test_megabyte_key_gives_a_short_message(dd) -> None:
    errors = errors_of(lambda: dd.create_sequence(name="S", key="k" * 1_000_000))
    assert list(errors) == ["key"]


def test_key_with_a_trailing_newline_is_refused(dd) -> None:
    assert list(errors_of(lambda: dd.create_sequence(name="S", key="onboarding\n"))) == ["key"]


def test_enroll_many_checks_the_sequence_key_and_subscribers(dd, world) -> None:
    assert list(errors_of(lambda: dd.enroll_many(True, []))) == ["sequence_key"]
    item = {"subscriber": {"type": "User", "id": "a\x00"}}
    assert list(errors_of(lambda: dd.enroll_many("world", [item]))) == ["items.0.subscriber.id"]


# --- connection= ------------------------------------------------------------------------------


def test_raw_psycopg_connection_is_refused(dd, world, database_url: str) -> None:
    with psycopg.connect(database_url) as raw:
        errors = errors_of(lambda: dd.enroll("world", {"type": "User", "id": 8}, connection=raw))
    assert list(errors) == ["connection"]
    assert "SQLAlchemy Connection or Session" in errors["connection"][0]
    assert "psycopg" in errors["connection"][0]


def test_async_face_refuses_a_sync_or_raw_connection(dd, world, database_url: str) -> None:
    async def go() -> dict[str, list[str]]:
        add = AsyncDripDrop(database_url, schema=dd.schema)
        try:
            with dd.runtime.engine.connect() as sync_conn, pytest.raises(ValidationError) as info:
                await add.get_sequence("world", connection=sync_conn)
            return info.value.errors
        finally:
            await add.close()

    errors = asyncio.run(go())
    assert list(errors) == ["connection"]
    assert "AsyncConnection or AsyncSession" in errors["connection"][0]


def test_async_connection_and_session_still_work(dd, world, database_url: str) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from dripdrop.db.engine import normalize_url

    async def go() -> None:
        add = AsyncDripDrop(database_url, schema=dd.schema)
        host = create_async_engine(normalize_url(database_url, is_async=True))
        try:
            async with host.begin() as conn:
                await add.enroll("world", {"type": "User", "id": 30}, connection=conn)
            async with AsyncSession(host) as session, session.begin():
                await add.enroll("world", {"type": "User", "id": 31}, connection=session)
        finally:
            await host.dispose()
            await add.close()

    asyncio.run(go())
    assert dd.get_enrollment("world", "User", 30) is not None
    assert dd.get_enrollment("world", "User", 31) is not None


def test_sqlalchemy_connection_and_session_still_work(dd, world) -> None:
    from sqlalchemy.orm import Session

    with dd.runtime.engine.begin() as conn:
        dd.enroll("world", {"type": "User", "id": 20}, connection=conn)
    with Session(dd.runtime.engine) as session, session.begin():
        dd.enroll("world", {"type": "User", "id": 21}, connection=session)
    assert dd.get_enrollment("world", "User", 21) is not None


# --- schema names and NOTIFY channels ---------------------------------------------------------


@pytest.mark.parametrize("length", [55, 60, 63])
def test_schema_names_that_break_notify_channels_are_refused(
    database_url: str, length: int
) -> None:
    with pytest.raises(ValidationError) as info:
        DripDrop(database_url, schema="s" * length)
    assert list(info.value.errors) == ["schema"]
    assert "at most 54 characters" in info.value.errors["schema"][0]


def test_schema_name_with_a_trailing_newline_is_refused(database_url: str) -> None:
    with pytest.raises(ValidationError):
        DripDrop(database_url, schema="dripdrop\n")


def test_longest_schema_name_notifies_workers(database_url: str) -> None:
    schema = "s" * 54
    assert len(channel_name(schema).encode()) == 63
    env = TestEnv(database_url, schema=schema)
    try:
        world = make_world(env.dd)  # enroll() wakes workers with pg_notify on this channel
        assert world.enrollment.state == "active"
    finally:
        env.close()


# --- conditions -------------------------------------------------------------------------------


def test_time_window_with_start_equal_to_end_is_refused(dd, world) -> None:
    config = {"timezone": "UTC", "days": ["mon"], "start": "09:00", "end": "09:00"}
    errors = errors_of(
        lambda: dd.create_condition(world.step.id, condition_type="time_window", config=config)
    )
    assert list(errors) == ["config.end"]
    condition = dd.create_condition(
        world.step.id, condition_type="time_window", config={**config, "end": "17:00"}
    )
    assert list(errors_of(lambda: dd.update_condition(condition.id, config=config))) == [
        "config.end"
    ]


@pytest.mark.parametrize(
    ("actual", "op", "expected", "result"),
    [
        ("nan", "eq", "nan", True),  # as floats NaN != NaN
        ("NaN", "eq", "nan", False),
        ("inf", "gt", "5", False),  # as floats inf > 5
        (5, "lt", "Infinity", False),
        ("inf", "eq", "inf", True),
        ("inf", "in", "inf, 1", True),
        ("1e400", "gt", "1", False),  # float("1e400") is inf
        ("10", "gt", "9", True),  # real numbers still compare as numbers
        ("b", "gt", "a", True),
    ],
)
def test_nan_and_inf_text_compare_as_text(
    actual: Any, op: str, expected: Any, result: bool
) -> None:
    assert compare(actual, op, expected) is result


def test_deeply_nested_expected_list_does_not_recurse() -> None:
    assert compare("a", "in", "[" * 5_000) is False


def test_test_http_hook_data_must_be_a_dict(dd, world) -> None:
    assert "test_data" in errors_of(lambda: dd.test_http_hook(world.hook.id, True))


@pytest.mark.parametrize(
    ("option", "value"),
    [("batch_size", 2**70), ("batch_size", "500"), ("concurrency", -1), ("lanes", 2**70)],
)
def test_run_due_options_are_checked(dd, option: str, value: Any) -> None:
    assert option in errors_of(lambda: dd.run_due(**{option: value}))


# --- inputs that still escaped raw after the first pass ---------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"items": 5}, "items"),
        ({"items": "abc"}, "items"),
        ({"items": [{"subscriber": {"type": "U", "id": 1}}], "batch_size": "x"}, "batch_size"),
        ({"items": [{"subscriber": {"type": "U", "id": 1}}], "batch_size": 0}, "batch_size"),
        (
            {"items": [{"subscriber": {"type": "U", "id": 2}, "data": {"a": "x\x00"}}]},
            "items.0.data",
        ),
        ({"items": [{"subscriber": {"type": "U", "id": 3}, "data": {"a": NAN}}]}, "items.0.data"),
        ({"items": [{"subscriber": {"type": "U", "id": 3}, "data": {"a": [INF]}}]}, "items.0.data"),
        (
            {"items": [{"subscriber": {"type": "U", "id": 4}, "data": deep_dict(40)}]},
            "items.0.data",
        ),
        ({"items": [{"subscriber": {"type": "U", "id": 4}, "data": {5: 1}}]}, "items.0.data"),
        (
            {"items": [{"subscriber": {"type": "U", "id": 5}, "metadata": {"a": NAN}}]},
            "items.0.metadata",
        ),
        ({"items": [{"subscriber": {"type": "U", "id": 6}, "dta": {}}]}, "items.0.dta"),
    ],
)
def test_enroll_many_refuses_what_enroll_refuses(dd, world, kwargs, field) -> None:
    errors = errors_of(lambda: dd.enroll_many("world", **kwargs))
    assert list(errors) == [field]
    assert dd.get_enrollment("world", "U", "2") is None


def test_enroll_many_keeps_nulls_and_nesting_that_are_allowed(dd, world) -> None:
    data = {"a": None, "b": [{"c": {"d": None}}] * 40}
    assert dd.enroll_many("world", [{"subscriber": {"type": "U", "id": 1}, "data": data}]) == 1
    assert dd.get_enrollment("world", "U", "1").data == data


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda dd: dd.list_notifications(5), "topic"),
        (lambda dd: dd.list_notifications("a\x00"), "topic"),
        (lambda dd: dd.list_notifications("t", limit="x"), "limit"),
        (lambda dd: dd.list_notifications("t", limit=2**70), "limit"),
        (lambda dd: dd.list_notifications("t", unread_only="yes"), "unread_only"),
        (lambda dd: dd.mark_read("x"), "notification_ids"),
        (lambda dd: dd.mark_read([5]), "notification_ids"),
        (lambda dd: dd.simulate("world", events=[(1, "paid")]), "events[0]"),
        (
            lambda dd: dd.simulate("world", events=[(timedelta(days=1), "paid", {"a": NAN})]),
            "events[0].event_data",
        ),
        (lambda dd: dd.simulate("world", events=5), "events"),
        (lambda dd: dd.simulate("world", until=5), "until"),
        (lambda dd: dd.simulate("world", until=timedelta(days=10**6)), "until"),
        (lambda dd: dd.simulate("world", start=datetime(2030, 1, 1)), "start"),
        (lambda dd: dd.subscribe(["a"], print), "topic"),
        (lambda dd: dd.subscribe("a", 5), "callback"),
    ],
)
def test_inbox_simulate_and_subscribe_name_the_bad_argument(dd, world, call, field) -> None:
    assert list(errors_of(lambda: call(dd))) == [field]


def test_simulate_shows_its_options_in_its_signature() -> None:
    import inspect

    for face in (DripDrop, AsyncDripDrop):
        params = inspect.signature(face.simulate).parameters
        assert {"tenant_key", "start", "hook_values", "subscriber"} <= set(params)
        assert params["tenant_key"].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": "10"}, "concurrency"),
        ({"batch_size": 2**70}, "batch_size"),
        ({"lease_seconds": -1}, "lease_seconds"),
        ({"poll_interval": float("nan")}, "poll_interval"),
        ({"grace": "30"}, "grace"),
        ({"listen": "yes"}, "listen"),
        ({"lease": 30}, "lease"),
    ],
)
def test_run_worker_names_a_bad_option(dd, kwargs, field) -> None:
    import threading

    stop = threading.Event()
    stop.set()
    errors = errors_of(lambda: dd.run_worker(stop_event=stop, handle_signals=False, **kwargs))
    assert list(errors) == [field]
