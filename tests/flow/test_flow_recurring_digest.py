"""Recurring cron steps on their own schedule (across a DST change, never holding the chain
back), digests sent once with their events, and the throttle condition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flow_support import sent, trail

from dripdrop import ValidationError
from dripdrop.testing import outbox

WEEKLY = {"type": "cron", "cron_expression": "0 9 * * MON", "timezone": "America/New_York"}


def test_a_weekly_step_repeats_8_times_across_dst_without_holding_the_chain(dd, flow, env, clock):
    # Tuesday 20 October 2026; New York leaves daylight time on Sunday 1 November.
    start = clock.set(datetime(2026, 10, 20, 12, 0, tzinfo=UTC))
    flow.step(
        "digest", timing=WEEKLY, config={"subject": "weekly", "body": "b", "repeat": {"times": 8}}
    )
    flow.step(
        "day7", channel="sms", timing={"type": "delay", "delay_amount": 7, "delay_unit": "days"}
    )
    e = flow.enroll()
    for _ in range(70):
        env.advance_and_run(days=1)
    weekly = [x for x in dd.list_executions(e.id) if x.occurrence]
    assert [x.occurrence for x in weekly] == list(range(1, 9))
    assert all(x.state == "sent" for x in weekly)
    # 9:00 in New York: 13:00 UTC in daylight time, 14:00 UTC after 1 November.
    assert [x.scheduled_for for x in weekly] == [
        datetime(2026, 10, 26, 13, tzinfo=UTC),
        *[datetime(2026, 11, 2, 14, tzinfo=UTC) + timedelta(weeks=w) for w in range(7)],
    ]
    (sms,) = outbox("sms")
    (day7,) = [x for x in dd.list_executions(e.id) if x.channel == "sms"]
    assert day7.scheduled_for == start + timedelta(days=7) and sms.payload["body"] == "day7"
    # The SMS went out between the first and the second Monday: the weekly step held nothing.
    assert weekly[0].scheduled_for < day7.scheduled_for < weekly[1].scheduled_for
    done = dd.get_enrollment_by_id(e.id)
    assert done.state == "completed" and done.completed_at == datetime(2026, 12, 15, 12, tzinfo=UTC)
    assert sent("email") == ["weekly"] * 8


def test_a_repeat_until_an_event_stops_at_the_event(dd, flow, env):
    flow.step(
        "weekly",
        timing=WEEKLY,
        config={"subject": "weekly", "body": "b", "repeat": {"until_event": "churned"}},
    )
    e = flow.enroll()  # Monday 7 January 2030, 4:00 in New York: the first is at 9:00
    for _ in range(15):
        env.advance_and_run(days=1)
    assert sent() == ["weekly"] * 3
    dd.track_event(e.id, "churned")
    for _ in range(14):
        env.advance_and_run(days=1)
    assert sent() == ["weekly"] * 3  # the occurrence already scheduled sees the event: skipped
    last = [x for x in dd.list_executions(e.id) if x.occurrence][-1]
    assert (last.occurrence, last.state) == (4, "skipped") and "churned" in last.error_message
    assert dd.get_enrollment_by_id(e.id).state == "completed"


def test_a_repeat_needs_cron_timing(dd, flow):
    with pytest.raises(ValidationError) as info:
        flow.step("r", config={"subject": "s", "body": "b", "repeat": {"times": 0}})
    assert {"config.repeat", "config.repeat.times"} <= set(info.value.errors)


def test_a_digest_of_5_events_is_sent_once(dd, flow, env):
    flow.step(
        "comments",
        config={
            "subject": "{{ events | size }} new comments",
            "body": "{% for e in events %}{{ e.event_data.text }};{% endfor %}",
            "digest": {
                "event_key": "comment",
                "window_amount": 1,
                "window_unit": "days",
                "max_events": 5,
            },
        },
    )
    e = flow.enroll()
    dd.run_due()
    for i in range(5):
        dd.track_event(e.id, "comment", {"text": f"c{i}"})
        dd.track_event(e.id, "other", {"text": "no"})
        env.advance_and_run(minutes=1)
    (msg,) = outbox()
    assert msg.payload["subject"] == "5 new comments"
    assert msg.payload["body"] == "c0;c1;c2;c3;c4;"
    env.advance_and_run(days=2)
    assert len(outbox()) == 1
    assert trail(dd, e) == [("comments", "sent")]


def test_a_digest_sends_what_its_window_gathered(dd, flow, env):
    flow.step(
        "d",
        config={
            "subject": "{{ events | size }}",
            "body": "b",
            "digest": {"event_key": "comment", "window_amount": 6, "window_unit": "hours"},
        },
    )
    flow.step(
        "quiet",
        config={
            "subject": "{{ events | size }}",
            "body": "b",
            "digest": {"event_key": "comment", "window_amount": 6, "window_unit": "hours"},
        },
    )
    e = flow.enroll()
    dd.track_event(e.id, "comment")
    env.advance_and_run(hours=1)
    dd.track_event(e.id, "comment")
    env.advance_and_run(hours=5)
    assert sent() == ["2"]
    env.advance_and_run(hours=7)  # nothing new in the second window: skipped, not sent empty
    assert sent() == ["2"]
    assert trail(dd, e)[-1] == ("quiet", "skipped")


def test_a_throttle_lets_at_most_n_sends_per_window(dd, flow, env):
    daily = {"type": "cron", "cron_expression": "0 9 * * *", "timezone": "UTC"}
    step = flow.step(
        "nudge", timing=daily, config={"subject": "nudge", "body": "b", "repeat": {"times": 10}}
    )
    dd.create_condition(
        step.id,
        condition_type="throttle",
        config={"max_sends": 2, "window_amount": 7, "window_unit": "days"},
    )
    e = flow.enroll()
    for _ in range(11):
        env.advance_and_run(days=1)
    states = [x.state for x in dd.list_executions(e.id) if x.occurrence]
    assert states == [
        "sent",
        "sent",
        "skipped",
        "skipped",
        "skipped",
        "skipped",
        "skipped",
        "sent",
        "sent",
        "skipped",
    ]
    skipped = [x for x in dd.list_executions(e.id) if x.state == "skipped" and x.occurrence]
    assert "2 of at most 2 sends" in skipped[0].error_message
    with pytest.raises(ValidationError) as info:
        dd.create_condition(step.id, condition_type="throttle", config={"max_sends": 0})
    assert "config.max_sends" in info.value.errors
