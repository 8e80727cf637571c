"""The seed's three "Real-World Examples", run as written: the same field names in the same
places, with only Elixir turned into Python (``%{type: "delay"}`` → ``{"type": "delay"}``,
``{:ok, x} = f(...)`` → ``x = f(...)``, ``System.get_env`` → test values). The seed's text is
quoted verbatim in each definition; the only other changes are marked ``# local:`` (URLs of the
outside world pointed at the local server) and the adapters of seed_support.py.

Each example runs end to end on PostgreSQL: definitions, enrollment, ``run_due`` on a fake
clock, and the deliveries each provider's server received.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from myapp import onboarding_hooks
from seed_support import START, TELEGRAM_BOT_TOKEN, TWILIO_SID, Recorder, SeedAdapters

from dripdrop import DripDrop
from dripdrop.testing import TestEnv


def states(dd: DripDrop, enrollment: Any) -> dict[str, str]:
    """step key → execution state, for one enrollment."""
    keys = {s.id: s.key for s in dd.list_steps(enrollment.sequence_version_id)}
    return {keys[x.step_id]: x.state for x in dd.list_executions(enrollment.id)}


def run_until(env: TestEnv, when: datetime) -> Any:
    """Move the clock to ``when`` and run what is due."""
    env.clock.set(when)
    return env.dd.run_due()


# --- Example 1: SaaS Onboarding -------------------------------------------------------------

WELCOME_MJML = (
    "<mjml><mj-body><mj-section><mj-column>"
    "<mj-text>Welcome {{name}}, your workspace is ready.</mj-text>"
    "</mj-column></mj-section></mj-body></mjml>"
)


def define_example_1(dd: DripDrop) -> Any:
    sequence = dd.create_sequence(
        name="SaaS User Onboarding",
        key="saas_onboarding",
        hook_module="myapp.onboarding_hooks",  # "MyApp.OnboardingHooks", as a Python module
    )

    v1 = dd.create_sequence_version(sequence.id, version=1, active=True)

    # Step 1: Welcome email (immediate)
    dd.create_step(
        v1.id,
        name="Welcome Email",
        key="welcome",
        position=1,
        channel="email",
        timing={"type": "immediate"},
        # The seed elides the document ("<mjml>...</mjml>"), which is not MJML and is refused:
        # here the "..." is one line of content.
        config={"subject": "Welcome {{name}}!", "body": WELCOME_MJML},
    )

    # Step 2: In-app notification (5 minutes later)
    dd.create_step(
        v1.id,
        name="Welcome Notification",
        key="welcome_notification",
        position=2,
        channel="pubsub",
        timing={"type": "delay", "delay_amount": 5, "delay_unit": "minutes"},
        config={
            "topic": "user:{{subscriber_id}}",
            "event": "notification",
            "payload": {"type": "welcome", "message": "Check out your dashboard!"},
        },
    )

    # Step 3: Setup reminder (1 day, only if incomplete)
    step3 = dd.create_step(
        v1.id,
        name="Setup Reminder",
        key="setup_reminder",
        position=3,
        channel="email",
        timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"},
        config={"subject": "Finish setup in 5 minutes", "body": "..."},
    )

    dd.create_condition(
        step3.id,
        condition_type="hook",
        hook_function="setup_completed",
        operator="eq",
        expected_value="false",
    )

    # Step 4: Weekly digest (every Monday at 9am)
    dd.create_step(
        v1.id,
        name="Weekly Digest",
        key="weekly_digest",
        position=4,
        channel="email",
        timing={
            "type": "cron",
            "cron_expression": "every monday at 9am",
            "timezone": "America/New_York",
        },
        config={"subject": "Your weekly summary", "body": "..."},
    )

    # Step 5: SMS reminder (7 days, high-value users only)
    sms_step = dd.create_step(
        v1.id,
        name="Activation SMS",
        key="activation_sms",
        position=5,
        channel="sms",
        timing={"type": "delay", "delay_amount": 7, "delay_unit": "days"},
        config={"body": "Hi {{name}}! You've completed {{progress}}% of setup."},
    )

    dd.create_condition(
        sms_step.id,
        condition_type="enrollment_data",
        field_path="plan_tier",
        operator="eq",
        expected_value="enterprise",
    )
    return sequence


def enroll_example_1(dd: DripDrop, user: dict[str, Any]) -> Any:
    # Enroll user
    return dd.enroll(
        sequence_key="saas_onboarding",
        subscriber={"type": "User", "id": user["id"]},
        data={
            "name": user["name"],
            "email": user["email"],
            "phone": user["phone"],
            "plan_tier": user["plan_tier"],
        },
    )


ADA = {"id": str(uuid.uuid4()), "name": "Ada", "email": "ada@example.com",
       "phone": "+15550100001", "plan_tier": "enterprise"}  # fmt: skip
GRACE = {"id": str(uuid.uuid4()), "name": "Grace", "email": "grace@example.com",
         "phone": "+15550100002", "plan_tier": "starter"}  # fmt: skip


def test_example_1_saas_onboarding(
    dd: DripDrop, env: TestEnv, server: Recorder, adapters: SeedAdapters
) -> None:
    # MyApp's answers: Ada has not finished setup (40 %), Grace has.
    onboarding_hooks.USERS.update({ADA["id"]: (False, 40), GRACE["id"]: (True, 100)})
    define_example_1(dd)
    ada, grace = enroll_example_1(dd, ADA), enroll_example_1(dd, GRACE)

    # Step 1 at once: the welcome email through the default adapter (Mailgun, whose domain the
    # seed keeps in credentials).
    assert dd.run_due().sent == 2
    welcome = server.of("mailgun")
    assert [c.path for c in welcome] == ["/v3/mg.myapp.com/messages"] * 2
    assert {(c.form["to"], c.form["subject"]) for c in welcome} == {
        ("ada@example.com", "Welcome Ada!"),
        ("grace@example.com", "Welcome Grace!"),
    }
    assert all(c.form["from"] == "MyApp <hello@mg.myapp.com>" for c in welcome)
    # The MJML body went out compiled to HTML, rendered per user.
    html = {c.form["to"]: c.form["html"] for c in welcome}
    assert "<mjml>" not in html["ada@example.com"]
    assert "Welcome Ada, your workspace is ready." in html["ada@example.com"]

    # Step 2, five minutes later: the in-app notification on topic user:<id>.
    assert run_until(env, START + timedelta(minutes=4)).sent == 0
    assert run_until(env, START + timedelta(minutes=5)).sent == 2
    for user in (ADA, GRACE):
        (note,) = dd.list_notifications(f"user:{user['id']}")
        assert note.event == "notification"
        assert note.payload == {"type": "welcome", "message": "Check out your dashboard!"}

    # Step 3 after a day, only while setup is incomplete (the hook module says so).
    summary = run_until(env, START + timedelta(days=1))
    assert (summary.sent, summary.skipped) == (1, 1)
    reminder = server.of("mailgun")[-1]
    assert (reminder.form["to"], reminder.form["subject"]) == (
        "ada@example.com",
        "Finish setup in 5 minutes",
    )
    assert states(dd, grace)["setup_reminder"] == "skipped"

    # Step 4 "every monday at 9am" in New York: Monday 7 January, 09:00 EST = 14:00 UTC.
    monday_9am = datetime(2030, 1, 7, 14, 0, tzinfo=UTC)
    assert run_until(env, monday_9am - timedelta(minutes=1)).sent == 0
    assert run_until(env, monday_9am).sent == 2
    digests = [c for c in server.of("mailgun") if c.form["subject"] == "Your weekly summary"]
    assert sorted(c.form["to"] for c in digests) == ["ada@example.com", "grace@example.com"]

    # Step 5 seven days after enrollment: the SMS for enterprise users only, its {{progress}}
    # answered by the hook module.
    summary = run_until(env, START + timedelta(days=7))
    assert (summary.sent, summary.skipped) == (1, 1)
    (sms,) = server.of("twilio")
    assert sms.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert sms.form == {
        "To": "+15550100001",
        "From": "+15551234567",
        "Body": "Hi Ada! You've completed 40% of setup.",
    }

    assert states(dd, ada) == dict.fromkeys(
        ["welcome", "welcome_notification", "setup_reminder", "weekly_digest", "activation_sms"],
        "sent",
    )
    assert states(dd, grace) == {
        "welcome": "sent",
        "welcome_notification": "sent",
        "setup_reminder": "skipped",
        "weekly_digest": "sent",
        "activation_sms": "skipped",
    }
    for enrollment in (ada, grace):
        assert dd.get_enrollment_by_id(enrollment.id).state == "completed"
    # Every delivery, in order: nothing went anywhere else.
    assert [c.service for c in server.calls] == ["mailgun"] * 3 + ["mailgun"] * 2 + ["twilio"]


# --- Example 2: CRM Email Sequence ----------------------------------------------------------


def define_example_2(dd: DripDrop, server: Recorder) -> Any:
    sequence = dd.create_sequence(name="Lead Nurture", key="lead_nurture")

    v1 = dd.create_sequence_version(sequence.id, version=1, active=True)

    # HTTP Hook: Get lead score from Zapier/n8n
    score_hook = dd.create_http_hook(
        sequence.id,
        name="Lead Score",
        key="lead_score",
        method="POST",
        url=server.url("/hooks/catch/YOUR_WEBHOOK/"),  # local: https://hooks.zapier.com/...
        body_template='{"email": "{{email}}"}',
        response_path="score",
        response_type="number",
    )

    # Step 1: Initial outreach
    dd.create_step(
        v1.id,
        name="Initial Email",
        position=1,
        channel="email",
        timing={"type": "immediate"},
        config={"subject": "Quick question about {{company_name}}", "body": "..."},
    )

    # Step 2: Hot lead path (score >= 70)
    hot_step = dd.create_step(
        v1.id,
        name="Enterprise Pitch",
        position=2,
        channel="email",
        timing={"type": "delay", "delay_amount": 3, "delay_unit": "days"},
        config={"subject": "...", "body": "..."},
    )

    dd.create_condition(
        hot_step.id, http_hook_id=score_hook.id, operator="gte", expected_value="70"
    )

    # Step 3: Notify sales via Slack
    dd.create_step(
        v1.id,
        name="Notify Sales",
        position=3,
        channel="slack",
        timing={"type": "delay", "delay_amount": 3, "delay_unit": "days"},
        config={
            "channel": "#sales",
            "text": "🔥 Hot lead: {{name}} at {{company_name}} (score: {{lead_score}})",
        },
    )

    # Step 4: Update CRM via webhook
    dd.create_step(
        v1.id,
        name="Update CRM",
        position=4,
        channel="webhook",
        timing={"type": "delay", "delay_amount": 14, "delay_unit": "days"},
        config={
            "url": server.url("/api/leads/{{subscriber_id}}"),  # local: https://crm.myapp.com
            "method": "PATCH",
            "body": '{"status": "unresponsive"}',
        },
    )
    return sequence


def test_example_2_crm_email_sequence(
    dd: DripDrop, env: TestEnv, server: Recorder, adapters: SeedAdapters
) -> None:
    define_example_2(dd, server)
    server.scores.update({"hot@acme.test": 85, "cold@initech.test": 20})
    # The seed shows no enrollment for this example: two leads, enrolled as in Example 1.
    for lead_id, name, email, company in (
        ("hot", "Hank", "hot@acme.test", "Acme"),
        ("cold", "Cora", "cold@initech.test", "Initech"),
    ):
        dd.enroll(
            sequence_key="lead_nurture",
            subscriber={"type": "Lead", "id": lead_id},
            data={"name": name, "email": email, "company_name": company},
        )
    hot = dd.get_enrollment("lead_nurture", "Lead", "hot")
    # Keys the seed leaves out are derived from the names.
    assert [s.key for s in dd.list_steps(hot.sequence_version_id)] == [
        "initial_email",
        "enterprise_pitch",
        "notify_sales",
        "update_crm",
    ]

    assert dd.run_due().sent == 2
    assert sorted((c.form["to"], c.form["subject"]) for c in server.of("mailgun")) == [
        ("cold@initech.test", "Quick question about Initech"),
        ("hot@acme.test", "Quick question about Acme"),
    ]
    assert server.of("zapier") == []  # nothing has needed the score yet

    # Day 3: the pitch only where the hook's score is >= 70; Slack hears of both leads (the
    # seed's step 3 has no condition), with the score the hook answered.
    summary = run_until(env, START + timedelta(days=3))
    assert (summary.sent, summary.skipped) == (3, 1)
    pitch = server.of("mailgun")[-1]
    assert (pitch.form["to"], pitch.form["subject"]) == ("hot@acme.test", "...")
    assert sorted(c.json["text"] for c in server.of("slack")) == [
        "🔥 Hot lead: Cora at Initech (score: 20)",
        "🔥 Hot lead: Hank at Acme (score: 85)",
    ]
    assert all(c.json["channel"] == "#sales" for c in server.of("slack"))
    zapier = server.of("zapier")
    assert {c.method for c in zapier} == {"POST"}
    assert sorted(c.json["email"] for c in zapier) == sorted(
        ["hot@acme.test", "cold@initech.test"] * 2  # the condition, then the Slack text
    )
    cold = dd.get_enrollment("lead_nurture", "Lead", "cold")
    assert states(dd, cold)["enterprise_pitch"] == "skipped"

    # Day 14: the CRM update for both leads.
    assert run_until(env, START + timedelta(days=14) - timedelta(seconds=1)).sent == 0
    assert run_until(env, START + timedelta(days=14)).sent == 2
    assert sorted((c.method, c.path, c.json) for c in server.of("crm")) == [
        ("PATCH", "/api/leads/cold", {"status": "unresponsive"}),
        ("PATCH", "/api/leads/hot", {"status": "unresponsive"}),
    ]
    assert states(dd, cold) == {
        "initial_email": "sent",
        "enterprise_pitch": "skipped",
        "notify_sales": "sent",
        "update_crm": "sent",
    }
    assert dd.get_enrollment_by_id(hot.id).state == "completed"


# --- Example 3: Multi-Channel Notification --------------------------------------------------


def define_example_3(dd: DripDrop, v1: Any) -> None:
    # Same message, multiple channels
    dd.create_step(
        v1.id,
        name="Trial Ending - Email",
        channel="email",
        timing={"type": "delay", "delay_amount": 13, "delay_unit": "days"},
        config={"subject": "Trial ends tomorrow", "body": "..."},
    )

    dd.create_step(
        v1.id,
        name="Trial Ending - SMS",
        channel="sms",
        timing={"type": "delay", "delay_amount": 13, "delay_unit": "days"},
        config={"body": "Your trial ends tomorrow. Upgrade to keep access!"},
    )

    dd.create_step(
        v1.id,
        name="Trial Ending - In-App",
        channel="pubsub",
        timing={"type": "delay", "delay_amount": 13, "delay_unit": "days"},
        config={
            "topic": "user:{{subscriber_id}}",
            "event": "alert",
            "payload": {"type": "trial_ending", "days": 1},
        },
    )

    dd.create_step(
        v1.id,
        name="Trial Ending - Telegram",
        channel="telegram",
        timing={"type": "delay", "delay_amount": 13, "delay_unit": "days"},
        config={"text": "⚠️ Your trial ends tomorrow! Upgrade now: {{upgrade_url}}"},
    )


def test_example_3_multi_channel_notification(
    dd: DripDrop, env: TestEnv, server: Recorder, adapters: SeedAdapters
) -> None:
    # The seed's v1 comes from elsewhere: a trial sequence holding only these steps.
    sequence = dd.create_sequence(name="Trial", key="trial")
    v1 = dd.create_sequence_version(sequence.id, version=1, active=True)
    define_example_3(dd, v1)
    user_id = str(uuid.uuid4())
    enrollment = dd.enroll(
        sequence_key="trial",
        subscriber={"type": "User", "id": user_id},
        data={
            "name": "Ada",
            "email": "ada@example.com",
            "phone": "+15550100001",
            "telegram_chat_id": "987654321",
            "upgrade_url": "https://myapp.com/upgrade",
        },
    )
    steps = dd.list_steps(v1.id)
    # No keys and no positions in the seed: derived from the names, appended in order.
    assert [(s.position, s.key) for s in steps] == [
        (1, "trial_ending_email"),
        (2, "trial_ending_sms"),
        (3, "trial_ending_in_app"),
        (4, "trial_ending_telegram"),
    ]

    assert run_until(env, START + timedelta(days=13) - timedelta(minutes=1)).sent == 0
    assert run_until(env, START + timedelta(days=13)).sent == 4

    assert [c.service for c in server.calls] == ["mailgun", "twilio", "telegram"]
    email, sms, telegram = server.calls
    assert (email.form["to"], email.form["subject"]) == ("ada@example.com", "Trial ends tomorrow")
    assert (sms.form["To"], sms.form["Body"]) == (
        "+15550100001",
        "Your trial ends tomorrow. Upgrade to keep access!",
    )
    assert telegram.path == f"/bot{TELEGRAM_BOT_TOKEN}/sendMessage"
    assert telegram.json == {
        "chat_id": "987654321",
        "text": "⚠️ Your trial ends tomorrow! Upgrade now: https://myapp.com/upgrade",
        "parse_mode": "Markdown",
    }
    (alert,) = dd.list_notifications(f"user:{user_id}")
    assert (alert.event, alert.payload) == ("alert", {"type": "trial_ending", "days": 1})
    executions = dd.list_executions(enrollment.id)
    assert [x.channel for x in executions] == ["email", "sms", "pubsub", "telegram"]
    assert {x.state for x in executions} == {"sent"}
    assert dd.get_enrollment_by_id(enrollment.id).state == "completed"
