"""In Chromium: the step builder's timeline preview runs the version on screen (a draft shows
its own steps: simulate(version_id=...), the active version its own); a tenant's session."""

from __future__ import annotations

from dashboard_support import shoot, sign_in
from playwright.sync_api import expect

EMAIL = {"subject": "Hi {{ name }}", "body": "<p>Hi</p>"}


def test_timeline_preview_of_a_draft_shows_the_drafts_steps(dd, server, admin_key, page):
    dd.create_channel_adapter(name="Mail", channel="email", provider="memory")
    dd.create_channel_adapter(name="Texts", channel="sms", provider="memory")
    seq = dd.create_sequence(name="Onboarding", key="onboarding")
    active = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(active.id, name="Welcome", channel="email", config=EMAIL)
    draft = dd.create_sequence_version(seq.id)
    dd.create_step(draft.id, name="Hello from the draft", channel="email", config=EMAIL)
    dd.create_step(
        draft.id,
        name="Draft tips",
        channel="sms",
        timing={"type": "delay", "delay_amount": 2, "delay_unit": "days"},
        config={"body": "Tips for {{ name }}"},
    )
    sign_in(page, server, admin_key)

    page.goto(f"{server.url}/versions/{draft.id}")
    expect(page.locator("h1 .badge")).to_have_text("draft")
    preview = page.locator("section.panel", has=page.locator("h2", has_text="Timeline preview"))
    expect(preview).to_contain_text("this draft")
    preview.locator("textarea[name=data]").fill(
        '{"name": "Ada", "email": "ada@example.com", "phone": "+15555550100"}'
    )
    preview.locator("button:has-text('Simulate')").click()
    timeline = page.locator("#timeline .timeline")
    expect(timeline.locator("li")).to_have_count(2)
    expect(timeline.locator("li").nth(0)).to_contain_text("hello_from_the_draft")
    expect(timeline.locator("li").nth(1)).to_contain_text("draft_tips")
    expect(timeline.locator("li").nth(1)).to_contain_text("+15555550100")
    expect(timeline).not_to_contain_text("welcome")
    expect(page.locator("#timeline")).to_contain_text("Final state: completed")
    shoot(page, "builder-draft-timeline")

    # The active version previews its own steps; the draft stayed a draft.
    page.goto(f"{server.url}/versions/{active.id}")
    page.locator("button:has-text('Simulate')").click()
    expect(page.locator("#timeline .timeline li")).to_have_count(1)
    expect(page.locator("#timeline .timeline")).to_contain_text("welcome")
    assert dd.get_active_version(seq.id).id == active.id
    assert not page.context.csp_errors


def test_a_tenant_session_in_the_browser(dd, server, page):
    """Signed in with a tenant's admin key: the nav names the tenant, the lists hold its rows."""
    for tenant in ("acme", "beta"):
        seq = dd.create_sequence(
            name=f"{tenant.title()} onboarding", key="onboarding", tenant_key=tenant
        )
        version = dd.create_sequence_version(seq.id, active=True)
        dd.create_step(version.id, name="Welcome", channel="email", config=EMAIL)
    key = dd.create_api_key("acme", scopes=["admin"], tenant_key="acme").secret
    sign_in(page, server, key)
    page.goto(f"{server.url}/sequences")
    expect(page.locator("nav .tenant")).to_have_text("acme")
    expect(page.locator("table")).to_contain_text("Acme onboarding")
    expect(page.locator("table")).not_to_contain_text("Beta onboarding")
    shoot(page, "sequences-tenant")
    assert not page.context.csp_errors
