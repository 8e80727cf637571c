"""Unknown keys are refused with a "did you mean" suggestion (issue 11): step configs, adapter
credentials and configs, timings, version configs and condition configs. ``metadata`` is the
escape hatch for the user's own fields."""

from __future__ import annotations

from typing import Any

import pytest

from dripdrop import ValidationError
from dripdrop.channels import DeliveryResult
from dripdrop.channels.base import Fields, ProviderSpec
from dripdrop.channels.registry import register
from dripdrop.testing import outbox


def errors_of(call: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        call()
    return info.value.errors


@pytest.fixture
def version(dd) -> Any:
    seq = dd.create_sequence(name="Keys", key="keys")
    return dd.create_sequence_version(seq.id, active=True)


@pytest.mark.parametrize(
    ("channel", "typo", "meant"),
    [
        ("email", "subjet", "subject"),
        ("email", "bdy", "body"),
        ("email", "frm", "from"),
        ("sms", "bodyy", "body"),
        ("webhook", "metod", "method"),
        ("pubsub", "topik", "topic"),
        ("telegram", "chatid", "chat_id"),
        ("email", "max_retry", "max_retries"),
        ("email", "metdata", "metadata"),
    ],
)
def test_a_misspelt_step_field_is_refused_with_a_suggestion(
    dd, version, channel: str, typo: str, meant: str
) -> None:
    config = {"payload" if channel == "pubsub" else "body": "Hi", typo: "x"}
    errors = errors_of(lambda: dd.create_step(version.id, name="S", channel=channel, config=config))
    assert list(errors) == [f"config.{typo}"]
    assert f"did you mean {meant!r}?" in errors[f"config.{typo}"][0]
    assert dd.list_steps(version.id) == []


def test_a_far_off_step_field_lists_what_the_channel_accepts(dd, version) -> None:
    errors = errors_of(
        lambda: dd.create_step(
            version.id, name="S", channel="sms", config={"body": "Hi", "goto": "step3"}
        )
    )
    message = errors["config.goto"][0]
    assert message.startswith("unknown field; expected one of body, channel_adapter_rotation")
    assert "to" in message and "put your own fields under 'metadata'" in message


def test_metadata_holds_the_users_own_fields_and_reaches_the_provider(dd, env, version) -> None:
    dd.create_channel_adapter(name="Mem", channel="email", provider="memory")
    dd.create_step(
        version.id,
        name="Hello",
        channel="email",
        config={"subject": "Hi", "body": "B", "metadata": {"campaign": "{{ plan }}"}},
    )
    dd.enroll("keys", {"type": "User", "id": 1}, data={"email": "a@example.com", "plan": "pro"})
    dd.run_due()
    (sent,) = outbox()
    assert sent.payload["metadata"] == {"campaign": "pro"}
    errors = errors_of(
        lambda: dd.create_step(
            version.id, name="Bad", channel="email", config={"body": "B", "metadata": "x"}
        )
    )
    assert errors == {"config.metadata": ["must be a dict of your own fields"]}


def test_update_checks_a_changed_config_but_spares_a_stored_one(dd, env, version) -> None:
    step = dd.create_step(version.id, name="S", channel="email", config={"body": "B"})
    errors = errors_of(lambda: dd.update_step(step.id, config={"body": "B", "subjet": "x"}))
    assert list(errors) == ["config.subjet"]
    # A config stored before keys were checked still lets the step be switched off.
    from sqlalchemy import text

    with env.dd.runtime.engine.begin() as conn:
        conn.execute(text(f'UPDATE "{dd.schema}".steps SET config = \'{{"body": "B", "old": 1}}\''))
    assert dd.update_step(step.id, active=False).active is False


def test_a_provider_registered_by_an_app_widens_its_channel(dd, version) -> None:
    class Sender:
        async def send(self, message: Any, adapter: Any, ctx: Any) -> DeliveryResult:
            return DeliveryResult()

    errors = errors_of(
        lambda: dd.create_step(
            version.id, name="S", channel="sms", config={"body": "B", "media_url": "u"}
        )
    )
    assert list(errors) == ["config.media_url"]
    register(ProviderSpec("sms", "mms_test", Fields, Fields, Sender, step_fields=("media_url",)))
    step = dd.create_step(
        version.id, name="S", channel="sms", config={"body": "B", "media_url": "u"}
    )
    assert step.config["media_url"] == "u"


def test_adapter_credentials_and_config_refuse_unknown_keys(dd) -> None:
    errors = errors_of(
        lambda: dd.create_channel_adapter(
            name="Mailgun",
            channel="email",
            provider="mailgun",
            credentials={"api_key": "key-1", "api_kye": "key-2"},
            config={"domain": "mg.example.com", "frm": "a@example.com"},
        )
    )
    assert errors == {
        "credentials.api_kye": ["unknown field; did you mean 'api_key'?"],
        "config.frm": ["unknown field; did you mean 'from'?"],
    }
    errors = errors_of(
        lambda: dd.create_channel_adapter(
            name="Twilio",
            channel="sms",
            provider="twilio",
            credentials={"account_sid": "AC1", "auth_token": "t"},
            config={"from": "+15550100000", "status_callback": "x"},
        )
    )
    assert list(errors) == ["config.status_callback"]
    assert dd.list_channel_adapters() == []


def test_adapter_update_refuses_unknown_config_keys(dd) -> None:
    adapter = dd.create_channel_adapter(
        name="Slack",
        channel="slack",
        provider="webhook",
        credentials={"webhook_url": "https://hooks.slack.com/services/T/B/X"},
    )
    errors = errors_of(lambda: dd.update_channel_adapter(adapter.id, config={"usernme": "Bot"}))
    assert errors == {"config.usernme": ["unknown field; did you mean 'username'?"]}


def test_test_providers_take_any_credentials(dd) -> None:
    # memory/console stand in for any real provider, whose credentials tests put there.
    adapter = dd.create_channel_adapter(
        name="Mem", channel="email", provider="memory", credentials={"api_key": "k", "x": 1}
    )
    assert adapter.id


def test_timing_refuses_unknown_keys_with_a_suggestion(dd, version) -> None:
    timing = {"type": "delay", "delay_amount": 1, "delay_unit": "days", "relative_too": "x"}
    errors = errors_of(lambda: dd.create_step(version.id, name="S", channel="email", timing=timing))
    assert errors == {
        "timing.relative_too": ["unknown field; did you mean 'relative_to'? ('delay' timing)"]
    }


def test_version_config_refuses_unknown_keys(dd) -> None:
    seq = dd.create_sequence(name="V", key="v")
    errors = errors_of(
        lambda: dd.create_sequence_version(seq.id, config={"exit_event": ["unsubscribed"]})
    )
    assert list(errors) == ["config.exit_event"]
    assert errors["config.exit_event"][0].startswith("unknown field; did you mean 'exit_events'?")
    v = dd.create_sequence_version(seq.id, config={"metadata": {"owner": "growth"}})
    errors = errors_of(lambda: dd.update_sequence_version(v.id, config={"chanel_rotation": {}}))
    assert list(errors) == ["config.chanel_rotation"]


def test_condition_config_refuses_unknown_keys(dd, version) -> None:
    step = dd.create_step(version.id, name="S", channel="email", config={"body": "B"})
    errors = errors_of(
        lambda: dd.create_condition(
            step.id, condition_type="event", config={"event_ky": "paid"}, expected_value="1"
        )
    )
    assert "config.event_ky" in errors
    assert errors["config.event_ky"] == ["unknown field; did you mean 'event_key'?"]
    window = {"timezone": "UTC", "start": "09:00", "end": "17:00", "dayz": ["mon"]}
    errors = errors_of(
        lambda: dd.create_condition(step.id, condition_type="time_window", config=window)
    )
    assert errors == {"config.dayz": ["unknown field; did you mean 'days'?"]}


def test_a_malformed_id_is_reported_under_the_arguments_own_name(dd) -> None:
    import inspect

    from dripdrop.operations import OPERATIONS

    plausible = {"name": "N", "key": "k", "channel": "email", "url": "https://x.io/h"}
    plausible |= {"event_key": "paid"}
    checked = 0
    for name, fn in OPERATIONS.items():
        params = list(inspect.signature(fn).parameters.values())[2:]
        if not params or not params[0].name.endswith("_id"):
            continue
        required = {
            p.name: plausible[p.name]
            for p in params[1:]
            if p.default is p.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }
        method = getattr(dd, name)
        errors = errors_of(lambda m=method, kw=required: m("not-an-id", **kw))
        assert list(errors) == [params[0].name], name
        checked += 1
    assert checked >= 20


def test_non_ascii_step_names_get_distinct_keys(dd, version) -> None:
    names = ["Привет", "Здравствуй", "日本 hello", "中文 hello", "Café", "Cafe!"]
    keys = []
    for name in names[:5]:
        keys.append(
            dd.create_step(version.id, name=name, channel="email", config={"body": "B"}).key
        )
    assert len(set(keys)) == 5
    assert keys[4] == "cafe"  # accents keep their letter
    assert keys[2].startswith("hello_") and keys[0].startswith("step_")
    # The same name still gives the same key, so a duplicate is caught as one.
    errors = errors_of(
        lambda: dd.create_step(version.id, name="Привет", channel="email", config={"body": "B"})
    )
    assert list(errors) == ["key"]
