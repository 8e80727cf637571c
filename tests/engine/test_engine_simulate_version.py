"""simulate(version_id=...): the timeline of any version of a sequence (a draft, an older one),
without changing which version is active or anything else."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from dripdrop import AsyncDripDrop
from dripdrop.errors import NotFound, ValidationError
from dripdrop.testing import outbox


def _draft(dd, flow):
    """The flow's active version sends "welcome"; a draft sends "hello" then, a day later,
    "tips" by SMS."""
    flow.step("welcome")
    draft = dd.create_sequence_version(flow.seq.id)
    dd.create_step(draft.id, name="hello", channel="email", config={"subject": "s", "body": "b"})
    dd.create_step(
        draft.id,
        name="tips",
        channel="sms",
        timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"},
        config={"body": "tips"},
    )
    return draft


def test_simulate_a_draft_differs_from_the_active_version(dd, flow):
    draft = _draft(dd, flow)
    data = {"email": "a@x.io", "phone": "+15550000000"}
    active = dd.simulate("flow", data=data, until=timedelta(days=3))
    assert active.steps() == ["welcome"]
    for vid in (draft.id, str(draft.id)):
        planned = dd.simulate("flow", data=data, until=timedelta(days=3), version_id=vid)
        assert [(e.step_key, e.channel, e.kind) for e in planned if e.step_key] == [
            ("hello", "email", "sent"),
            ("tips", "sms", "sent"),
        ]
        assert planned.entries[1].at - planned.entries[0].at == timedelta(days=1)
        assert planned.final_state == "completed"
    # The active version named explicitly is the same as no version at all.
    same = dd.simulate("flow", data=data, until=timedelta(days=3), version_id=flow.version.id)
    assert same.steps() == active.steps()
    # Nothing changed: the draft is still a draft, nothing was sent or kept.
    assert dd.get_active_version(flow.seq.id).id == flow.version.id
    assert [v.active for v in dd.list_versions(flow.seq.id)] == [True, False]
    assert outbox() == [] and dd.list_active_enrollments("flow") == []
    # Real enrollments still start on the active version.
    e = flow.enroll()
    assert e.sequence_version_id == flow.version.id


def test_simulate_a_version_of_an_archived_sequence(dd, flow):
    draft = _draft(dd, flow)
    dd.update_sequence(flow.seq.id, active=False)
    with pytest.raises(ValidationError) as refused:
        dd.simulate("flow", data={"email": "a@x.io"})
    assert "sequence_key" in refused.value.errors
    planned = dd.simulate("flow", data={"email": "a@x.io", "phone": "+1555"}, version_id=draft.id)
    assert planned.steps() == ["hello", "tips"]
    assert dd.get_sequence("flow").active is False


def test_a_wrong_version_is_refused_naming_version_id(dd, flow):
    flow.step("welcome")
    other = dd.create_sequence(name="Other", key="other")
    foreign = dd.create_sequence_version(other.id)
    with pytest.raises(ValidationError) as wrong:
        dd.simulate("flow", version_id=foreign.id)
    assert list(wrong.value.errors) == ["version_id"]
    assert "not a version of sequence 'flow'" in wrong.value.errors["version_id"][0]
    with pytest.raises(NotFound, match="version_id"):
        dd.simulate("flow", version_id=uuid.uuid4())
    for bad in ("v2", 7, ["x"]):
        with pytest.raises(ValidationError) as malformed:
            dd.simulate("flow", version_id=bad)
        assert list(malformed.value.errors) == ["version_id"]
    # A tenant's sequence of the same key is another sequence: its versions are refused too.
    theirs = dd.create_sequence(name="Flow", key="flow", tenant_key="acme")
    their_version = dd.create_sequence_version(theirs.id, active=True)
    with pytest.raises(ValidationError) as tenant:
        dd.simulate("flow", version_id=their_version.id)
    assert list(tenant.value.errors) == ["version_id"]
    assert dd.simulate("flow", version_id=their_version.id, tenant_key="acme").steps() == []


def test_async_facade_simulates_a_version(env, dd, flow):
    draft = _draft(dd, flow)

    async def main() -> list[str]:
        add = AsyncDripDrop(dd.runtime.database_url, schema=env.schema, clock=env.clock)
        try:
            timeline = await add.simulate(
                "flow", data={"email": "a@x.io", "phone": "+1555"}, version_id=draft.id
            )
        finally:
            await add.close()
        return timeline.steps()

    assert asyncio.run(main()) == ["hello", "tips"]
