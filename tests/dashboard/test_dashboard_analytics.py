"""The Analytics page in Chromium: the funnel's SVG bars, drop-off per step, per-channel and
per-provider tables, the version and time-range pickers, empty states — from the rollups after
a real worker run — without a script or CSP error, at 1280 and 390 px."""

from __future__ import annotations

from datetime import timedelta

from dashboard_support import run_due, shoot, sign_in
from playwright.sync_api import expect


def _sequence(dd) -> dict:
    seq = dd.create_sequence(name="Onboarding", key="onboarding")
    version = dd.create_sequence_version(seq.id, active=True)
    ok = dd.create_channel_adapter(name="Mail OK", channel="email", provider="memory")
    bad = dd.create_channel_adapter(
        name="Mail down", channel="email", provider="memory", config={"fail": "permanent"}
    )
    body = {"subject": "Hi {{ name }}", "body": "<p>Hello</p>"}
    dd.create_step(
        version.id, name="Welcome", channel="email", config=body, channel_adapter_id=ok.id
    )
    pro = dd.create_step(
        version.id, name="Pro tips", channel="email", config=body, channel_adapter_id=ok.id
    )
    dd.create_condition(pro.id, field_path="plan", operator="eq", expected_value="pro")
    dd.create_step(
        version.id, name="Survey", channel="email", config=body, channel_adapter_id=bad.id
    )
    return {"seq": seq, "version": version}


def test_analytics_page(dd, env, server, admin_key, page) -> None:
    sign_in(page, server, admin_key)
    page.goto(server.url + "/analytics")
    expect(page.locator(".empty")).to_contain_text("No sequences yet")

    world = _sequence(dd)
    for i in range(8):
        plan = "pro" if i < 2 else "free"
        dd.enroll(
            "onboarding", {"type": "User", "id": i}, data={"email": f"u{i}@x.io", "plan": plan}
        )
    run_due(dd)
    dd.create_sequence_version(world["seq"].id)  # a draft: v2, nothing enrolled yet

    page.goto(server.url + "/analytics")
    funnel = page.locator("table.funnel tbody tr")
    expect(funnel).to_have_count(1 + 3 + 3)  # enrolled, three steps, completed/exited/cancelled
    expect(funnel.nth(0)).to_contain_text("8")
    expect(page.locator("table.funnel svg")).to_have_count(7)
    # The bars are as wide as their share of the enrolled.
    widths = page.locator("table.funnel rect.bar").evaluate_all(
        "rects => rects.map(r => Number(r.getAttribute('width')))"
    )
    assert widths[:4] == [100, 100, 100, 100]
    drop = page.get_by_role("table", name="Drop-off per step")
    expect(drop).to_contain_text("Pro tips")
    expect(drop.locator("tbody tr").nth(1)).to_contain_text("6")  # skipped (free plans)
    providers = page.get_by_role("table", name="Per provider")
    expect(providers).to_contain_text("Mail OK")
    expect(providers).to_contain_text("Mail down")
    expect(providers.locator("tr", has_text="Mail down")).to_contain_text("100.0 %")
    expect(page.get_by_role("table", name="Per channel")).to_contain_text("email")
    shoot(page, "analytics")

    # The version picker: the draft has nothing yet.
    page.select_option("select[name=version]", label="v2 · 0 enrolled")
    page.click("button:has-text('Show')")
    expect(page.locator(".empty")).to_contain_text("Nothing happened in this range")

    # The time range: a custom day range before anything happened is empty too.
    earlier = (env.clock() - timedelta(days=10)).date().isoformat()
    page.goto(f"{server.url}/analytics?sequence={world['seq'].id}&from={earlier}&to={earlier}")
    expect(page.locator(".empty")).to_contain_text("Nothing happened in this range")
    page.goto(f"{server.url}/analytics?sequence={world['seq'].id}&range=24h")
    expect(page.locator("table.funnel tbody tr").nth(0)).to_contain_text("8")
    assert page.console_errors == []
