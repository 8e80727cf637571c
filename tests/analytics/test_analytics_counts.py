"""Counts of the analytics are exact after real worker runs (memory provider): sends, skips,
retries, failures, cancellations, exits and restarts, each equal to what the base tables say —
and the rebuild from the base tables gives the same answer as the triggers did."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path

import pytest
from analytics_support import mixed_sequence, sql, truth

from dripdrop.engine import analytics
from dripdrop.errors import NotFound, ValidationError


def _enroll(dd, n: int, key: str = "mix", pro_every: int = 2, **kw) -> None:
    for i in range(n):
        plan = "pro" if i % pro_every == 0 else "free"
        dd.enroll(key, {"type": "User", "id": i}, data={"email": f"u{i}@x.io", "plan": plan}, **kw)


def _drain(env, rounds: int = 6) -> None:
    """Run everything due, moving the clock past every retry's backoff."""
    for _ in range(rounds):
        env.advance_and_run(timedelta(hours=7))


def test_funnel_counts_equal_the_executions(env) -> None:
    dd = env.dd
    world = mixed_sequence(dd)
    _enroll(dd, 10)  # 5 pro, 5 free
    _drain(env)
    got = dd.sequence_analytics("mix")
    real = truth(dd, world["version"].id)

    assert got.version_id == world["version"].id
    assert got.enrolled == 10
    welcome, pro, flaky = got.steps
    assert [s.key for s in got.steps] == ["welcome", "pro_only", "flaky"]
    assert (welcome.sent, welcome.skipped, welcome.failed) == (10, 0, 0)
    assert (pro.sent, pro.skipped) == (5, 5)
    # flaky: 2 retries each, then failed; the enrollments go on (on_failure: continue).
    assert (flaky.sent, flaky.failed, flaky.retried) == (0, 10, 20)
    for step in got.steps:
        assert step.sent == real[step.key]["sent"]
        assert step.skipped == real[step.key]["skipped"]
        assert step.failed == real[step.key]["failed"]
        assert step.retried == real[step.key]["retried"]
    assert got.completed == 10 and got.cancelled == 0 and got.exited == 0
    # The funnel: each step entered by what got past the one before.
    assert [(s.entered, s.reached, s.drop_off) for s in got.steps] == [
        (10, 10, 0),
        (10, 10, 0),
        (10, 10, 0),
    ]
    # Delivery performance: per channel and per adapter (the failing one: all errors).
    (email,) = got.channels
    assert (email.sent, email.failed, email.retried, email.skipped) == (15, 10, 20, 5)
    by_name = {p.adapter_name: p for p in got.providers}
    assert by_name["ok-mix"].sends == 15 and by_name["ok-mix"].error_rate == 0.0
    assert by_name["bad-mix"].sends == 30 and by_name["bad-mix"].error_rate == 1.0
    assert by_name["bad-mix"].provider == "memory"
    assert by_name["ok-mix"].p50_ms is not None and by_name["ok-mix"].p95_ms is not None


def test_cancels_exits_restarts_and_halts(env) -> None:
    dd = env.dd
    seq = dd.create_sequence(name="Life", key="life")
    version = dd.create_sequence_version(seq.id, active=True, config={"exit_events": ["bought"]})
    dd.create_channel_adapter(name="mem", channel="email", provider="memory", is_default=True)
    body = {"subject": "Hi", "body": "b"}
    first = dd.create_step(version.id, name="first", channel="email", config=body)
    dd.create_step(
        version.id,
        name="later",
        channel="email",
        config=body,
        timing={"type": "delay", "delay_amount": 2, "delay_unit": "days"},
    )
    enrolled = [
        dd.enroll("life", {"type": "User", "id": i}, data={"email": f"u{i}@x.io"}) for i in range(6)
    ]
    dd.run_due()  # everyone got `first`; `later` waits two days
    dd.unenroll("life", "User", "0")  # cancelled: its `later` is cancelled
    dd.track_event(enrolled[1].id, "bought")  # exited early
    env.clock.advance(timedelta(minutes=5))
    restart = {"type": "User", "id": 2}
    dd.enroll("life", restart, data={"email": "u2@x.io"}, on_conflict="restart")
    env.advance_and_run(timedelta(days=3))
    got = dd.sequence_analytics("life")

    assert got.enrolled == 7  # 6 + the restart
    assert got.restarted == 1
    assert got.cancelled == 1 and got.exited == 1
    assert got.completed == 4  # 2 (restarted, finishing again), 3, 4, 5
    assert got.ended_by["unenrolled"] == 1
    assert sum(got.ended_by.values()) == got.completed + got.exited + got.cancelled
    later = got.steps[1]
    assert later.cancelled == 3  # unenrolled, exited, restarted
    assert later.sent == 4 and later.failed == 0
    assert got.steps[0].sent == 7  # the restart sent `first` again
    real = truth(dd, version.id)
    assert later.cancelled == real["later"]["cancelled"]
    assert first.id == got.steps[0].step_id


def test_rebuild_gives_what_the_triggers_kept(env) -> None:
    dd = env.dd
    mixed_sequence(dd)
    _enroll(dd, 12, pro_every=3)
    _drain(env)
    dd.unenroll("mix", "User", "4")
    kept = dd.sequence_analytics("mix")
    health = dd.adapter_health(since=env.clock() - timedelta(days=30))
    written = dd.rebuild_analytics()
    assert written > 0
    assert sql(dd, "SELECT count(*) FROM {s}.analytics_pending")[0][0] == 0
    assert dd.sequence_analytics("mix") == kept
    rebuilt = dd.adapter_health(since=env.clock() - timedelta(days=30))
    assert [(h.sends, h.sent, h.failed, h.retried) for h in rebuilt] == [
        (h.sends, h.sent, h.failed, h.retried) for h in health
    ]


def test_time_ranges_are_whole_hours_on_the_engine_clock(env) -> None:
    dd = env.dd
    mixed_sequence(dd)
    start = env.clock()
    _enroll(dd, 4)
    dd.run_due()  # welcome + pro_only (skips) at `start`; flaky retries later
    env.clock.advance(timedelta(days=2))
    _enroll(dd, 2, key="mix", pro_every=1, on_conflict="ignore")  # already enrolled: nothing
    day_one = dd.sequence_analytics("mix", since=start, until=start + timedelta(minutes=1))
    assert day_one.enrolled == 4
    assert day_one.since == start.replace(minute=0, second=0, microsecond=0)
    assert day_one.until == day_one.since + timedelta(hours=1)
    later = dd.sequence_analytics("mix", since=start + timedelta(hours=1))
    assert later.enrolled == 0 and later.steps[0].sent == 0
    # Adapter health covers the last 24 h by default: the sends of two days ago are outside.
    assert all(h.sends == 0 for h in dd.adapter_health())
    # Folded, the counts are in the hourly and the daily rollups alike; a range of whole days
    # and odd hours reads both (and no hour twice).
    sql(dd, "SELECT {s}.analytics_fold(true)")
    assert sql(dd, "SELECT count(*) FROM {s}.analytics_pending")[0][0] == 0
    totals = [
        sql(dd, f"SELECT sum(count), sum(latency_count) FROM {{s}}.{t}")[0]
        for t in ("analytics_hourly", "analytics_daily")
    ]
    assert totals[0] == totals[1]
    wide = dd.sequence_analytics(
        "mix", since=start - timedelta(days=3, hours=5), until=start + timedelta(days=1, hours=3)
    )
    assert wide.enrolled == 4 and wide.steps[0].sent == 4
    assert wide.steps == day_one.steps


def test_provider_latency_histogram(env) -> None:
    dd = env.dd
    seq = dd.create_sequence(name="Slow", key="slow")
    version = dd.create_sequence_version(seq.id, active=True)
    adapter = dd.create_channel_adapter(
        name="sleepy", channel="email", provider="analytics_sleepy", config={"delay": 0.03}
    )
    dd.create_step(
        version.id,
        name="one",
        channel="email",
        config={"subject": "s", "body": "b"},
        channel_adapter_id=adapter.id,
    )
    for i in range(8):
        dd.enroll("slow", {"type": "User", "id": i}, data={"email": f"u{i}@x.io"})
    assert dd.run_due().sent == 8
    (health,) = dd.adapter_health(adapter.id)
    assert health.sends == 8 and health.error_rate == 0.0
    # 30 ms of sleep: every answer lands in [25, 50) or, on a loaded machine, just above.
    assert 25 <= health.p50_ms < 100
    assert health.p50_ms <= health.p95_ms < 250
    assert 30 <= health.avg_ms < 250
    ms = [r[0] for r in sql(dd, "SELECT delivery_ms FROM {s}.step_executions")]
    assert all(30 <= v < 250 for v in ms)


def test_provider_events_are_counted(env) -> None:
    dd = env.dd
    world = mixed_sequence(dd)
    _enroll(dd, 3)
    dd.run_due()
    sent = sql(
        dd,
        "SELECT provider_message_id FROM {s}.step_executions "
        "WHERE state = 'sent' AND step_id = :step",
        step=world["steps"][0].id,
    )
    # The provider's own times (the engine's clock here): the hour they are counted in.
    at = env.clock().isoformat()
    events = [
        {
            "type": kind,
            "provider_message_id": mid,
            "provider_event_id": f"{kind}-{mid}",
            "occurred_at": at,
        }
        for (mid,) in sent
        for kind in ("delivered", "opened")
    ]
    events.append({**events[0]})  # a provider's retry of the same event counts once
    dd.record_delivery_events("memory", world["ok"].id, events)
    got = dd.sequence_analytics("mix")
    assert got.steps[0].delivery == {"delivered": 3, "opened": 3}
    by_name = {p.adapter_name: p for p in got.providers}
    assert by_name["ok-mix"].delivery == {"delivered": 3, "opened": 3}


def test_version_choice_and_totals(env) -> None:
    dd = env.dd
    world = mixed_sequence(dd)
    _enroll(dd, 3)
    v2 = dd.create_sequence_version(world["seq"].id)  # a draft
    dd.create_step(v2.id, name="only", channel="email", config={"subject": "s", "body": "b"})
    got = dd.sequence_analytics(world["seq"].id)  # by id; the active version by default
    assert got.version == 1
    assert [(t.version, t.enrolled) for t in got.versions] == [(1, 3), (2, 0)]
    draft = dd.sequence_analytics("mix", version_id=v2.id)
    assert draft.version == 2 and draft.enrolled == 0 and [s.key for s in draft.steps] == ["only"]


def test_bad_input_is_a_validation_error(env) -> None:
    dd = env.dd
    mixed_sequence(dd)
    now = env.clock()
    with pytest.raises(ValidationError) as bad:
        dd.sequence_analytics("mix", since=now.replace(tzinfo=None))
    assert "since" in bad.value.errors
    with pytest.raises(ValidationError) as bad:
        dd.sequence_analytics("mix", since=now, until=now - timedelta(hours=1))
    assert "since" in bad.value.errors
    with pytest.raises(ValidationError):
        dd.sequence_analytics("mix", since=now - timedelta(days=400), until=now)
    with pytest.raises(ValidationError) as bad:
        dd.sequence_analytics(12)
    assert "sequence_id_or_key" in bad.value.errors
    with pytest.raises(ValidationError):
        dd.adapter_health("not-an-id")
    with pytest.raises(NotFound):
        dd.sequence_analytics("missing")
    with pytest.raises(NotFound):
        dd.sequence_analytics("mix", version_id="00000000-0000-0000-0000-000000000001")


def test_latency_buckets_match_the_migration() -> None:
    path = (
        Path(analytics.__file__).parent.parent / "db/migrations/versions/0011_analytics_rollups.py"
    )
    spec = importlib.util.spec_from_file_location("migration_0011", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.LATENCY_BOUNDS_MS == analytics.LATENCY_BOUNDS_MS


def test_percentile_interpolates_inside_buckets() -> None:
    buckets = [0] * (len(analytics.LATENCY_BOUNDS_MS) + 1)
    buckets[4] = 10  # ten answers in [10, 25)
    assert analytics.percentile(buckets, 0.5) == 17.5
    buckets[-1] = 10  # ten more above 30 s
    assert analytics.percentile(buckets, 0.95) == 30000.0
    assert analytics.percentile([0] * len(buckets), 0.5) is None
