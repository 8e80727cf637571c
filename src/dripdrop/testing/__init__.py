"""Helpers for testing sequences with time travel: a fake clock, the memory outbox and a pytest
fixture.

    from dripdrop.testing import FakeClock, outbox

    clock = FakeClock()
    dd = DripDrop(clock=clock)
    dd.enroll("onboarding", {"type": "User", "id": 1}, data={"email": "ada@example.com"})
    clock.advance(days=3)
    dd.run_due()
    assert [m.payload["subject"] for m in outbox("email")] == ["Welcome", "Day 3 tips"]

With pytest, the ``dripdrop_env`` fixture (from this package's pytest plugin) gives a DripDrop on
a fresh schema with a fake clock, and clears the outbox between tests.
"""

from dripdrop.testing.clock import FakeClock
from dripdrop.testing.env import TestEnv, clear_outbox, outbox

__all__ = ["FakeClock", "TestEnv", "clear_outbox", "outbox"]
