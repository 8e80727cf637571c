"""The fence re-checks suppressions: a suppression that commits while a claimed delivery waits
(here in a slow hook, after the claim's own check) stops it before the provider gets it — with
the claim's rules (tenant, category, global rows), in the fence's one query."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from suppression_fence_hooks import RELEASE, WAITING

from dripdrop import DripDrop
from dripdrop.testing import outbox

USER = {"type": "User", "id": 1}


def _sequence(dd: DripDrop, tenant_key: str | None = None) -> None:
    dd.create_channel_adapter(
        name="mem", channel="email", provider="memory", is_default=True, tenant_key=tenant_key
    )
    seq = dd.create_sequence(
        name="Fenced",
        key="fenced",
        category="marketing",
        hook_module="suppression_fence_hooks:Waiting",
        tenant_key=tenant_key,
    )
    v = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(v.id, name="held", channel="email", config={"subject": "{{ go }}", "body": "b"})
    dd.create_step(v.id, name="next", channel="email", config={"subject": "next", "body": "b"})


def _suppressed_while_waiting(
    dd: DripDrop, tenant_key: str | None, suppression: dict[str, Any]
) -> Any:
    """Enroll, let run_due claim the first step and wait in its hook, suppress, release."""
    _sequence(dd, tenant_key)
    e = dd.enroll("fenced", USER, data={"email": "Ada@Example.com"}, tenant_key=tenant_key)
    RELEASE.clear()
    WAITING.clear()
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(s=dd.run_due()), daemon=True)
    thread.start()
    try:
        assert WAITING.wait(10), "the delivery never reached its hook"
        dd.suppress("email", "ada@example.com", **suppression)
    finally:
        RELEASE.set()
    thread.join(20)
    assert not thread.is_alive()
    return e


@pytest.mark.parametrize(
    ("suppression", "stopped"),
    [
        ({}, True),  # global, every category
        ({"reason": "unsubscribe", "category": "marketing"}, True),
        ({"reason": "complaint", "tenant_key": "acme"}, True),
        ({"reason": "unsubscribe", "category": "product"}, False),  # another category
        ({"tenant_key": "other"}, False),  # another tenant
    ],
    ids=["global", "category", "tenant", "other-category", "other-tenant"],
)
def test_a_suppression_committed_while_a_delivery_waits_stops_it(
    dd: DripDrop, suppression: dict[str, Any], stopped: bool
) -> None:
    e = _suppressed_while_waiting(dd, "acme", suppression)
    first, second = sorted(dd.list_executions(e.id), key=lambda x: x.inserted_at)
    if not stopped:
        assert first.state == second.state == "sent"
        assert [m.payload["subject"] for m in outbox()] == ["go", "next"]
        return
    reason = suppression.get("reason", "manual")
    assert outbox() == [], "a message reached the provider after the suppression committed"
    assert first.state == "skipped"
    assert first.error_message == f"suppressed: {reason}"
    assert first.recipient == "ada@example.com"
    # The enrollment goes on, as after any suppressed step (the next one is checked at its claim).
    assert second.state == "skipped" and second.error_message == f"suppressed: {reason}"
    assert dd.get_enrollment_by_id(e.id).state == "completed"
