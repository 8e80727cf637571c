"""Tenants: the same keys live side by side and lookups never mix them."""

from __future__ import annotations

import pytest
from defs_support import errors_of

from dripdrop.errors import NotFound


def test_same_sequence_key_in_two_tenants_and_global(dd) -> None:
    glob = dd.create_sequence(name="Global", key="onboarding")
    a = dd.create_sequence(name="Tenant A", key="onboarding", tenant_key="a")
    b = dd.create_sequence(name="Tenant B", key="onboarding", tenant_key="b")
    assert dd.get_sequence("onboarding").id == glob.id
    assert dd.get_sequence("onboarding", tenant_key="a").id == a.id
    assert dd.get_sequence("onboarding", tenant_key="b").id == b.id
    assert [s.id for s in dd.list_sequences()] == [glob.id]
    assert [s.id for s in dd.list_sequences(tenant_key="a")] == [a.id]
    assert [s.id for s in dd.list_sequences(tenant_key="b")] == [b.id]
    assert set(
        errors_of(lambda: dd.create_sequence(name="Again", key="onboarding", tenant_key="a"))
    ) == {"key"}


def test_a_tenant_does_not_find_another_tenants_sequence(dd) -> None:
    dd.create_sequence(name="Only A", key="only_a", tenant_key="a")
    with pytest.raises(NotFound):
        dd.get_sequence("only_a", tenant_key="b")
    with pytest.raises(NotFound):
        dd.get_sequence("only_a")
    assert dd.list_sequences(tenant_key="b") == []


def test_versions_and_steps_inherit_the_tenant(dd) -> None:
    seq = dd.create_sequence(name="A", key="s", tenant_key="a")
    version = dd.create_sequence_version(seq.id)
    step = dd.create_step(version.id, name="Hello", channel="email")
    cond = dd.create_condition(step.id, field_path="plan", expected_value="pro")
    assert (version.tenant_key, step.tenant_key, cond.tenant_key) == ("a", "a", "a")


def test_default_adapters_are_per_tenant(dd) -> None:
    glob = dd.create_channel_adapter(name="Global", channel="email", provider="memory")
    a = dd.create_channel_adapter(name="A", channel="email", provider="memory", tenant_key="a")
    b = dd.create_channel_adapter(name="B", channel="email", provider="memory", tenant_key="b")
    assert glob.is_default and a.is_default and b.is_default
    a2 = dd.create_channel_adapter(
        name="A2", channel="email", provider="console", tenant_key="a", is_default=True
    )
    assert dd.get_default_adapter("email").id == glob.id
    assert dd.get_default_adapter("email", tenant_key="a").id == a2.id
    assert dd.get_default_adapter("email", tenant_key="b").id == b.id
    assert dd.get_default_adapter("email", tenant_key="c") is None
    assert [x.id for x in dd.list_channel_adapters(tenant_key="a")] == [a.id, a2.id]
    assert [x.id for x in dd.list_channel_adapters()] == [glob.id]


def test_adapter_names_are_unique_per_tenant(dd) -> None:
    dd.create_channel_adapter(name="Mem", channel="email", provider="memory")
    dd.create_channel_adapter(name="Mem", channel="email", provider="memory", tenant_key="a")
    assert set(
        errors_of(
            lambda: dd.create_channel_adapter(
                name="Mem", channel="sms", provider="memory", tenant_key="a"
            )
        )
    ) == {"name"}
