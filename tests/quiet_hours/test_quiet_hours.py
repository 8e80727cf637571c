"""Quiet hours: a step due inside the recipient's night waits for the morning, and is then sent
once; overrides per version and step; transactional sequences and system channels are not held;
DST-correct across both changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dripdrop import DripDrop, ValidationError
from dripdrop.engine.quiet_hours import next_allowed
from dripdrop.testing import FakeClock, TestEnv

NIGHT = {"start": "21:00", "end": "08:00"}


@pytest.fixture
def quiet_env(database_url: str) -> Any:
    clock = FakeClock(datetime(2030, 1, 7, 22, 0, tzinfo=UTC))  # a Monday, 22:00 UTC
    e = TestEnv(database_url, clock=clock, allow_private_network=True, quiet_hours=NIGHT)
    yield e
    e.close()


def _sequence(
    dd: DripDrop,
    *,
    category: str | None = None,
    version_config: dict[str, Any] | None = None,
    step_config: dict[str, Any] | None = None,
    channel: str = "email",
) -> None:
    dd.create_channel_adapter(name=f"mem-{channel}", channel=channel, provider="memory")
    seq = dd.create_sequence(name="Quiet", key="quiet", category=category)
    v = dd.create_sequence_version(seq.id, active=True, config=version_config)
    config: dict[str, Any] = (
        {"subject": "Hello", "body": "Hi {{ name }}"}
        if channel == "email"
        else {"url": "http://127.0.0.1:9/hook", "body": "{}"}
    )
    dd.create_step(v.id, name="first", channel=channel, config={**config, **(step_config or {})})


def _enroll(dd: DripDrop, data: dict[str, Any] | None = None) -> Any:
    return dd.enroll(
        sequence_key="quiet",
        subscriber={"type": "User", "id": 1},
        data={"name": "Ada", "email": "ada@example.com", **(data or {})},
    )


def test_a_step_due_at_night_waits_for_the_morning_then_is_sent_once(quiet_env: Any) -> None:
    dd = quiet_env.dd
    _sequence(dd)
    e = _enroll(dd)
    summary = dd.run_due()
    assert quiet_env.outbox() == []
    assert summary.sent == 0
    (ex,) = dd.list_executions(e.id)
    assert ex.state == "scheduled"
    assert ex.scheduled_for == datetime(2030, 1, 8, 8, 0, tzinfo=UTC)
    assert "quiet hours" in (ex.error_message or "")
    quiet_env.clock.set(datetime(2030, 1, 8, 7, 59, tzinfo=UTC))
    dd.run_due()
    assert quiet_env.outbox() == []
    quiet_env.clock.set(datetime(2030, 1, 8, 8, 0, tzinfo=UTC))
    dd.run_due()
    dd.run_due()
    assert [m.recipient for m in quiet_env.outbox()] == ["ada@example.com"]
    (ex,) = dd.list_executions(e.id)
    assert ex.state == "sent" and ex.retry_count == 0


def test_the_recipients_timezone_decides(quiet_env: Any) -> None:
    dd = quiet_env.dd
    quiet_env.clock.set(datetime(2030, 1, 7, 12, 30, tzinfo=UTC))  # 21:30 in Tokyo
    _sequence(dd)
    e = _enroll(dd, {"timezone": "Asia/Tokyo"})
    dd.run_due()
    assert quiet_env.outbox() == []
    (ex,) = dd.list_executions(e.id)
    assert ex.scheduled_for == datetime(2030, 1, 7, 23, 0, tzinfo=UTC)  # 08:00 JST


def test_an_unknown_timezone_in_the_data_falls_back_to_the_windows(quiet_env: Any) -> None:
    dd = quiet_env.dd
    _sequence(dd, version_config={"quiet_hours": {**NIGHT, "timezone": "UTC"}})
    e = _enroll(dd, {"timezone": "Mars/Olympus_Mons"})
    dd.run_due()
    (ex,) = dd.list_executions(e.id)
    assert ex.scheduled_for == datetime(2030, 1, 8, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"step_config": {"quiet_hours": False}},
        {"version_config": {"quiet_hours": False}},
        {"category": "transactional"},
        {"channel": "webhook"},
    ],
    ids=["step-off", "version-off", "transactional", "webhook"],
)
def test_what_is_not_held(quiet_env: Any, kwargs: dict[str, Any]) -> None:
    dd = quiet_env.dd
    _sequence(dd, **kwargs)
    e = _enroll(dd)
    dd.run_due()
    (ex,) = dd.list_executions(e.id)
    assert "quiet hours" not in (ex.error_message or "")
    assert ex.state in ("sent", "failed", "scheduled")  # the webhook's port 9 may refuse
    if kwargs.get("channel") != "webhook":
        assert ex.state == "sent"


def test_a_transactional_step_may_opt_in(quiet_env: Any) -> None:
    dd = quiet_env.dd
    _sequence(dd, category="transactional", step_config={"quiet_hours": True})
    e = _enroll(dd)
    dd.run_due()
    (ex,) = dd.list_executions(e.id)
    assert ex.state == "scheduled" and "quiet hours" in ex.error_message


def test_the_version_window_overrides_the_instance_default(quiet_env: Any) -> None:
    dd = quiet_env.dd
    _sequence(dd, version_config={"quiet_hours": {"start": "23:00", "end": "06:00"}})
    e = _enroll(dd)  # 22:00 UTC: outside 23:00-06:00
    dd.run_due()
    (ex,) = dd.list_executions(e.id)
    assert ex.state == "sent"


def test_without_a_default_nothing_is_held(env: Any) -> None:
    env.clock.set(datetime(2030, 1, 7, 23, 0, tzinfo=UTC))
    _sequence(env.dd)
    e = _enroll(env.dd)
    env.dd.run_due()
    assert env.dd.list_executions(e.id)[0].state == "sent"


NEW_YORK = {"start": "21:00", "end": "08:00", "timezone": "America/New_York"}


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # spring forward, Sunday 2026-03-08: 00:00 EST → 08:00 EDT (12:00 UTC, not 13:00)
        (datetime(2026, 3, 8, 5, 0, tzinfo=UTC), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        # fall back, Sunday 2026-11-01: 01:30 EDT (the first one) → 08:00 EST (13:00 UTC)
        (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
        # 01:30 EST (the repeated hour) → the same morning
        (datetime(2026, 11, 1, 6, 30, tzinfo=UTC), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
        # the evening before each change: 21:30 local → the next morning, other offset
        (datetime(2026, 3, 8, 2, 30, tzinfo=UTC), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        (datetime(2026, 11, 1, 1, 30, tzinfo=UTC), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
    ],
)
def test_dst_changes(now: datetime, expected: datetime) -> None:
    assert next_allowed(NEW_YORK, {}, now) == expected


def test_a_window_ending_in_the_spring_gap_ends_when_the_clock_jumps() -> None:
    # 02:30 does not exist on 2026-03-08 in New York: the window ends at 03:30 EDT (07:30 UTC)
    window = {"start": "22:00", "end": "02:30", "timezone": "America/New_York"}
    now = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # 01:00 EST
    ends = next_allowed(window, {}, now)
    assert ends == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert next_allowed(window, {}, ends) is None


def test_outside_the_window_nothing_waits() -> None:
    assert next_allowed(NEW_YORK, {}, datetime(2026, 6, 1, 16, 0, tzinfo=UTC)) is None
    # just before the start, and at the end minute itself
    assert next_allowed(NEW_YORK, {}, datetime(2026, 6, 2, 0, 59, tzinfo=UTC)) is None
    assert next_allowed(NEW_YORK, {}, datetime(2026, 6, 1, 12, 0, tzinfo=UTC)) is None
    assert next_allowed(NEW_YORK, {}, datetime(2026, 6, 2, 1, 0, tzinfo=UTC)) is not None


@pytest.mark.parametrize(
    ("window", "field"),
    [
        ({"start": "9pm", "end": "08:00"}, "config.quiet_hours.start"),
        ({"start": "21:00"}, "config.quiet_hours.end"),
        ({"start": "21:00", "end": "21:00"}, "config.quiet_hours.end"),
        ({**NIGHT, "timezone": "Nowhere/City"}, "config.quiet_hours.timezone"),
        ({**NIGHT, "tz": "UTC"}, "config.quiet_hours.tz"),
        ("nights", "config.quiet_hours"),
    ],
)
def test_bad_windows_are_refused_naming_the_field(dd: DripDrop, window: Any, field: str) -> None:
    seq = dd.create_sequence(name="Q", key="q")
    with pytest.raises(ValidationError) as caught:
        dd.create_sequence_version(seq.id, config={"quiet_hours": window})
    assert field in caught.value.errors
    v = dd.create_sequence_version(seq.id)
    with pytest.raises(ValidationError) as caught:
        dd.create_step(
            v.id,
            name="s",
            channel="email",
            config={"subject": "s", "body": "b", "quiet_hours": window},
        )
    assert field in caught.value.errors


def test_a_bad_instance_default_is_refused(database_url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DripDrop(
            database_url, schema="dd_never_created", quiet_hours={"start": "25:00", "end": "1"}
        )
    assert "quiet_hours.start" in caught.value.errors


def test_a_deferral_keeps_its_place_after_later_steps_are_due(quiet_env: Any) -> None:
    """The deferred step is the chain's current one: the next step is planned only after it
    is sent (no step jumps ahead of one held by the night)."""
    dd = quiet_env.dd
    _sequence(dd)
    v = dd.get_active_version(dd.get_sequence("quiet").id)
    dd.create_step(
        v.id,
        name="second",
        channel="email",
        timing={"type": "delay", "delay_amount": 1, "delay_unit": "hours"},
        config={"subject": "Two", "body": "2"},
    )
    e = _enroll(dd)
    dd.run_due()
    quiet_env.clock.advance(hours=3)  # 01:00: still night
    dd.run_due()
    assert quiet_env.outbox() == []
    assert len(dd.list_executions(e.id)) == 1
    quiet_env.clock.set(datetime(2030, 1, 8, 8, 0, tzinfo=UTC))
    dd.run_due()
    quiet_env.clock.advance(timedelta(hours=1))
    dd.run_due()
    assert [m.payload["subject"] for m in quiet_env.outbox()] == ["Hello", "Two"]
