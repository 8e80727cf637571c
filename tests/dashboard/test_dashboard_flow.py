"""The dashboard in a real browser: the path of a first-time user, from sign-in to a replayed
failure, with screenshots of every page at 1280 and 390 px."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx2
from dashboard_support import run_due, shoot, sign_in
from playwright.sync_api import expect

MJML = (
    "<mjml><mj-body><mj-section><mj-column>"
    "<mj-text font-size='20px'>Hello {{ name }}, welcome aboard!</mj-text>"
    "</mj-column></mj-section></mj-body></mjml>"
)


def add_step(page, name: str, channel: str, timing: dict[str, str], fields: dict[str, str]):
    form = page.locator("#add-step form")
    form.locator("input[name=name]").fill(name)
    if channel != "email":
        form.locator("select[name=channel]").select_option(channel)
        # htmx swaps in the channel's own fields
        expect(form.locator("input[name='config.subject']")).to_have_count(0)
    form.locator("select[name='timing.type']").select_option(timing.pop("type"))
    for field, value in timing.items():
        locator = form.locator(f"[name='{field}']")
        if locator.evaluate("e => e.tagName") == "SELECT":
            locator.select_option(value)
        else:
            locator.fill(value)
    for field, value in fields.items():
        form.locator(f"[name='config.{field}']").fill(value)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state("load")


def create_adapter(
    page,
    base: str,
    choice: str,
    name: str,
    config: dict[str, str] | None = None,
    credentials: dict[str, str] | None = None,
):
    page.goto(base + "/adapters")
    page.select_option("select[name=provider]", choice)
    page.click("text=Continue")
    page.fill("input[name=name]", name)
    for field, value in (credentials or {}).items():
        page.fill(f"input[name='credentials.{field}']", value)
    for field, value in (config or {}).items():
        page.fill(f"[name='config.{field}']", value)
    page.click("button:has-text('Create adapter')")
    expect(page.locator("h1")).to_contain_text(name)


def test_first_sequence_end_to_end(dd, clock, server, admin_key, page):
    base = server.url
    sign_in(page, server, admin_key)
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator(".empty")).to_contain_text("Create a sequence")
    shoot(page, "overview-empty")

    # A new sequence lands in the builder of its first draft.
    page.click("nav >> text=Sequences")
    shoot(page, "sequences-empty")
    page.fill("input[name=name]", "Onboarding")
    page.fill("input[name=key]", "onboarding")
    page.click("button:has-text('Create sequence')")
    expect(page.locator("h1")).to_contain_text("Version 1")
    expect(page.locator(".flow .empty")).to_contain_text("No steps yet")
    shoot(page, "builder-empty")

    add_step(
        page,
        "Welcome",
        "email",
        {"type": "immediate"},
        {"subject": "Welcome, {{ name }}", "body": MJML},
    )
    expect(page.locator(".step")).to_have_count(1)

    # A bad schedule is refused, and the message sits next to the field.
    add_step(
        page,
        "Monday nudge",
        "sms",
        {
            "type": "cron",
            "timing.cron_expression": "every blursday at 9am",
            "timing.timezone": "America/New_York",
        },
        {"body": "Hi {{ name }}, your first week starts now."},
    )
    error = page.locator("#add-step .field.invalid .field-error")
    expect(error.first).to_be_visible()
    bad = page.locator("#add-step .field.invalid input[name='timing.cron_expression']")
    expect(bad).to_be_visible()
    shoot(page, "builder-validation-error")
    page.locator("#add-step input[name='timing.cron_expression']").fill("every monday at 9am")
    page.locator("#add-step button[type=submit]").click()
    page.wait_for_load_state("load")
    expect(page.locator(".step")).to_have_count(2)

    add_step(
        page,
        "Follow-up",
        "email",
        {"type": "delay", "timing.delay_amount": "2", "timing.delay_unit": "days"},
        {"subject": "How is it going, {{ name }}?", "body": "<p>Reply to this email.</p>"},
    )
    steps = page.locator(".step")
    expect(steps).to_have_count(3)
    expect(steps.nth(0)).to_contain_text("immediately at enrollment")
    expect(steps.nth(1)).to_contain_text("At 09:00, only on Monday (New York)")
    expect(steps.nth(2)).to_contain_text("2 days after enrollment")

    # Template previews: the email's MJML compiled in a sandboxed frame; SMS with segments.
    first = steps.nth(0)
    first.locator("summary").click()
    first.locator("button:has-text('Preview')").click()
    frame = first.locator("iframe.email-frame")
    expect(frame).to_have_attribute("sandbox", "")
    expect(first.locator(".preview-subject")).to_have_text("Welcome, Ada")
    email = page.frame_locator(f"#{first.get_attribute('id')} iframe").locator("body")
    expect(email).to_contain_text("Hello Ada, welcome aboard!")
    second = steps.nth(1)
    second.locator("summary").click()
    second.locator("button:has-text('Preview')").click()
    expect(second.locator("#sms-segments")).to_contain_text("GSM-7 · 1 segment")
    shoot(page, "builder-three-steps")

    # Activation shows the readiness problems first: no adapter can send email or SMS yet.
    page.click("#activate")
    expect(page.locator("#problems")).to_contain_text("adapter")
    shoot(page, "builder-activate-problems")
    version_url = page.url.rsplit("/activate", 1)[0]

    # Adapters: memory ones to deliver (SMS set to fail), and one with a secret.
    create_adapter(page, base, "email/memory", "Email (memory)")
    create_adapter(page, base, "sms/memory", "SMS (memory)", config={"fail": "permanent"})
    secret = "key-Dashb0ard-S3cret-4242"
    create_adapter(
        page,
        base,
        "email/mailgun",
        "Mailgun",
        credentials={"api_key": secret},
        config={"domain": "mg.example.com"},
    )
    expect(page.locator(".secret-set")).to_contain_text("•••• set")
    assert secret not in page.content()
    shoot(page, "adapter-edit")
    page.goto(base + "/adapters")
    expect(page.locator("table")).to_contain_text("Mailgun")
    assert secret not in page.content()
    shoot(page, "adapters")

    page.goto(version_url)
    page.click("#activate")
    expect(page.locator("h1 .badge")).to_have_text("active")

    # Enroll through the REST API, then watch the overview change without a reload.
    page.goto(base + "/")
    expect(page.locator("#sent-total")).to_have_text("0")
    answer = httpx2.post(
        base + "/api/v1/enrollments",
        headers={"Authorization": f"Bearer {admin_key}"},
        json={
            "sequence_key": "onboarding",
            "subscriber": {"type": "User", "id": "42"},
            "data": {"name": "Ada", "email": "ada@example.com", "phone": "+15555550100"},
        },
    )
    assert answer.status_code == 201, answer.text
    run_due(dd)
    expect(page.locator("#sent-total")).to_have_text("1", timeout=15_000)
    expect(page.locator("#sent-per-minute")).to_have_text("1")
    shoot(page, "overview-live")

    # The SMS step runs on Monday 9:00 New York and fails (the adapter is set to fail).
    clock.advance(timedelta(hours=6))
    run_due(dd)

    # The enrollment's timeline: what was sent, the failure, and what is planned.
    page.click("nav >> text=Enrollments")
    page.fill("input[name=subscriber]", "User:42")
    page.click("button:has-text('Filter')")
    page.click("text=User:42")
    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text("Welcome")
    expect(timeline.locator(".tl-failed")).to_contain_text("Monday nudge")
    shoot(page, "enrollment-timeline")

    # Fix the adapter, then replay the failed execution from the log.
    page.goto(base + "/adapters")
    page.click("text=SMS (memory)")
    page.fill("input[name='config.fail']", "")
    page.click("button:has-text('Save')")
    page.goto(base + "/executions?state=failed")
    expect(page.locator("tbody tr")).to_have_count(1)
    shoot(page, "executions-failed")
    page.locator("tbody tr a").first.click()
    expect(page.locator("pre.error-text")).to_contain_text("configured to fail")
    page.click("#replay")
    run_due(dd)
    page.reload()
    expect(page.locator("h1 .badge")).to_have_text("sent")
    shoot(page, "execution-detail")
    assert len(dd.list_executions(dd.get_enrollment("onboarding", "User", "42").id)) >= 3

    page.goto(base + "/enrollments")
    shoot(page, "enrollments")
    page.goto(base + "/executions")
    shoot(page, "executions")
    page.goto(base + "/sequences")
    shoot(page, "sequences")
    # The dashboard's own policy blocked nothing and no script failed. (The email preview's
    # frame refuses the web fonts MJML links to: that is its policy doing its job.)
    blocked = [
        e
        for e in page.console_errors
        if "Content Security Policy" in e and "fonts.googleapis.com" not in e
    ]
    assert not blocked, blocked
    assert not page.context.csp_errors, page.context.csp_errors
    assert re.search(r"/sequences$", page.url)
