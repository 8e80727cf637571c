"""The pages the first-run test does not walk through, in the browser: each renders at 1280
and 390 px without a blocked resource or a script error, and stored markup stays inert."""

from __future__ import annotations

from dashboard_support import shoot, sign_in
from playwright.sync_api import expect

XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"


def test_remaining_pages_render_and_stay_inert(dd, server, admin_key, page):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(server.url + "/login")
    shoot(page, "login")
    sign_in(page, server, admin_key)

    seq = dd.create_sequence(name=f"Trial {XSS}", key="trial", description="14-day trial")
    v1 = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(
        v1.id,
        name="Welcome",
        channel="email",
        config={"subject": "Hi {{ name }}", "body": "<p>Welcome</p>"},
    )
    step = dd.create_step(
        v1.id,
        name="Upgrade nudge",
        channel="email",
        timing={"type": "delay", "delay_amount": 7, "delay_unit": "days"},
        config={"subject": "Upgrade?", "body": "<p>Pro plan</p>"},
    )
    dd.create_condition(
        step.id,
        condition_type="enrollment_data",
        field_path="plan",
        operator="eq",
        expected_value="free",
    )
    v2 = dd.create_sequence_version(seq.id)
    dd.create_step(
        v2.id,
        name="Welcome",
        channel="email",
        config={"subject": "Welcome {{ name }}!", "body": "<p>Welcome</p>"},
    )
    dd.create_step(
        v2.id,
        name="Survey",
        channel="sms",
        timing={"type": "cron", "cron_expression": "0 10 * * FRI", "timezone": "Europe/Paris"},
        config={"body": "How was week 1?"},
    )
    dd.create_http_hook(
        seq.id,
        name="Lead score",
        key="lead_score",
        url="https://crm.example.com/score",
        response_path="score",
        response_type="number",
        auth_type="bearer",
        auth_config={"token": "hook-secret-token-123"},
    )

    base = server.url
    page.goto(f"{base}/sequences/{seq.id}")
    expect(page.locator("h1")).to_contain_text("Trial")
    shoot(page, "sequence")
    page.click("button:has-text('Compare')")
    expect(page.locator(".diff-added")).to_have_count(2)  # Survey, in the right column
    expect(page.locator(".diff")).to_contain_text("At 10:00, only on Friday (Paris)")
    shoot(page, "versions-compare")
    page.goto(f"{base}/versions/{v1.id}")
    expect(page.locator(".conditions")).to_contain_text("only if data plan is free")
    page.click("#step-upgrade_nudge >> text=Edit")
    expect(page.locator("input[name='timing.delay_amount']")).to_have_value("7")
    shoot(page, "step-edit")
    page.goto(f"{base}/hooks")
    shoot(page, "hooks")
    page.click("table a:has-text('Lead score')")
    expect(page.locator(".secret-set")).to_contain_text("••••")
    assert "hook-secret-token-123" not in page.content()
    shoot(page, "hook-edit")
    page.goto(f"{base}/analytics")
    shoot(page, "analytics")
    page.goto(f"{base}/template-builder")
    shoot(page, "template-builder")
    page.goto(f"{base}/sequences")
    expect(page.locator("table")).to_contain_text("<script>alert(2)</script>")  # as text
    assert dialogs == []
    assert not page.context.csp_errors
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
