"""Frequency caps: at most N messages per subscriber per period across sequences. Over the cap a
message is deferred to when it fits (visibly) or skipped when configured, never dropped; an
execution is counted once however often it is attempted; other subscribers, transactional
sequences and opted-out steps are not held; concurrent reservations never pass the cap."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text

from dripdrop import DripDrop, ValidationError
from dripdrop.engine import frequency_caps
from dripdrop.testing import FakeClock, TestEnv

T0 = datetime(2030, 1, 7, 15, 0, tzinfo=UTC)
MARKETING_EMAIL = {"category": "marketing", "channel": "email", "limit": "2/1d"}
USER = {"type": "User", "id": 1}


def _env(database_url: str, caps: Any = (MARKETING_EMAIL,), **options: Any) -> TestEnv:
    return TestEnv(
        database_url,
        clock=FakeClock(T0),
        allow_private_network=True,
        frequency_caps=list(caps) if caps is not None else None,
        **options,
    )


@pytest.fixture
def capped(database_url: str) -> Any:
    e = _env(database_url)
    yield e
    e.close()


def _adapter(dd: DripDrop, channel: str = "email", **config: Any) -> Any:
    return dd.create_channel_adapter(
        name=f"mem-{channel}-{len(config)}", channel=channel, provider="memory", config=config
    )


def _sequence(
    dd: DripDrop,
    key: str,
    *,
    category: str | None = "marketing",
    version_config: dict[str, Any] | None = None,
    steps: tuple[dict[str, Any], ...] = ({},),
    channel: str = "email",
    adapter: Any = None,
) -> None:
    seq = dd.create_sequence(name=key, key=key, category=category)
    v = dd.create_sequence_version(seq.id, active=True, config=version_config)
    for i, extra in enumerate(steps):
        base = (
            {"subject": f"{key} {i}", "body": "Hi"}
            if channel == "email"
            else {"body": f"{key} {i}"}
        )
        dd.create_step(
            v.id,
            name=f"{key} {i}",
            channel=channel,
            config={**base, **extra},
            channel_adapter_id=adapter.id if adapter is not None else None,
        )


def _enroll(dd: DripDrop, key: str, who: Any = 1) -> Any:
    return dd.enroll(
        sequence_key=key,
        subscriber={"type": "User", "id": who},
        data={"email": f"user{who}@example.com", "phone": "+14155552671"},
    )


def _only(dd: DripDrop, enrollment: Any) -> Any:
    (ex,) = dd.list_executions(enrollment.id)
    return ex


def _subjects(env: TestEnv) -> list[str]:
    return [m.payload.get("subject") or m.payload.get("body") for m in env.outbox()]


def _history(env: TestEnv) -> list[Any]:
    with env.dd.runtime.engine.connect() as conn:
        return list(
            conn.execute(
                text(f'SELECT key, sent_at, execution_ids FROM "{env.schema}".send_history')
            )
        )


def test_the_third_email_of_the_day_waits_until_the_oldest_leaves_the_window(capped) -> None:
    dd = capped.dd
    _adapter(dd)
    for key in ("a", "b", "c", "d"):
        _sequence(dd, key)
    _enroll(dd, "a")
    dd.run_due()
    capped.clock.advance(hours=1)
    _enroll(dd, "b")
    dd.run_due()
    capped.clock.advance(hours=1)
    c = _enroll(dd, "c")
    assert dd.run_due().sent == 0
    assert _subjects(capped) == ["a 0", "b 0"]
    ex = _only(dd, c)
    assert ex.state == "scheduled" and ex.retry_count == 0
    assert ex.scheduled_for == T0 + timedelta(days=1)  # the first send leaves the window
    assert ex.error_message == (
        f"deferred to {(T0 + timedelta(days=1)).isoformat()} (frequency cap: 2/1d marketing email)"
    )
    capped.clock.set(T0 + timedelta(days=1) - timedelta(minutes=1))
    assert dd.run_due().total == 0
    capped.clock.set(T0 + timedelta(days=1))
    assert dd.run_due().sent == 1
    assert _only(dd, c).state == "sent"
    # A sliding window: "b" (T0 + 1 h) and "c" (T0 + 1 d) are in it now.
    capped.clock.advance(minutes=5)
    d = _enroll(dd, "d")
    dd.run_due()
    assert _only(dd, d).scheduled_for == T0 + timedelta(days=1, hours=1)
    assert _subjects(capped) == ["a 0", "b 0", "c 0"]
    [row] = _history(capped)
    assert len(row.sent_at) == 2 and len(set(row.execution_ids)) == 2


def test_skip_mode_skips_with_the_reason_and_the_enrollment_goes_on(database_url) -> None:
    env = _env(database_url, [{**MARKETING_EMAIL, "over": "skip"}])
    try:
        dd = env.dd
        _adapter(dd)
        _sequence(dd, "a")
        _sequence(dd, "b")
        # the second step opts out (a receipt inside a marketing sequence)
        _sequence(dd, "c", steps=({}, {"frequency_cap": False}))
        _enroll(dd, "a")
        _enroll(dd, "b")
        dd.run_due()
        c = _enroll(dd, "c")
        dd.run_due()
        dd.run_due()
        first, second = sorted(dd.list_executions(c.id), key=lambda x: x.inserted_at)
        assert first.state == "skipped"
        assert first.error_message == "skipped: over the frequency cap: 2/1d marketing email"
        assert first.recipient == "user1@example.com"
        assert second.state == "sent"
        assert sorted(_subjects(env)) == ["a 0", "b 0", "c 1"]
        assert dd.get_enrollment_by_id(c.id).state == "completed"
    finally:
        env.close()


def test_other_subscribers_and_other_tenants_are_counted_apart(capped) -> None:
    dd = capped.dd
    _adapter(dd)
    for key in ("a", "b", "c"):
        _sequence(dd, key)
    for who in (1, 2):
        _enroll(dd, "a", who)
        _enroll(dd, "b", who)
    dd.run_due()
    third = _enroll(dd, "c", 1)
    fresh = _enroll(dd, "c", 3)
    dd.run_due()
    assert _only(dd, third).state == "scheduled"
    assert _only(dd, fresh).state == "sent"
    assert len(capped.outbox()) == 5
    keys = {row.key for row in _history(capped)}
    assert len(keys) == 3  # one row per subscriber under the one cap


EVERYTHING = {"limit": "2/1d"}  # no category, no channel: every message that reaches a person


@pytest.mark.parametrize(
    ("cap", "what", "expected"),
    [
        (EVERYTHING, {"category": "transactional"}, "sent"),
        (
            EVERYTHING,
            {"category": "transactional", "steps": ({"frequency_cap": True},)},
            "scheduled",
        ),
        (MARKETING_EMAIL, {"steps": ({"frequency_cap": False},)}, "sent"),
        (MARKETING_EMAIL, {"version_config": {"frequency_caps": False}}, "sent"),
        (MARKETING_EMAIL, {"category": "product"}, "sent"),
        (EVERYTHING, {"category": "product"}, "scheduled"),
        (EVERYTHING, {"category": None}, "scheduled"),
        (MARKETING_EMAIL, {"channel": "sms"}, "sent"),
        (EVERYTHING, {"channel": "sms"}, "scheduled"),
        (MARKETING_EMAIL, {}, "scheduled"),
    ],
    ids=[
        "transactional",
        "transactional-opted-in",
        "step-off",
        "version-off",
        "other-category",
        "any-category",
        "uncategorised",
        "other-channel",
        "any-channel",
        "same",
    ],
)
def test_what_a_full_cap_holds(
    database_url: str, cap: dict[str, Any], what: dict[str, Any], expected: str
) -> None:
    """Two marketing emails fill the cap; does a third message of another kind wait?"""
    env = _env(database_url, [cap])
    try:
        dd = env.dd
        _adapter(dd)
        _adapter(dd, "sms")
        _sequence(dd, "a")
        _sequence(dd, "b")
        _sequence(dd, "x", **what)
        _enroll(dd, "a")
        _enroll(dd, "b")
        dd.run_due()
        x = _enroll(dd, "x")
        dd.run_due()
        ex = _only(dd, x)
        assert ex.state == expected, ex.error_message
        if expected == "scheduled":
            assert "frequency cap" in ex.error_message
    finally:
        env.close()


def test_a_version_cap_replaces_the_instance_default(capped) -> None:
    dd = capped.dd
    _adapter(dd)
    version_caps = {"frequency_caps": [{"category": "marketing", "limit": "1/12h"}]}
    _sequence(dd, "a", version_config=version_caps)
    _sequence(dd, "b", version_config=version_caps)
    _enroll(dd, "a")
    dd.run_due()
    b = _enroll(dd, "b")
    dd.run_due()
    ex = _only(dd, b)
    assert ex.scheduled_for == T0 + timedelta(hours=12)
    assert "frequency cap: 1/12h marketing" in ex.error_message


def test_a_retried_execution_is_counted_once(capped) -> None:
    """Three attempts of one message (the provider fails twice, transiently) take one place in
    the window, not three: another email still fits under 2/1d."""
    dd = capped.dd
    _adapter(dd)
    flaky = _adapter(dd, fail="transient")
    _sequence(dd, "flaky", steps=({"max_retries": 2},), adapter=flaky)
    _sequence(dd, "a")
    _sequence(dd, "b")
    f = _enroll(dd, "flaky")
    for _ in range(3):
        dd.run_due()
        capped.clock.advance(hours=1)
    assert _only(dd, f).state == "failed"
    assert _only(dd, f).retry_count == 2
    [row] = _history(capped)
    assert len(row.sent_at) == 1  # the attempts moved one entry, added none
    a = _enroll(dd, "a")
    dd.run_due()
    assert _only(dd, a).state == "sent"
    b = _enroll(dd, "b")
    dd.run_due()
    assert _only(dd, b).state == "scheduled"


def test_without_a_cap_nothing_is_read_or_written(database_url: str) -> None:
    env = _env(database_url, caps=None)
    try:
        _adapter(env.dd)
        for key in ("a", "b", "c"):
            _sequence(env.dd, key)
            _enroll(env.dd, key)
        assert env.dd.run_due().sent == 3
        assert _history(env) == []
    finally:
        env.close()


def test_rows_that_hold_nothing_are_pruned(capped) -> None:
    rt = capped.dd.runtime
    cap = frequency_caps.Cap(None, None, 2, timedelta(hours=1), "2/1h", "defer")
    old, live = (
        SimpleNamespace(tenant_key="t", subscriber_type="User", subscriber_id=n) for n in (1, 2)
    )
    with rt.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        assert frequency_caps.reserve(rt, conn, [cap], old, str(uuid.uuid4()), T0) is None
        later = T0 + timedelta(minutes=30)
        assert frequency_caps.reserve(rt, conn, [cap], live, str(uuid.uuid4()), later) is None
        assert frequency_caps.prune(rt, conn, T0 + timedelta(minutes=61)) == 1
    assert [row.key for row in _history(capped)] == [cap.key(live)]


# --- races ---------------------------------------------------------------------------------


def _race(rt: Any, cap: frequency_caps.Cap, who: Any, now: datetime, n: int) -> int:
    """``n`` connections reserve for ``who`` at the same instant; how many passed."""
    barrier = threading.Barrier(n)
    passed: list[bool] = []
    lock = threading.Lock()

    def reserve() -> None:
        with rt.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("SELECT 1"))  # connected before the barrier
            barrier.wait()
            full = frequency_caps.reserve(rt, conn, [cap], who, str(uuid.uuid4()), now)
        with lock:
            passed.append(full is None)

    threads = [threading.Thread(target=reserve) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(passed) == n
    return sum(passed)


def test_concurrent_reservations_never_pass_the_cap(capped) -> None:
    """12 connections reserve for one subscriber at the same instant, cap 1: exactly one passes
    — on a fresh row (racing inserts) and on an existing one (racing updates), and again with
    cap 3 (exactly three)."""
    rt = capped.dd.runtime
    for count in (1, 3):
        cap = frequency_caps.Cap("marketing", "email", count, timedelta(days=1), "n/1d", "defer")
        who = SimpleNamespace(tenant_key=None, subscriber_type="User", subscriber_id=str(count))
        for round_ in range(3):  # round 0 inserts the row; later rounds update it
            now = T0 + timedelta(days=2 * round_)
            got = _race(rt, cap, who, now, 12)
            assert got == count, f"cap {count}, round {round_}: {got} passed"


def test_two_workers_racing_for_one_subscriber_send_within_the_cap(database_url: str) -> None:
    """Two instances (own engines, own connections) run the due executions of eight marketing
    sequences of one subscriber at the same time, cap 1/1d: one email, seven deferred."""
    caps = [{"category": "marketing", "limit": "1/1d"}]
    env = _env(database_url, caps)
    other = DripDrop(
        database_url,
        schema=env.schema,
        clock=env.clock,
        encryption_key=env.dd.runtime._key_source,
        frequency_caps=caps,
    )
    try:
        dd = env.dd
        _adapter(dd)
        keys = [f"s{i}" for i in range(8)]
        for key in keys:
            _sequence(dd, key)
        enrollments = [_enroll(dd, key) for key in keys]
        barrier = threading.Barrier(2)

        def run(instance: DripDrop) -> None:
            barrier.wait()
            instance.run_due()

        threads = [threading.Thread(target=run, args=(x,)) for x in (dd, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        states = sorted(_only(dd, e).state for e in enrollments)
        assert states == ["scheduled"] * 7 + ["sent"]
        assert len(env.outbox()) == 1
        for e in enrollments:
            ex = _only(dd, e)
            if ex.state == "scheduled":
                assert ex.scheduled_for == T0 + timedelta(days=1)
    finally:
        other.close()
        env.close()


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caps", "field", "says"),
    [
        ([{"limit": "2/1w"}], "frequency_caps.0.limit", "count/period"),
        ([{"limit": "2/1d", "categroy": "marketing"}], "frequency_caps.0.categroy", "category"),
        ([{"limit": "2/1d", "over": "drop"}], "frequency_caps.0.over", "skip"),
        ([{"limit": "2/1d", "channel": "fax"}], "frequency_caps.0.channel", "email"),
        ([{"limit": "2/1d", "category": "Marketing!"}], "frequency_caps.0.category", "lower-case"),
        ([MARKETING_EMAIL, "2/1d"], "frequency_caps.1", "cap"),
        ({"limit": "2/1d"}, "frequency_caps", "list"),
        ([], "frequency_caps", "list"),
        (False, "frequency_caps", "list"),
    ],
)
def test_bad_instance_caps_are_refused_naming_the_field(
    database_url: str, caps: Any, field: str, says: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        DripDrop(database_url, schema="dd_never_created", frequency_caps=caps)
    assert field in caught.value.errors, caught.value.errors
    assert says in " ".join(caught.value.errors[field])


def test_bad_version_and_step_settings_are_refused(dd: DripDrop) -> None:
    seq = dd.create_sequence(name="Q", key="q")
    with pytest.raises(ValidationError) as caught:
        dd.create_sequence_version(seq.id, config={"frequency_caps": [{"limit": "often"}]})
    assert "config.frequency_caps.0.limit" in caught.value.errors
    with pytest.raises(ValidationError) as caught:
        dd.create_sequence_version(seq.id, config={"frequency_cap": [{"limit": "2/1d"}]})
    assert "did you mean 'frequency_caps'" in caught.value.errors["config.frequency_cap"][0]
    v = dd.create_sequence_version(seq.id, config={"frequency_caps": False})
    assert v.config["frequency_caps"] is False
    with pytest.raises(ValidationError) as caught:
        dd.create_step(
            v.id,
            name="s",
            channel="email",
            config={"subject": "s", "body": "b", "frequency_cap": "no"},
        )
    assert "config.frequency_cap" in caught.value.errors
    with pytest.raises(ValidationError) as caught:
        dd.create_step(
            v.id,
            name="s",
            channel="email",
            config={"subject": "s", "body": "b", "frequency_caps": []},
        )
    assert "did you mean 'frequency_cap'" in caught.value.errors["config.frequency_caps"][0]
    step = dd.create_step(
        v.id,
        name="s",
        channel="email",
        config={"subject": "s", "body": "b", "frequency_cap": False},
    )
    assert step.config["frequency_cap"] is False


def test_the_setting_never_reaches_the_provider(capped) -> None:
    dd = capped.dd
    _adapter(dd)
    _sequence(dd, "a", steps=({"frequency_cap": False, "quiet_hours": False},))
    _enroll(dd, "a")
    dd.run_due()
    [message] = capped.outbox()
    assert "frequency_cap" not in message.payload
    assert "quiet_hours" not in message.payload
