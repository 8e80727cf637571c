"""The seed's other usage examples, each with its fields where the seed puts them: channel
adapters (a pinned adapter, the default, rotation per version and per step, Mailgun's domain in
credentials), HTTP hooks, Python hook modules and the timing shapes (event steps included)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from myapp import dripdrop_hooks
from seed_support import MAILGUN_API_KEY, START, Recorder, SeedAdapters

from dripdrop import DripDrop, ValidationError
from dripdrop.testing import TestEnv

API_TOKEN = "seed-api-token-0004"


def enroll(dd: DripDrop, key: str, n: int = 1, **data: Any) -> list[Any]:
    return [
        dd.enroll(
            sequence_key=key,
            subscriber={"type": "User", "id": str(uuid.uuid4())},
            data={"email": f"user{i}@example.com", **data},
        )
        for i in range(n)
    ]


def test_pinned_adapter_and_the_default(
    dd: DripDrop, server: Recorder, adapters: SeedAdapters
) -> None:
    sequence = dd.create_sequence(name="Adapters", key="adapters")
    version = dd.create_sequence_version(sequence.id, version=1, active=True)
    sendgrid = adapters.sendgrid

    # Use specific adapter in step
    dd.create_step(
        version.id,
        name="Welcome Email",
        channel="email",
        channel_adapter_id=sendgrid.id,  # Override default
        config={"subject": "Welcome!", "body": "..."},
    )

    # Use default adapter (no channel_adapter_id specified)
    dd.create_step(
        version.id,
        name="Newsletter",
        channel="email",
        # Uses Mailgun (is_default: true)
        config={"subject": "Our news", "body": "..."},  # the seed elides it: %{...}
    )

    assert dd.get_default_adapter("email").name == "Mailgun Primary"
    assert [a.name for a in dd.list_channel_adapters("email")] == [
        "Mailgun Primary",
        "SendGrid Transactional",
    ]
    enroll(dd, "adapters")
    assert dd.run_due().sent == 2
    welcome, newsletter = server.calls
    assert welcome.service == "sendgrid" and welcome.json["subject"] == "Welcome!"
    assert welcome.headers["Authorization"] == "Bearer SG.seed-sendgrid-key-0002"
    assert newsletter.service == "mailgun" and newsletter.form["subject"] == "Our news"
    assert newsletter.path == "/v3/mg.myapp.com/messages"


def test_rotation_per_version_and_per_step(
    dd: DripDrop, server: Recorder, adapters: SeedAdapters
) -> None:
    # Ecto ids are strings; DripDrop's records hold UUIDs, which a JSON config refuses.
    mailgun_id, sendgrid_id = str(adapters.mailgun.id), str(adapters.sendgrid.id)
    postmark = dd.create_channel_adapter(
        name="Postmark",
        channel="email",
        provider="postmark",
        credentials={"server_token": "postmark-seed-token"},
        config={"base_url": server.base, "from": "MyApp <hello@myapp.com>"},
    )
    postmark_id = str(postmark.id)

    # Rotate between multiple email adapters per sequence
    sequence_config = {
        "channel_rotation": {
            "email": [
                {"adapter_id": mailgun_id, "weight": 70},
                {"adapter_id": sendgrid_id, "weight": 30},
            ]
        }
    }

    # Or per step
    step_config = {"channel_adapter_rotation": [mailgun_id, sendgrid_id, postmark_id]}

    sequence = dd.create_sequence(name="Rotation", key="rotation")
    version = dd.create_sequence_version(
        sequence.id, version=1, active=True, config=sequence_config
    )
    dd.create_step(
        version.id, name="By version", channel="email", config={"subject": "v", "body": "..."}
    )
    dd.create_step(
        version.id,
        name="By step",
        channel="email",
        config={"subject": "s", "body": "...", **step_config},
    )
    stored = dd.list_steps(version.id)[1].config["channel_adapter_rotation"]
    assert stored == [mailgun_id, sendgrid_id, postmark_id]

    enroll(dd, "rotation", n=40)
    assert dd.run_due().sent == 80
    by_version = {c.service for c in server.calls if c.service != "postmark" and _subject(c) == "v"}
    by_step = {c.service for c in server.calls if _subject(c) == "s"}
    assert by_version == {"mailgun", "sendgrid"}
    assert by_step == {"mailgun", "sendgrid", "postmark"}
    assert not any(c.service == "postmark" and _subject(c) == "v" for c in server.calls)


def _subject(call: Any) -> str:
    if call.service == "mailgun":
        return call.form["subject"]
    return call.json["subject"] if call.service == "sendgrid" else call.json["Subject"]


# Mailgun's sending domain: in credentials (the seed), in config, or in both when they agree.
@pytest.mark.parametrize(
    ("credentials", "config"),
    [
        ({"api_key": MAILGUN_API_KEY, "domain": "mg.myapp.com"}, None),
        ({"api_key": MAILGUN_API_KEY}, {"domain": "mg.myapp.com"}),
        ({"api_key": MAILGUN_API_KEY, "domain": "mg.myapp.com"}, {"domain": "MG.myapp.com"}),
    ],
    ids=["credentials", "config", "both-agree"],
)
def test_mailgun_domain_in_credentials_or_config(
    dd: DripDrop, server: Recorder, credentials: dict[str, str], config: dict[str, str] | None
) -> None:
    dd.create_channel_adapter(
        name="Mailgun",
        channel="email",
        provider="mailgun",
        credentials=credentials,
        config={**(config or {}), "base_url": server.base, "from": "hello@mg.myapp.com"},
    )
    sequence = dd.create_sequence(name="Mail", key="mail")
    version = dd.create_sequence_version(sequence.id, active=True)
    dd.create_step(version.id, name="Hello", channel="email", config={"subject": "Hi", "body": "."})
    enroll(dd, "mail")
    assert dd.run_due().sent == 1
    (call,) = server.calls
    assert call.path in ("/v3/mg.myapp.com/messages", "/v3/MG.myapp.com/messages")


@pytest.mark.parametrize(
    ("credentials", "config", "message"),
    [
        ({"api_key": MAILGUN_API_KEY}, None, "is required (here or as credentials.domain)"),
        (
            {"api_key": MAILGUN_API_KEY, "domain": "mg.myapp.com"},
            {"domain": "mg.other.com"},
            "disagrees with credentials.domain",
        ),
    ],
    ids=["neither", "both-differ"],
)
def test_mailgun_domain_missing_or_contradicting_is_refused(
    dd: DripDrop, credentials: dict[str, str], config: dict[str, str] | None, message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        dd.create_channel_adapter(
            name="Mailgun", channel="email", provider="mailgun", credentials=credentials,
            config=config,
        )  # fmt: skip
    assert set(info.value.errors) == {"config.domain"}
    assert message in info.value.errors["config.domain"][0]
    assert "mg.myapp.com" not in str(info.value)  # a credential value is never echoed
    assert dd.list_channel_adapters() == []


def test_mailgun_update_keeps_the_domain_rule(dd: DripDrop) -> None:
    adapter = dd.create_channel_adapter(
        name="Mailgun Primary",
        channel="email",
        provider="mailgun",
        credentials={"api_key": MAILGUN_API_KEY, "domain": "mg.myapp.com"},
    )
    with pytest.raises(ValidationError) as info:
        dd.update_channel_adapter(adapter.id, config={"domain": "mg.other.com"})
    assert set(info.value.errors) == {"config.domain"}
    with pytest.raises(ValidationError):
        dd.update_channel_adapter(adapter.id, credentials={"api_key": MAILGUN_API_KEY})
    # Moving the domain from credentials to config is fine.
    dd.update_channel_adapter(adapter.id, config={"domain": "mg.myapp.com"})
    moved = dd.update_channel_adapter(adapter.id, credentials={"api_key": MAILGUN_API_KEY})
    assert moved.config["domain"] == "mg.myapp.com"


def test_http_hook_in_a_condition_and_a_template(
    dd: DripDrop, server: Recorder, adapters: SeedAdapters
) -> None:
    sequence = dd.create_sequence(name="Scores", key="scores")
    version = dd.create_sequence_version(sequence.id, version=1, active=True)
    step = dd.create_step(
        version.id,
        name="High score",
        channel="email",
        config={"subject": "Your score is {{user_score}}", "body": "..."},
    )

    # Create HTTP hook (stores encrypted credentials)
    hook = dd.create_http_hook(
        sequence.id,
        name="Get User Score",
        key="user_score",
        method="POST",
        url=server.url("/users/{{subscriber_id}}/score"),  # local: https://api.myapp.com
        auth_type="bearer",
        auth_config={"token": API_TOKEN},
        body_template='{"include_metadata": true}',
        response_path="score",
        response_type="number",
        timeout_ms=5000,
        retry_count=2,
    )

    # Use in condition
    dd.create_condition(
        step.id,
        condition_type="hook",
        http_hook_id=hook.id,
        operator="gte",
        expected_value="80",
    )

    high, low = enroll(dd, "scores", n=2)
    server.scores.update({high.subscriber_id: 91, low.subscriber_id: 50})
    summary = dd.run_due()
    assert (summary.sent, summary.skipped) == (1, 1)
    (email,) = server.of("mailgun")
    assert (email.form["to"], email.form["subject"]) == ("user0@example.com", "Your score is 91")
    scores = server.of("user_score")
    # One call per execution: the condition's value is reused by the template.
    assert sorted(c.path for c in scores) == sorted(
        f"/users/{e.subscriber_id}/score" for e in (high, low)
    )
    assert all(c.headers["Authorization"] == f"Bearer {API_TOKEN}" for c in scores)
    assert all(c.json == {"include_metadata": True} for c in scores)
    assert dd.test_http_hook(hook.id, test_data={"subscriber_id": low.subscriber_id}).value == 50


def test_python_hook_module(dd: DripDrop, server: Recorder, adapters: SeedAdapters) -> None:
    # Set on sequence
    sequence = dd.create_sequence(
        name="Onboarding",
        key="onboarding",
        hook_module="myapp.dripdrop_hooks",  # "MyApp.DripDropHooks"
    )
    version = dd.create_sequence_version(sequence.id, version=1, active=True)
    step = dd.create_step(
        version.id,
        name="Trial check-in",
        channel="email",
        config={
            "subject": "{{trial_days_remaining}} days left",
            "body": "You use {{feature_count}} features.",
        },
    )
    dd.create_condition(
        step.id,
        condition_type="hook",
        hook_function="trial_days_remaining",
        operator="gt",
        expected_value="0",
    )
    active, expired = enroll(dd, "onboarding", n=2)
    dripdrop_hooks.USERS.update(
        {
            active.subscriber_id: (dripdrop_hooks.TODAY + timedelta(days=5), 4),
            expired.subscriber_id: (dripdrop_hooks.TODAY - timedelta(days=2), 1),
        }
    )
    summary = dd.run_due()
    assert (summary.sent, summary.skipped) == (1, 1)
    (email,) = server.of("mailgun")
    assert email.form["subject"] == "5 days left"
    assert email.form["text"] == "You use 4 features."


def test_timing_usage_examples(
    dd: DripDrop, env: TestEnv, server: Recorder, adapters: SeedAdapters
) -> None:
    sequence = dd.create_sequence(name="Timings", key="timings")
    version = dd.create_sequence_version(sequence.id, version=1, active=True)
    timings = [
        # Immediate
        {"timing": {"type": "immediate"}},
        # Delay
        {"timing": {"type": "delay", "delay_amount": 3, "delay_unit": "days"}},
        # Cron expression
        {
            "timing": {
                "type": "cron",
                "cron_expression": "0 9 * * MON",  # Every Monday at 9am
                "timezone": "America/New_York",
            }
        },
        # Human-friendly
        {
            "timing": {
                "type": "cron",
                "cron_expression": "every monday at 9am",
                "timezone": "America/New_York",
            }
        },
        # Event-triggered
        {"timing": {"type": "event", "trigger_event": "order_completed"}},
    ]
    for i, attrs in enumerate(timings, 1):
        dd.create_step(
            version.id, name=f"Step {i}", channel="email", config={"subject": str(i), "body": "."},
            **attrs,
        )  # fmt: skip
    stored = [s.timing for s in dd.list_steps(version.id)]
    assert stored[3] == {
        "type": "cron",
        "cron_expression": "0 9 * * MON",
        "timezone": "America/New_York",
        "human_expression": "every monday at 9am",
    }
    (enrollment,) = enroll(dd, "timings")

    def sent() -> list[str]:
        return [c.form["subject"] for c in server.of("mailgun")]

    assert dd.run_due().sent == 1 and sent() == ["1"]
    env.clock.set(START + timedelta(days=3))  # Saturday 5 January
    assert dd.run_due().sent == 1 and sent() == ["1", "2"]
    env.clock.set(datetime(2030, 1, 7, 14, 0, tzinfo=UTC))  # Monday 09:00 in New York
    assert dd.run_due().sent == 1
    env.clock.set(datetime(2030, 1, 14, 14, 0, tzinfo=UTC))  # the next Monday
    assert dd.run_due().sent == 1 and sent() == ["1", "2", "3", "4"]
    env.clock.set(datetime(2030, 2, 1, tzinfo=UTC))
    assert dd.run_due().sent == 0  # step 5 waits for its event
    dd.track_event(enrollment.id, "order_completed")
    assert dd.run_due().sent == 1 and sent() == ["1", "2", "3", "4", "5"]
    assert dd.get_enrollment_by_id(enrollment.id).state == "completed"
