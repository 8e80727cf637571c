"""Definition defaults, versions, updates, deletes, lookups and the records returned."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from defs_support import errors_of

from dripdrop.errors import NotFound


def test_step_key_is_derived_from_the_name(dd, version) -> None:
    step = dd.create_step(version.id, name="Welcome Email — Day 1!", channel="email")
    assert step.key == "welcome_email_day_1"
    explicit = dd.create_step(version.id, name="Welcome Email", key="hello", channel="email")
    assert explicit.key == "hello"


def test_position_appends_and_list_steps_follows_position(dd, version) -> None:
    first = dd.create_step(version.id, name="First", channel="email")
    second = dd.create_step(version.id, name="Second", channel="sms")
    early = dd.create_step(version.id, name="Early", channel="email", position=0)
    third = dd.create_step(version.id, name="Third", channel="email")
    assert (first.position, second.position, early.position, third.position) == (1, 2, 0, 3)
    assert [s.key for s in dd.list_steps(version.id)] == ["early", "first", "second", "third"]


def test_timing_defaults_to_immediate(dd, version) -> None:
    assert dd.create_step(version.id, name="Now", channel="email").timing == {"type": "immediate"}
    assert dd.create_step(version.id, name="Also now", channel="email", timing={}).timing == {
        "type": "immediate"
    }


def test_human_delay_phrase_becomes_a_delay(dd, version) -> None:
    step = dd.create_step(
        version.id, name="Later", channel="email", timing={"human_expression": "in 3 days"}
    )
    assert step.timing["type"] == "delay"
    assert (step.timing["delay_amount"], step.timing["delay_unit"]) == (3, "days")
    assert step.timing["relative_to"] == "enrollment_start"
    assert dd.get_step(step.id).timing == step.timing  # stored normalised


def test_condition_with_only_http_hook_id_is_a_hook_condition(dd, version, step) -> None:
    hook = dd.create_http_hook(
        version.sequence_id, name="Score", key="score", url="https://example.com/score"
    )
    cond = dd.create_condition(step.id, http_hook_id=hook.id)
    assert cond.condition_type == "hook"
    assert cond.http_hook_id == hook.id
    plain = dd.create_condition(step.id, field_path="plan", expected_value="pro")
    assert plain.condition_type == "enrollment_data"
    assert [c.id for c in dd.list_conditions(step.id)] == [cond.id, plain.id]


def test_condition_expected_values_are_stored_as_text(dd, step) -> None:
    assert (
        dd.create_condition(step.id, field_path="n", operator="gt", expected_value=5).expected_value
        == "5"
    )
    assert (
        dd.create_condition(step.id, field_path="ok", expected_value=True).expected_value == "true"
    )
    assert (
        dd.create_condition(
            step.id, field_path="plan", operator="in", expected_value=["a", "b"]
        ).expected_value
        == '["a", "b"]'
    )


def test_new_version_defaults_to_next_number_and_is_a_draft(dd) -> None:
    seq = dd.create_sequence(name="S", key="s")
    v1 = dd.create_sequence_version(seq.id)
    v2 = dd.create_sequence_version(seq.id)
    v7 = dd.create_sequence_version(seq.id, version=7)
    v8 = dd.create_sequence_version(seq.id)
    assert [v.version for v in (v1, v2, v7, v8)] == [1, 2, 7, 8]
    assert not any(v.active for v in (v1, v2, v7, v8))
    assert dd.get_active_version(seq.id) is None


def test_activate_version_deactivates_the_others(dd) -> None:
    seq = dd.create_sequence(name="S", key="s")
    v1 = dd.create_sequence_version(seq.id, active=True)
    v2 = dd.create_sequence_version(seq.id)
    assert dd.get_active_version(seq.id).id == v1.id
    assert dd.activate_version(v2.id).active is True
    assert [(v.version, v.active) for v in dd.list_versions(seq.id)] == [(1, False), (2, True)]
    v3 = dd.create_sequence_version(seq.id, active=True)
    assert [v.active for v in dd.list_versions(seq.id)] == [False, False, True]
    assert dd.get_active_version(seq.id).id == v3.id
    assert dd.deactivate_version(v3.id).active is False
    assert dd.get_active_version(seq.id) is None


def test_activation_is_per_sequence(dd) -> None:
    a = dd.create_sequence(name="A", key="a")
    b = dd.create_sequence(name="B", key="b")
    va = dd.create_sequence_version(a.id, active=True)
    dd.create_sequence_version(b.id, active=True)
    assert dd.get_active_version(a.id).id == va.id


def test_update_sequence(dd) -> None:
    seq = dd.create_sequence(name="Old", key="s")
    updated = dd.update_sequence(
        seq.id, name="New", description="d", active=False, metadata={"team": "growth"}
    )
    assert (updated.name, updated.description, updated.active) == ("New", "d", False)
    assert updated.metadata == {"team": "growth"}
    assert dd.get_sequence("s").name == "New"
    assert set(errors_of(lambda: dd.update_sequence(seq.id, key="other"))) == {"key"}
    assert set(errors_of(lambda: dd.update_sequence(seq.id, name=" "))) == {"name"}
    assert set(errors_of(lambda: dd.update_sequence(seq.id, metadata=["x"]))) == {"metadata"}
    assert dd.update_sequence(seq.id, metadata=None).metadata == {}
    assert dd.list_sequences(active=True) == []


def test_update_step_revalidates_and_changes(dd, step) -> None:
    errors = errors_of(lambda: dd.update_step(step.id, timing={"type": "soon"}))
    assert set(errors) == {"timing.type"}
    errors = errors_of(lambda: dd.update_step(step.id, channel="fax"))
    assert set(errors) == {"channel"}
    errors = errors_of(lambda: dd.update_step(step.id, config={"subject": "{{ oops"}))
    assert set(errors) == {"config.subject"}
    assert set(errors_of(lambda: dd.update_step(step.id, key="new"))) == {"key"}
    assert dd.get_step(step.id) == step  # nothing changed by the failed updates
    changed = dd.update_step(step.id, name="Renamed", timing={"human_expression": "in 2 hours"})
    assert changed.name == "Renamed"
    assert (changed.timing["type"], changed.timing["delay_amount"]) == ("delay", 2)
    assert dd.get_step(step.id).timing == changed.timing


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"name": ""}, {"name"}),
        ({"name": None}, {"name"}),
        ({"position": -1}, {"position"}),
        ({"position": "2"}, {"position"}),
        ({"position": None}, {"position"}),
        ({"name": " ", "channel": "fax"}, {"name", "channel"}),
    ],
)
def test_update_step_revalidates_name_and_position(dd, step, changes, fields) -> None:
    assert set(errors_of(lambda: dd.update_step(step.id, **changes))) == fields
    assert dd.get_step(step.id) == step
    assert dd.update_step(step.id, position=5).position == 5


def test_update_step_checks_the_pinned_adapter_against_the_new_channel(dd, version) -> None:
    mail = dd.create_channel_adapter(name="Mail", channel="email", provider="memory")
    step = dd.create_step(version.id, name="S", channel="email", channel_adapter_id=mail.id)
    assert set(errors_of(lambda: dd.update_step(step.id, channel="sms"))) == {"channel_adapter_id"}


def test_deactivate_and_delete_step(dd, version, step) -> None:
    cond = dd.create_condition(step.id, field_path="plan", expected_value="pro")
    assert dd.deactivate_step(step.id).active is False
    assert dd.get_step(step.id).active is False
    dd.delete_step(step.id)
    with pytest.raises(NotFound):
        dd.get_step(step.id)
    assert dd.list_conditions(step.id) == []
    with pytest.raises(NotFound):
        dd.update_condition(cond.id, operator="neq")


def test_delete_condition(dd, step) -> None:
    keep = dd.create_condition(step.id, field_path="a", expected_value="1")
    gone = dd.create_condition(step.id, field_path="b", expected_value="2")
    dd.delete_condition(gone.id)
    assert [c.id for c in dd.list_conditions(step.id)] == [keep.id]
    with pytest.raises(NotFound):
        dd.delete_condition(gone.id)


def test_delete_sequence_cascades(dd, version, step) -> None:
    seq_id = version.sequence_id
    cond = dd.create_condition(step.id, field_path="a", expected_value="1")
    hook = dd.create_http_hook(seq_id, name="Score", key="score", url="https://example.com")
    other = dd.create_sequence(name="Other", key="other")
    other_version = dd.create_sequence_version(other.id)
    other_step = dd.create_step(other_version.id, name="Stays", channel="email")
    dd.delete_sequence(seq_id)
    with pytest.raises(NotFound):
        dd.get_sequence("onboarding")
    with pytest.raises(NotFound):
        dd.get_step(step.id)
    with pytest.raises(NotFound):
        dd.get_http_hook(hook.id)
    with pytest.raises(NotFound):
        dd.update_condition(cond.id, operator="neq")
    assert dd.list_versions(seq_id) == []
    assert dd.get_step(other_step.id).id == other_step.id


def test_deleting_a_pinned_adapter_unpins_the_step(dd, version) -> None:
    mail = dd.create_channel_adapter(name="Mail", channel="email", provider="memory")
    step = dd.create_step(version.id, name="S", channel="email", channel_adapter_id=mail.id)
    dd.delete_channel_adapter(mail.id)
    assert dd.get_step(step.id).channel_adapter_id is None


@pytest.mark.parametrize(
    "call",
    [
        lambda dd: dd.get_sequence("missing"),
        lambda dd: dd.update_sequence(uuid.uuid4(), name="x"),
        lambda dd: dd.delete_sequence(uuid.uuid4()),
        lambda dd: dd.create_sequence_version(uuid.uuid4()),
        lambda dd: dd.activate_version(uuid.uuid4()),
        lambda dd: dd.deactivate_version(uuid.uuid4()),
        lambda dd: dd.update_sequence_version(uuid.uuid4(), name="x"),
        lambda dd: dd.create_step(uuid.uuid4(), name="x", channel="email"),
        lambda dd: dd.get_step(uuid.uuid4()),
        lambda dd: dd.update_step(uuid.uuid4(), name="x"),
        lambda dd: dd.delete_step(uuid.uuid4()),
        lambda dd: dd.create_condition(uuid.uuid4(), field_path="a"),
        lambda dd: dd.update_condition(uuid.uuid4(), operator="eq"),
        lambda dd: dd.delete_condition(uuid.uuid4()),
        lambda dd: dd.get_channel_adapter(uuid.uuid4()),
        lambda dd: dd.update_channel_adapter(uuid.uuid4(), name="x"),
        lambda dd: dd.deactivate_channel_adapter(uuid.uuid4()),
        lambda dd: dd.delete_channel_adapter(uuid.uuid4()),
        lambda dd: dd.create_http_hook(uuid.uuid4(), name="h", key="h", url="https://x.test"),
        lambda dd: dd.get_http_hook(uuid.uuid4()),
        lambda dd: dd.delete_http_hook(uuid.uuid4()),
    ],
)
def test_unknown_ids_and_keys_raise_not_found(dd, call) -> None:
    with pytest.raises(NotFound):
        call(dd)


def test_malformed_ids_raise_validation_errors(dd) -> None:
    assert set(errors_of(lambda: dd.get_step("not-a-uuid"))) == {"step_id"}
    assert set(errors_of(lambda: dd.list_steps("not-a-uuid"))) == {"version_id"}
    assert set(errors_of(lambda: dd.list_versions("not-a-uuid"))) == {"sequence_id"}
    assert set(errors_of(lambda: dd.get_active_version("not-a-uuid"))) == {"sequence_id"}


def test_records_are_frozen(dd, version, step) -> None:
    seq = dd.get_sequence("onboarding")
    adapter = dd.create_channel_adapter(name="Mem", channel="email", provider="memory")
    hook = dd.create_http_hook(seq.id, name="H", key="h", url="https://example.com")
    cond = dd.create_condition(step.id, field_path="a", expected_value="1")
    for record, field in [
        (seq, "name"),
        (version, "active"),
        (step, "channel"),
        (cond, "operator"),
        (adapter, "is_default"),
        (hook, "url"),
    ]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, field, "changed")
    assert dd.get_sequence("onboarding").name == "Onboarding"


def test_sequence_version_update(dd, version) -> None:
    renamed = dd.update_sequence_version(
        version.id, name="Spring", config={"exit_events": ["unsubscribed"]}
    )
    assert renamed.name == "Spring"
    assert renamed.config == {"exit_events": ["unsubscribed"]}
    errors = errors_of(lambda: dd.update_sequence_version(version.id, config={"exit_events": [1]}))
    assert set(errors) == {"config.exit_events"}
