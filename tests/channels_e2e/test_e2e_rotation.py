"""Adapter rotation through the engine: weighted version rotation, stickiness per enrollment,
step rotation and pinned adapters overriding it, inactive adapters skipped, no adapter at all.

Deliveries go to ``memory`` adapters, so ``outbox()`` tells which adapter sent each message.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter

from dripdrop.engine.routing import sticky_pick
from dripdrop.testing import outbox

EMAIL = {"subject": "Hello {{ name }}", "body": "<p>Hi</p>", "from": "a@x.io"}


def _memory(dd, name: str, **kw):
    return dd.create_channel_adapter(name=name, channel="email", provider="memory", **kw)


def _adapters(dd):
    """A fallback default plus A1 and A2: a rotation that is ignored shows up as 'fallback'."""
    fallback = _memory(dd, "fallback", is_default=True)
    return fallback, _memory(dd, "A1", is_default=False), _memory(dd, "A2", is_default=False)


def _rotation(a1, a2, w1=70, w2=30) -> dict:
    return {
        "channel_rotation": {
            "email": [
                {"adapter_id": str(a1.id), "weight": w1},
                {"adapter_id": str(a2.id), "weight": w2},
            ]
        }
    }


def _enroll_many(dd, n: int, key: str = "s") -> int:
    return dd.enroll_many(
        key,
        [
            {
                "subscriber": {"type": "User", "id": i},
                "data": {"email": f"u{i}@x.io", "name": f"U{i}"},
            }
            for i in range(n)
        ],
    )


def _share(counts: Counter, name: str) -> float:
    return 100.0 * counts[name] / sum(counts.values())


def test_sticky_pick_follows_weights_over_10000_enrollments() -> None:
    """10,000 random enrollment ids split 70/30 within ±3 percentage points (the binomial
    standard deviation is 0.46 pp, so ±3 pp is over 6 sigma). A third weight is checked too."""
    rng = random.Random(20300107)
    a1, a2, a3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(10_000)]

    picks = Counter(sticky_pick([(a1, 70.0), (a2, 30.0)], e, "email") for e in ids)
    share = 100.0 * picks[0] / len(ids)
    assert abs(share - 70.0) <= 3.0, f"70/30 rotation gave {share:.2f}% / {100 - share:.2f}%"
    assert picks[0] + picks[1] == len(ids)

    three = Counter(sticky_pick([(a1, 50.0), (a2, 30.0), (a3, 20.0)], e, "email") for e in ids)
    for index, expected in enumerate((50.0, 30.0, 20.0)):
        got = 100.0 * three[index] / len(ids)
        assert abs(got - expected) <= 3.0, f"50/30/20 rotation: option {index} got {got:.2f}%"

    # The same enrollment always gets the same answer; the channel is part of the key.
    options = [(a1, 70.0), (a2, 30.0)]
    assert all(len({sticky_pick(options, e, "email") for _ in range(5)}) == 1 for e in ids[:200])
    same = sum(
        sticky_pick([(a1, 1.0), (a2, 1.0)], e, "email")
        == sticky_pick([(a1, 1.0), (a2, 1.0)], e, "sms")
        for e in ids[:2000]
    )
    assert 800 < same < 1200, "email and sms picks should be independent"


def test_weighted_version_rotation_through_run_due(dd, make_sequence) -> None:
    """400 enrollments through the engine follow 70/30 within ±10 pp (sd 2.3 pp, so > 4 sigma)."""
    _, a1, a2 = _adapters(dd)
    make_sequence([{"name": "a", "channel": "email", "config": EMAIL}], _rotation(a1, a2))
    assert _enroll_many(dd, 400) == 400
    summary = dd.run_due()
    sent = outbox("email")
    assert len(sent) == 400, summary
    counts = Counter(m.adapter for m in sent)
    assert set(counts) == {"A1", "A2"}, counts
    assert abs(_share(counts, "A1") - 70.0) <= 10.0, counts
    # The executions record which adapter sent them.
    enrollment = dd.get_enrollment("s", "User", "7")
    (ex,) = dd.list_executions(enrollment.id)
    assert ex.state == "sent"
    assert ex.response["adapter"] in ("A1", "A2")
    assert ex.response["provider"] == "memory"


def test_rotation_is_sticky_across_an_enrollments_steps(dd, make_sequence) -> None:
    """Every email step of one enrollment uses the same adapter (50/50 so both are used)."""
    _, a1, a2 = _adapters(dd)
    steps = [{"name": n, "channel": "email", "config": EMAIL} for n in ("a", "b", "c")]
    make_sequence(steps, _rotation(a1, a2, 50, 50))
    _enroll_many(dd, 40)
    dd.run_due()
    by_enrollment: dict[str, list[str]] = {}
    for m in outbox("email"):
        by_enrollment.setdefault(m.metadata["enrollment_id"], []).append(m.adapter)
    assert len(by_enrollment) == 40
    assert all(len(names) == 3 for names in by_enrollment.values())
    assert all(len(set(names)) == 1 for names in by_enrollment.values()), by_enrollment
    firsts = Counter(names[0] for names in by_enrollment.values())
    assert set(firsts) == {"A1", "A2"}, "with 40 enrollments at 50/50 both adapters are used"
    # And the engine's choice is the sticky_pick of the enrollment id.
    options = [(a1.id, 50.0), (a2.id, 50.0)]
    for enrollment_id, names in by_enrollment.items():
        expected = ("A1", "A2")[sticky_pick(options, uuid.UUID(enrollment_id), "email")]
        assert names[0] == expected


def test_step_rotation_overrides_version_rotation(dd, make_sequence) -> None:
    _, a1, a2 = _adapters(dd)
    config = {**EMAIL, "channel_adapter_rotation": [str(a2.id)]}
    make_sequence([{"name": "a", "channel": "email", "config": config}], _rotation(a1, a2, 99, 1))
    _enroll_many(dd, 30)
    dd.run_due()
    sent = outbox("email")
    assert len(sent) == 30
    assert Counter(m.adapter for m in sent) == {"A2": 30}
    # Engine settings are not message fields.
    assert "channel_adapter_rotation" not in sent[0].payload


def test_pinned_adapter_overrides_both_rotations(dd, make_sequence) -> None:
    _, a1, a2 = _adapters(dd)
    pinned = _memory(dd, "Pinned", is_default=False)
    config = {**EMAIL, "channel_adapter_rotation": [str(a2.id)]}
    step = {"name": "a", "channel": "email", "config": config, "channel_adapter_id": pinned.id}
    make_sequence([step], _rotation(a1, a2))
    _enroll_many(dd, 20)
    dd.run_due()
    assert Counter(m.adapter for m in outbox("email")) == {"Pinned": 20}


def test_inactive_adapters_are_skipped(dd, make_sequence) -> None:
    _, a1, a2 = _adapters(dd)
    make_sequence([{"name": "a", "channel": "email", "config": EMAIL}], _rotation(a1, a2, 90, 10))
    dd.deactivate_channel_adapter(a1.id)
    _enroll_many(dd, 30)
    dd.run_due()
    assert Counter(m.adapter for m in outbox("email")) == {"A2": 30}


def test_inactive_pinned_adapter_falls_back_to_rotation(dd, make_sequence) -> None:
    _, a1, a2 = _adapters(dd)
    pinned = _memory(dd, "Pinned", is_default=False)
    config = {**EMAIL, "channel_adapter_rotation": [str(a2.id)]}
    step = {"name": "a", "channel": "email", "config": config, "channel_adapter_id": pinned.id}
    make_sequence([step], _rotation(a1, a2))
    dd.deactivate_channel_adapter(pinned.id)
    _enroll_many(dd, 10)
    dd.run_due()
    assert Counter(m.adapter for m in outbox("email")) == {"A2": 10}


def test_whole_rotation_inactive_falls_back_to_the_default(dd, make_sequence) -> None:
    _, a1, a2 = _adapters(dd)
    make_sequence([{"name": "a", "channel": "email", "config": EMAIL}], _rotation(a1, a2))
    dd.deactivate_channel_adapter(a1.id)
    dd.deactivate_channel_adapter(a2.id)
    _enroll_many(dd, 10)
    dd.run_due()
    assert Counter(m.adapter for m in outbox("email")) == {"fallback": 10}


def test_no_adapter_at_all_fails_the_execution(dd, make_sequence) -> None:
    make_sequence([{"name": "a", "channel": "email", "config": EMAIL}])
    enrollment = dd.enroll("s", {"type": "User", "id": 1}, data={"email": "u@x.io"})
    dd.run_due()
    (ex,) = dd.list_executions(enrollment.id)
    assert ex.state == "failed"
    assert "no active email adapter for global" in ex.error_message
    assert ex.retry_count == 0
    assert outbox() == []


def test_only_inactive_adapters_fails_the_execution(dd, make_sequence) -> None:
    only = _memory(dd, "only")
    make_sequence([{"name": "a", "channel": "email", "config": EMAIL}])
    dd.deactivate_channel_adapter(only.id)
    enrollment = dd.enroll("s", {"type": "User", "id": 1}, data={"email": "u@x.io"})
    dd.run_due()
    (ex,) = dd.list_executions(enrollment.id)
    assert ex.state == "failed"
    assert "no active email adapter for global" in ex.error_message
