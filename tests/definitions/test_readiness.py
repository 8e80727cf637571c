"""check_version lists what would make a version's sends fail; activate_version refuses such a
version unless force=True; the worker logs the problems of active versions when it starts. The
seed's order — version created active, then steps, then adapters — keeps working (issue 11)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from dripdrop import ValidationError

EMAIL = {"subject": "Hi", "body": "Hello {{ name }}"}


def _version(dd, key: str = "ready", tenant_key: str | None = None, active: bool = False) -> Any:
    seq = dd.create_sequence(name=key.title(), key=key, tenant_key=tenant_key)
    return dd.create_sequence_version(seq.id, active=active)


def _messages(problems: list[Any]) -> list[tuple[str, str, str]]:
    return [(p.step_key, p.field, p.message) for p in problems]


def test_the_seeds_order_works_and_check_version_tells_what_is_missing(dd) -> None:
    version = _version(dd, active=True)  # created active, before its steps and adapters
    dd.create_step(version.id, name="Welcome", channel="email", config=EMAIL)
    dd.create_step(version.id, name="Inbox", channel="pubsub", config={"topic": "u", "event": "e"})
    dd.create_step(version.id, name="CRM", channel="webhook", config={"url": "https://x.io/h"})
    problems = dd.check_version(version.id)
    assert [(p.step_key, p.field) for p in problems] == [
        ("welcome", "channel"),
        ("inbox", "channel"),
        ("crm", "channel"),
    ]
    email, pubsub, webhook = (p.message for p in problems)
    assert email.startswith("no active email adapter for global: create one with")
    assert "mailgun" in email and "smtp" in email
    assert "create_channel_adapter(name=..., channel='pubsub', provider='postgres')" in pubsub
    assert "create_channel_adapter(name=..., channel='webhook', provider='http')" in webhook
    assert str(problems[0]).startswith("step 'welcome': channel: no active email adapter")
    dd.create_channel_adapter(name="Mem", channel="email", provider="memory")
    dd.create_channel_adapter(name="Inbox", channel="pubsub", provider="postgres")
    dd.create_channel_adapter(name="Hooks", channel="webhook", provider="memory")
    assert dd.check_version(version.id) == []


def test_an_email_step_without_a_sender_is_reported(dd) -> None:
    version = _version(dd)
    step = dd.create_step(version.id, name="Welcome", channel="email", config=EMAIL)
    dd.create_channel_adapter(
        name="Mailgun",
        channel="email",
        provider="mailgun",
        credentials={"api_key": "key-1"},
        config={"domain": "mg.example.com"},
    )
    (problem,) = dd.check_version(version.id)
    assert (problem.step_key, problem.field) == ("welcome", "config.from")
    assert "adapter 'Mailgun'" in problem.message
    dd.update_step(step.id, config={**EMAIL, "from": "Acme <hi@example.com>"})
    assert dd.check_version(version.id) == []


def test_a_pinned_adapter_of_another_tenant_is_named_as_such(dd) -> None:
    global_adapter = dd.create_channel_adapter(name="Global", channel="sms", provider="memory")
    version = _version(dd, tenant_key="acme")
    dd.create_step(
        version.id,
        name="Text",
        channel="sms",
        config={"body": "Hi"},
        channel_adapter_id=global_adapter.id,
    )
    (problem,) = dd.check_version(version.id)
    assert problem.field == "channel_adapter_id"
    assert "its pinned adapter 'Global' belongs to global, this version to tenant 'acme'" in (
        problem.message
    )
    # At send time too, the message says it is not the tenant's adapter.
    dd.activate_version(version.id, force=True)
    enrollment = dd.enroll(
        "ready", {"type": "User", "id": 1}, data={"phone": "+15550100001"}, tenant_key="acme"
    )
    dd.run_due()
    (execution,) = dd.list_executions(enrollment.id)
    assert execution.state == "failed"
    assert "is not an adapter of tenant 'acme'" in execution.error_message


def test_an_active_adapter_that_is_not_the_default_is_pointed_at(dd) -> None:
    version = _version(dd)
    dd.create_step(version.id, name="Text", channel="sms", config={"body": "Hi"})
    dd.create_channel_adapter(name="Twilio", channel="sms", provider="memory", is_default=False)
    (problem,) = dd.check_version(version.id)
    assert "no sms adapter of global is the default (active: 'Twilio')" in problem.message


def test_a_template_module_that_cannot_be_loaded_is_reported(dd) -> None:
    version = _version(dd)
    dd.create_channel_adapter(name="Mem", channel="email", provider="memory")
    dd.create_step(
        version.id,
        name="Mod",
        channel="email",
        template_type="module",
        template_module="no_such_module_here",
        template_function="render",
    )
    (problem,) = dd.check_version(version.id)
    assert problem.field == "template_module"
    assert "ModuleNotFoundError" in problem.message


def test_activate_refuses_a_version_that_cannot_deliver_unless_forced(dd) -> None:
    version = _version(dd)
    dd.create_step(version.id, name="Inbox", channel="pubsub", config={"topic": "t"})
    with pytest.raises(ValidationError) as info:
        dd.activate_version(version.id)
    assert list(info.value.errors) == ["steps.inbox.channel"]
    assert "force=True" in str(info.value) and "provider='postgres'" in str(info.value)
    assert dd.get_active_version(version.sequence_id) is None
    assert dd.activate_version(version.id, force=True).active is True
    with pytest.raises(ValidationError) as info:
        dd.activate_version(version.id, force="yes")
    assert list(info.value.errors) == ["force"]


def test_inactive_steps_are_not_checked(dd) -> None:
    version = _version(dd)
    dd.create_step(version.id, name="Inbox", channel="pubsub", config={"topic": "t"}, active=False)
    assert dd.check_version(version.id) == []
    assert dd.activate_version(version.id).active is True


def test_check_version_names_its_argument(dd) -> None:
    with pytest.raises(ValidationError) as info:
        dd.check_version("not-a-uuid")
    assert list(info.value.errors) == ["version_id"]


def test_the_worker_logs_the_problems_of_active_versions_at_start(dd, caplog) -> None:
    version = _version(dd, active=True)
    dd.create_step(version.id, name="Inbox", channel="pubsub", config={"topic": "t"})
    stop = threading.Event()
    stop.set()
    with caplog.at_level(logging.WARNING, logger="dripdrop.readiness"):
        dd.run_worker(stop_event=stop, handle_signals=False)
    (record,) = [r for r in caplog.records if r.name == "dripdrop.readiness"]
    assert "sequence ready v1: step 'inbox': channel: no active pubsub adapter" in (
        record.getMessage()
    )


async def test_the_async_face_checks_too(env, database_url) -> None:
    from dripdrop import AsyncDripDrop

    dd = env.dd
    version = _version(dd)
    dd.create_step(version.id, name="Inbox", channel="pubsub", config={"topic": "t"})
    key = dd.runtime._key_source
    add = AsyncDripDrop(database_url, schema=dd.schema, clock=env.clock, encryption_key=key)
    try:
        (problem,) = await add.check_version(version.id)
        assert problem.step_key == "inbox"
        with pytest.raises(ValidationError):
            await add.activate_version(version.id)
    finally:
        await add.close()
