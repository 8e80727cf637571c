"""Defines the seed's Example 1 (SaaS onboarding) and runs it for a few subscribers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console

from dripdrop.testing.clock import FakeClock

WELCOME_MJML = """<mjml>
  <mj-body>
    <mj-section><mj-column>
      <mj-text font-size="20px">Welcome {{ name }}!</mj-text>
      <mj-text>Your {{ plan_tier }} workspace is ready.</mj-text>
      <mj-button href="https://app.example.com/start">Open your dashboard</mj-button>
    </mj-column></mj-section>
  </mj-body>
</mjml>"""

SUBSCRIBERS = [
    {
        "id": 1,
        "name": "Ada",
        "email": "ada@example.com",
        "phone": "+15550100001",
        "plan_tier": "enterprise",
        "progress": 80,
    },
    {
        "id": 2,
        "name": "Grace",
        "email": "grace@example.com",
        "phone": "+15550100002",
        "plan_tier": "starter",
        "progress": 20,
    },
    {
        "id": 3,
        "name": "Linus",
        "email": "linus@example.com",
        "phone": "+15550100003",
        "plan_tier": "enterprise",
        "progress": 55,
    },
]


def define(dd: Any) -> Any:
    """Create the onboarding sequence, its console adapters and its five steps."""
    for channel in ("email", "pubsub", "sms"):
        dd.create_channel_adapter(
            name=f"console-{channel}", channel=channel, provider="console", is_default=True
        )
    seq = dd.create_sequence(
        name="SaaS User Onboarding", key="saas_onboarding", hook_module="dripdrop.demo.hooks"
    )
    v1 = dd.create_sequence_version(
        seq.id, version=1, active=True, config={"exit_events": ["account_deleted"]}
    )
    dd.create_step(
        v1.id,
        name="Welcome Email",
        key="welcome",
        position=1,
        channel="email",
        timing={"type": "immediate"},
        config={
            "subject": "Welcome {{ name }}!",
            "body": WELCOME_MJML,
            "from": "hello@example.com",
        },
    )
    dd.create_step(
        v1.id,
        name="Welcome Notification",
        key="welcome_notification",
        position=2,
        channel="pubsub",
        timing={"type": "delay", "delay_amount": 5, "delay_unit": "minutes"},
        config={
            "topic": "user:{{ subscriber_id }}",
            "event": "notification",
            "payload": {"type": "welcome", "message": "Check out your dashboard, {{ name }}!"},
        },
    )
    reminder = dd.create_step(
        v1.id,
        name="Setup Reminder",
        key="setup_reminder",
        position=3,
        channel="email",
        timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"},
        config={
            "subject": "Finish setup in 5 minutes",
            "body": "Hi {{ name }}, you are {{ progress }}% done.",
            "from": "hello@example.com",
        },
    )
    dd.create_condition(
        reminder.id,
        condition_type="hook",
        hook_function="setup_completed",
        operator="eq",
        expected_value="false",
    )
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
        config={
            "subject": "Your weekly summary",
            "body": "Here is your week, {{ name }}.",
            "from": "digest@example.com",
        },
    )
    sms = dd.create_step(
        v1.id,
        name="Activation SMS",
        key="activation_sms",
        position=5,
        channel="sms",
        timing={"type": "delay", "delay_amount": 7, "delay_unit": "days"},
        config={"body": "Hi {{ name }}! You've completed {{ progress }}% of setup."},
    )
    dd.create_condition(
        sms.id,
        condition_type="enrollment_data",
        field_path="plan_tier",
        operator="eq",
        expected_value="enterprise",
    )
    return seq


def run(
    database_url: str | None = None,
    *,
    schema: str = "dripdrop_demo",
    days: int = 10,
    console: Console | None = None,
) -> dict[str, int]:
    """Run the demo end to end; returns counts by execution state."""
    from sqlalchemy import text

    from dripdrop import DripDrop

    out = console or Console()
    clock = FakeClock(datetime(2030, 1, 2, 14, 0, tzinfo=UTC))  # a Wednesday afternoon
    dd = DripDrop(database_url, schema=schema, clock=clock)
    with dd.runtime.engine.begin() as conn:  # a fresh demo every run
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    dd.setup()
    out.print(
        f"[bold]DripDrop demo[/bold] — schema [cyan]{schema}[/cyan] on "
        f"{'the embedded PostgreSQL' if dd.runtime.embedded else 'your database'}"
    )
    define(dd)
    for s in SUBSCRIBERS:
        dd.enroll(
            "saas_onboarding",
            {"type": "User", "id": s["id"]},
            data={k: v for k, v in s.items() if k != "id"},
        )
    out.print(
        f"Enrolled {len(SUBSCRIBERS)} users at {clock().isoformat()}; "
        f"running {days} virtual days…\n"
    )
    end = clock() + timedelta(days=days)
    from dripdrop.worker.batch import next_due_at

    while True:
        with dd.runtime.engine.begin() as conn:
            nxt = next_due_at(dd.runtime, conn)
        if nxt is None or nxt > end:
            break
        clock.set(max(nxt, clock()))
        dd.run_due()
    counts: dict[str, int] = {}
    out.print("\n[bold]Timeline per subscriber[/bold]")
    for s in SUBSCRIBERS:
        e = dd.get_enrollment("saas_onboarding", "User", s["id"])
        out.print(f"[bold]{s['name']}[/bold] ({s['plan_tier']}) — enrollment {e.state}")
        steps = {st.id: st.key for st in dd.list_steps(e.sequence_version_id)}
        for x in dd.list_executions(e.id):
            counts[x.state] = counts.get(x.state, 0) + 1
            when = x.scheduled_for.strftime("%a %d %b %H:%M UTC") if x.scheduled_for else "—"
            note = f" — {x.error_message}" if x.error_message else ""
            out.print(f"  {when}  {steps[x.step_id]:<22} {x.channel:<7} {x.state}{note}")
    dd.close()
    return counts
