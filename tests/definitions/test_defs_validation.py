"""Every definition rule: the bad input raises ValidationError naming exactly the bad field,
and the same call with that field fixed is accepted."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from defs_support import errors_of

from dripdrop.errors import ValidationError

GOOD_DELAY = {"type": "delay", "delay_amount": 3, "delay_unit": "days"}


# --- steps: channel, timing, templates, failure config -------------------------------------------


def test_unknown_channel(dd, version) -> None:
    errors = errors_of(lambda: dd.create_step(version.id, name="Fax", channel="fax"))
    assert set(errors) == {"channel"}
    assert "fax" in errors["channel"][0]
    assert dd.create_step(version.id, name="Fax", channel="sms").channel == "sms"


@pytest.mark.parametrize(
    ("timing", "field"),
    [
        ({"type": "soon"}, "timing.type"),
        ({"type": "delay", "delay_amount": 3, "delay_unit": "fortnights"}, "timing.delay_unit"),
        ({"type": "delay", "delay_amount": 0, "delay_unit": "days"}, "timing.delay_amount"),
        ({"type": "delay", "delay_amount": -2, "delay_unit": "days"}, "timing.delay_amount"),
        ({"type": "delay", "delay_unit": "days"}, "timing.delay_amount"),
        ({"type": "delay", "delay_amount": True, "delay_unit": "days"}, "timing.delay_amount"),
        ({"type": "delay", "delay_amount": "3", "delay_unit": "days"}, "timing.delay_amount"),
        ({"type": "cron", "cron_expression": "0 25 * * *"}, "timing.cron_expression"),
        (
            {"type": "cron", "cron_expression": "0 9 * * *", "timezone": "Mars/Olympus_Mons"},
            "timing.timezone",
        ),
        ({"type": "event"}, "timing.trigger_event"),
        ({"type": "event", "trigger_event": "  "}, "timing.trigger_event"),
    ],
)
def test_bad_timing_names_its_field(dd, version, timing: dict[str, Any], field: str) -> None:
    errors = errors_of(lambda: dd.create_step(version.id, name="S", channel="email", timing=timing))
    assert set(errors) == {field}


def test_cron_text_that_is_neither_cron_nor_a_phrase_names_the_expression(dd, version) -> None:
    timing = {"type": "cron", "cron_expression": "whenever the moon is full"}
    errors = errors_of(lambda: dd.create_step(version.id, name="S", channel="email", timing=timing))
    assert set(errors) == {"timing.cron_expression"}
    assert "whenever the moon is full" in " ".join(errors["timing.cron_expression"])


def test_good_timings_are_normalised(dd, version) -> None:
    cron = dd.create_step(
        version.id,
        name="Weekly",
        channel="email",
        timing={
            "type": "cron",
            "cron_expression": "every monday at 9am",
            "timezone": "America/New_York",
        },
    )
    assert cron.timing["cron_expression"] == "0 9 * * MON"
    assert cron.timing["timezone"] == "America/New_York"
    event = dd.create_step(
        version.id,
        name="On order",
        channel="email",
        timing={"type": "event", "trigger_event": "order_completed"},
    )
    assert event.timing == {"type": "event", "trigger_event": "order_completed"}


@pytest.mark.parametrize(
    ("channel", "config", "field"),
    [
        ("email", {"subject": "{{ name", "body": "ok"}, "config.subject"),
        ("email", {"subject": "ok", "body": "{% if x %}never closed"}, "config.body"),
        ("pubsub", {"topic": "t", "payload": {"message": "{{ name"}}, "config.payload.message"),
    ],
)
def test_template_syntax_errors_name_the_config_path(
    dd, version, channel: str, config: dict[str, Any], field: str
) -> None:
    errors = errors_of(lambda: dd.create_step(version.id, name="S", channel=channel, config=config))
    assert set(errors) == {field}


def test_unknown_template_engine(dd, version) -> None:
    errors = errors_of(
        lambda: dd.create_step(
            version.id, name="S", channel="email", config={"template_engine": "handlebars"}
        )
    )
    assert set(errors) == {"config.template_engine"}


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"on_failure": "explode"}, "config.on_failure"),
        ({"max_retries": -1}, "config.max_retries"),
        ({"max_retries": 101}, "config.max_retries"),
        ({"max_retries": True}, "config.max_retries"),
        ({"max_retries": "3"}, "config.max_retries"),
        ({"channel_adapter_rotation": []}, "config.channel_adapter_rotation"),
    ],
)
def test_bad_failure_config(dd, version, config: dict[str, Any], field: str) -> None:
    errors = errors_of(lambda: dd.create_step(version.id, name="S", channel="email", config=config))
    assert set(errors) == {field}


def test_good_failure_config_is_kept(dd, version) -> None:
    step = dd.create_step(
        version.id, name="S", channel="email", config={"on_failure": "halt", "max_retries": 0}
    )
    assert step.config == {"on_failure": "halt", "max_retries": 0}


def test_adapter_of_another_channel_cannot_be_pinned(dd, version) -> None:
    sms = dd.create_channel_adapter(name="SMS", channel="sms", provider="memory")
    errors = errors_of(
        lambda: dd.create_step(version.id, name="S", channel="email", channel_adapter_id=sms.id)
    )
    assert set(errors) == {"channel_adapter_id"}
    assert "sms" in errors["channel_adapter_id"][0]
    email = dd.create_channel_adapter(name="Mail", channel="email", provider="memory")
    step = dd.create_step(version.id, name="S", channel="email", channel_adapter_id=email.id)
    assert step.channel_adapter_id == email.id


def test_unknown_adapter_cannot_be_pinned(dd, version) -> None:
    errors = errors_of(
        lambda: dd.create_step(
            version.id, name="S", channel="email", channel_adapter_id=uuid.uuid4()
        )
    )
    assert set(errors) == {"channel_adapter_id"}


def test_rotation_adapters_must_match_the_channel(dd, version) -> None:
    sms = dd.create_channel_adapter(name="SMS", channel="sms", provider="memory")
    errors = errors_of(
        lambda: dd.create_step(
            version.id, name="S", channel="email", config={"channel_adapter_rotation": [sms.id]}
        )
    )
    assert set(errors) == {"config.channel_adapter_rotation"}


def test_duplicate_step_key_in_a_version(dd, version) -> None:
    dd.create_step(version.id, name="Welcome", channel="email")
    errors = errors_of(
        lambda: dd.create_step(version.id, name="Other", key="welcome", channel="email")
    )
    assert set(errors) == {"key"}
    # The same key in another version is fine.
    other = dd.create_sequence_version(version.sequence_id)
    assert dd.create_step(other.id, name="Welcome", channel="email").key == "welcome"


@pytest.mark.parametrize(
    ("kwargs", "fields"),
    [
        ({"template_type": "liquid"}, {"template_type"}),
        ({"template_type": "module"}, {"template_module", "template_function"}),
        (
            {"template_type": "external", "template_content": {"url": "ftp://x"}},
            {"template_content.url"},
        ),
    ],
)
def test_template_type_rules(dd, version, kwargs: dict[str, Any], fields: set[str]) -> None:
    errors = errors_of(lambda: dd.create_step(version.id, name="S", channel="email", **kwargs))
    assert set(errors) == fields


@pytest.mark.parametrize("position", [-1, "1", True])
def test_bad_position(dd, version, position: Any) -> None:
    errors = errors_of(
        lambda: dd.create_step(version.id, name="S", channel="email", position=position)
    )
    assert set(errors) == {"position"}


def test_every_problem_is_reported_at_once(dd, version) -> None:
    errors = errors_of(
        lambda: dd.create_step(
            version.id,
            name="S",
            channel="fax",
            timing={"type": "soon"},
            config={"on_failure": "explode"},
        )
    )
    assert set(errors) == {"channel", "timing.type", "config.on_failure"}


# --- sequences ------------------------------------------------------------------------------------


def test_duplicate_sequence_key(dd) -> None:
    dd.create_sequence(name="Onboarding", key="onboarding")
    errors = errors_of(lambda: dd.create_sequence(name="Again", key="onboarding"))
    assert set(errors) == {"key"}


@pytest.mark.parametrize(
    ("kwargs", "fields"),
    [
        ({"name": "", "key": "ok"}, {"name"}),
        ({"name": "N", "key": "has space"}, {"key"}),
        (
            {"name": "N", "key": "ok", "hook_module": "no_such_module_for_dripdrop_tests"},
            {"hook_module"},
        ),
    ],
)
def test_bad_sequence_fields(dd, kwargs: dict[str, Any], fields: set[str]) -> None:
    assert set(errors_of(lambda: dd.create_sequence(**kwargs))) == fields


def test_bad_version_config(dd) -> None:
    seq = dd.create_sequence(name="S", key="s")
    errors = errors_of(
        lambda: dd.create_sequence_version(
            seq.id,
            config={
                "exit_events": "unsubscribed",
                "channel_rotation": {"email": [{"adapter_id": "x", "weight": 0}]},
            },
        )
    )
    assert set(errors) == {"config.exit_events", "config.channel_rotation.email.0.weight"}
    for bad in (0, -1, True, "2"):
        assert set(errors_of(lambda b=bad: dd.create_sequence_version(seq.id, version=b))) == {
            "version"
        }
    dd.create_sequence_version(seq.id, version=1)
    assert set(errors_of(lambda: dd.create_sequence_version(seq.id, version=1))) == {"version"}


# --- conditions -----------------------------------------------------------------------------------


def test_unknown_operator(dd, step) -> None:
    errors = errors_of(lambda: dd.create_condition(step.id, field_path="plan", operator="like"))
    assert set(errors) == {"operator"}


def test_unknown_condition_type(dd, step) -> None:
    errors = errors_of(
        lambda: dd.create_condition(step.id, condition_type="vibes", field_path="plan")
    )
    assert set(errors) == {"condition_type"}


@pytest.mark.parametrize("field_path", [None, "", "   "])
def test_enrollment_data_condition_needs_field_path(dd, step, field_path: Any) -> None:
    errors = errors_of(
        lambda: dd.create_condition(
            step.id, condition_type="enrollment_data", field_path=field_path, expected_value="x"
        )
    )
    assert set(errors) == {"field_path"}


def test_invalid_jsonpath_field_path(dd, step) -> None:
    errors = errors_of(lambda: dd.create_condition(step.id, field_path="$.[[", expected_value="x"))
    assert set(errors) == {"field_path"}
    good = dd.create_condition(step.id, field_path="$.a.b", expected_value="x")
    assert good.field_path == "$.a.b"


def test_hook_condition_needs_a_hook(dd, step) -> None:
    errors = errors_of(lambda: dd.create_condition(step.id, condition_type="hook"))
    assert set(errors) == {"hook_function"}
    assert (
        dd.create_condition(step.id, condition_type="hook", hook_function="is_vip").hook_function
        == "is_vip"
    )


def test_hook_condition_http_hook_must_exist_in_the_same_sequence(dd, step) -> None:
    errors = errors_of(lambda: dd.create_condition(step.id, http_hook_id=uuid.uuid4()))
    assert set(errors) == {"http_hook_id"}
    other = dd.create_sequence(name="Other", key="other")
    foreign = dd.create_http_hook(other.id, name="Score", key="score", url="https://example.com")
    errors = errors_of(lambda: dd.create_condition(step.id, http_hook_id=foreign.id))
    assert set(errors) == {"http_hook_id"}


@pytest.mark.parametrize("config", [None, {}, {"event_key": ""}, {"event_key": 3}])
def test_event_condition_needs_event_key(dd, step, config: Any) -> None:
    errors = errors_of(
        lambda: dd.create_condition(
            step.id, condition_type="event", operator="gte", expected_value=1, config=config
        )
    )
    assert set(errors) == {"config.event_key"}


GOOD_WINDOW = {
    "timezone": "America/New_York",
    "days": ["mon", "fri"],
    "start": "09:00",
    "end": "17:00",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"start": "25:00"}, "config.start"),
        ({"end": "9am"}, "config.end"),
        ({"days": ["mon", "funday"]}, "config.days"),
        ({"days": []}, "config.days"),
        ({"timezone": "Nowhere/City"}, "config.timezone"),
        ({"timezone": None}, "config.timezone"),
    ],
)
def test_bad_time_window_config(dd, step, change: dict[str, Any], field: str) -> None:
    config = {k: v for k, v in {**GOOD_WINDOW, **change}.items() if v is not None}
    errors = errors_of(
        lambda: dd.create_condition(step.id, condition_type="time_window", config=config)
    )
    assert set(errors) == {field}


def test_good_time_window_is_accepted(dd, step) -> None:
    cond = dd.create_condition(step.id, condition_type="time_window", config=GOOD_WINDOW)
    assert cond.config == GOOD_WINDOW
    by_field = dd.create_condition(
        step.id,
        condition_type="time_window",
        config={**GOOD_WINDOW, "timezone": None, "timezone_field": "tz"},
    )
    assert by_field.config["timezone_field"] == "tz"


def test_update_condition_revalidates(dd, step) -> None:
    cond = dd.create_condition(step.id, field_path="plan", expected_value="pro")
    assert set(errors_of(lambda: dd.update_condition(cond.id, operator="like"))) == {"operator"}
    assert dd.update_condition(cond.id, operator="neq").operator == "neq"


# --- channel adapters -----------------------------------------------------------------------------


def test_unknown_channel_for_an_adapter(dd) -> None:
    errors = errors_of(
        lambda: dd.create_channel_adapter(name="A", channel="fax", provider="memory")
    )
    assert set(errors) == {"channel"}


def test_unknown_provider(dd) -> None:
    errors = errors_of(
        lambda: dd.create_channel_adapter(name="A", channel="email", provider="pigeon")
    )
    assert set(errors) == {"provider"}
    assert "mailgun" in errors["provider"][0]  # lists the known ones


@pytest.mark.parametrize(
    ("channel", "provider", "credentials", "config", "fields"),
    [
        ("email", "mailgun", {}, {"domain": "mg.example.com"}, {"credentials.api_key"}),
        ("email", "mailgun", {"api_key": "key-1"}, {}, {"config.domain"}),
        ("email", "postmark", None, None, {"credentials.server_token"}),
        ("sms", "twilio", {"account_sid": "AC1"}, None, {"credentials.auth_token"}),
        ("telegram", "bot_api", {}, None, {"credentials.bot_token"}),
    ],
)
def test_missing_required_credentials_and_config(
    dd, channel: str, provider: str, credentials: Any, config: Any, fields: set[str]
) -> None:
    errors = errors_of(
        lambda: dd.create_channel_adapter(
            name="A", channel=channel, provider=provider, credentials=credentials, config=config
        )
    )
    assert set(errors) == fields
    assert dd.list_channel_adapters() == []


def test_credential_errors_never_echo_credential_values(dd) -> None:
    secret = "sk-live-TOPSECRET-0042"
    with pytest.raises(ValidationError) as caught:
        dd.create_channel_adapter(
            name="Mailgun",
            channel="email",
            provider="mailgun",
            credentials={"api_key": {"value": secret}, "password": secret},
            config={"domain": "mg.example.com"},
        )
    # "password" is not a Mailgun credential: reported by name, never by value.
    assert set(caught.value.errors) == {"credentials.api_key", "credentials.password"}
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value.errors)


def test_duplicate_adapter_name(dd) -> None:
    dd.create_channel_adapter(name="Mem", channel="email", provider="memory")
    errors = errors_of(
        lambda: dd.create_channel_adapter(name="Mem", channel="sms", provider="memory")
    )
    assert set(errors) == {"name"}


def test_update_adapter_revalidates_the_name(dd) -> None:
    dd.create_channel_adapter(name="Taken", channel="email", provider="memory")
    adapter = dd.create_channel_adapter(name="Mine", channel="sms", provider="memory")
    assert set(errors_of(lambda: dd.update_channel_adapter(adapter.id, name="Taken"))) == {"name"}
    assert set(errors_of(lambda: dd.update_channel_adapter(adapter.id, name=""))) == {"name"}
    assert dd.update_channel_adapter(adapter.id, name="Mine").name == "Mine"  # itself is fine
    other_tenant = dd.create_channel_adapter(
        name="T", channel="email", provider="memory", tenant_key="a"
    )
    assert dd.update_channel_adapter(other_tenant.id, name="Taken").name == "Taken"


def test_update_adapter_revalidates_credentials(dd) -> None:
    adapter = dd.create_channel_adapter(
        name="Mailgun",
        channel="email",
        provider="mailgun",
        credentials={"api_key": "key-1"},
        config={"domain": "mg.example.com"},
    )
    errors = errors_of(lambda: dd.update_channel_adapter(adapter.id, credentials={}))
    assert set(errors) == {"credentials.api_key"}
    assert dd.get_channel_adapter(adapter.id).credentials.reveal() == {"api_key": "key-1"}
