"""simulate() follows every path: a split's assignment, a goal hit, recurring sends, digests."""

from __future__ import annotations

from datetime import timedelta

from flow_support import Flow


def test_simulate_shows_splits_goals_recurring_sends_and_digests(dd):
    dd.create_channel_adapter(name="mem", channel="email", provider="memory")
    flow = Flow(dd, "sim", config={"goal": {"event_key": "bought", "continue": True}})
    flow.step(
        "weekly",
        timing={"type": "cron", "cron_expression": "0 9 * * MON", "timezone": "Europe/Paris"},
        config={"subject": "weekly", "body": "b", "repeat": {"times": 3}},
    )
    flow.step(
        "ab",
        channel="split",
        config={
            "split": {
                "branches": [
                    {"name": "A", "weight": 1, "to": "a"},
                    {"name": "B", "weight": 1, "to": "b"},
                ]
            }
        },
    )
    a = flow.step("a")
    flow.step("b")
    flow.edge(
        a,
        flow.step(
            "digest",
            config={
                "subject": "{{ events | size }} comments",
                "body": "b",
                "digest": {"event_key": "comment", "window_amount": 2, "window_unit": "days"},
            },
        ),
    )
    timeline = dd.simulate(
        "sim",
        data={"email": "s@x.io"},
        events=[
            (timedelta(hours=1), "comment", {}),
            (timedelta(hours=2), "comment", {}),
            (timedelta(days=10), "bought", {}),
        ],
        until=timedelta(days=30),
    )
    split = next(e for e in timeline if e.step_key == "ab")
    assert split.branch in ("A", "B") and f"branch {split.branch!r}" in split.next
    weekly = [e for e in timeline if e.step_key == "weekly" and e.kind == "sent"]
    assert [e.occurrence for e in weekly] == [1, 2, 3]
    goal = [e for e in timeline if e.kind == "goal"]
    assert len(goal) == 1 and "goes on" in goal[0].detail
    assert timeline.final_state == "completed"
    if split.branch == "A":
        digest = next(e for e in timeline if e.step_key == "digest")
        assert digest.kind == "sent" and digest.payload["subject"] == "2 comments"
    # Nothing was kept: the simulation rolled back.
    assert dd.list_active_enrollments("sim") == []
