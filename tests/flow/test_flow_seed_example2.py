"""The seed's Example 2 (Lead Nurture) with a real hot-lead branch: a lead score from an HTTP hook
on a local server sends hot leads (score ≥ 70) down the pitch path and the others down the
nurture path; simulate() shows the branch taken and why."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from werkzeug import Request, Response

from dripdrop.testing import outbox

SCORES = {"hot@example.com": 85, "cold@example.com": 20}


@pytest.fixture
def score_server(httpserver):
    asked: list[str] = []

    def score(request: Request) -> Response:
        email = json.loads(request.data)["email"]
        asked.append(email)
        return Response(json.dumps({"score": SCORES[email]}), content_type="application/json")

    httpserver.expect_request("/hooks/catch/lead", method="POST").respond_with_handler(score)
    return httpserver, asked


def build(dd, server):
    for channel in ("email", "slack", "webhook"):
        dd.create_channel_adapter(name=f"mem-{channel}", channel=channel, provider="memory")
    seq = dd.create_sequence(name="Lead Nurture", key="lead_nurture")
    v1 = dd.create_sequence_version(seq.id, version=1)
    hook = dd.create_http_hook(
        seq.id,
        name="Lead Score",
        key="lead_score",
        method="POST",
        url=server.url_for("/hooks/catch/lead"),
        body_template='{"email": "{{ email }}"}',
        response_path="score",
        response_type="number",
    )

    def step(name, kind="email", days=0, **config):
        config = config or {"subject": name, "body": "..."}
        timing = (
            {
                "type": "delay",
                "delay_amount": days,
                "delay_unit": "days",
                "relative_to": "previous_step",
            }
            if days
            else {"type": "immediate"}
        )
        return dd.create_step(v1.id, name=name, channel=kind, timing=timing, config=config)

    initial = step("Initial Email", subject="Quick question about {{ company_name }}", body="Hi")
    pitch = step("Enterprise Pitch", days=3)
    sales = step(
        "Notify Sales",
        "slack",
        days=0,
        channel="#sales",
        text="Hot lead: {{ name }} (score: {{ lead_score }})",
    )
    tips = step("Nurture Tips", days=3)
    case = step("Case Study", days=7)
    crm = step(
        "Update CRM",
        "webhook",
        days=14,
        url="https://crm.example.com/leads/{{ subscriber_id }}",
        method="PATCH",
        body='{"status": "nurtured"}',
    )
    hot = dd.create_transition(
        v1.id, from_step_id=initial.id, to_step_id=pitch.id, condition_mode="all", priority=10
    )
    dd.create_condition(
        transition_id=hot.id, http_hook_id=hook.id, operator="gte", expected_value="70"
    )
    dd.create_transition(v1.id, from_step_id=initial.id, to_step_id=tips.id, priority=20)
    dd.create_transition(v1.id, from_step_id=sales.id, to_step_id=None)  # the hot path ends
    dd.activate_version(v1.id)
    return {"crm": crm, "case": case}


def test_hot_leads_take_the_pitch_path_and_the_others_are_nurtured(dd, env, score_server):
    server, asked = score_server
    build(dd, server)
    for sid, email in (("hot", "hot@example.com"), ("cold", "cold@example.com")):
        dd.enroll(
            "lead_nurture",
            {"type": "Lead", "id": sid},
            data={"name": sid.title(), "email": email, "company_name": "Acme"},
        )
    for _ in range(30):
        env.advance_and_run(days=1)

    def got(sid):
        return [
            m.payload.get("subject") or m.payload.get("text") or m.payload.get("body")
            for m in outbox()
            if (m.channel != "webhook" and sid in (m.recipient or ""))
            or m.payload.get("text", "").startswith(f"Hot lead: {sid.title()}")
        ]

    assert got("hot") == [
        "Quick question about Acme",
        "Enterprise Pitch",
        "Hot lead: Hot (score: 85)",
    ]
    assert got("cold") == ["Quick question about Acme", "Nurture Tips", "Case Study"]
    (crm,) = outbox("webhook")
    assert crm.recipient.endswith("/leads/cold")
    # Once per lead for its branch, and once more for the hot lead's Slack text.
    assert asked.count("cold@example.com") == 1 and asked.count("hot@example.com") == 2
    for sid in ("hot", "cold"):
        e = dd.get_enrollment("lead_nurture", "Lead", sid)
        assert (e.state, e.exit_reason) == (
            "completed",
            "transition" if sid == "hot" else "completed",
        )


def test_simulate_shows_the_branch_taken_and_why(dd, score_server):
    server, _ = score_server
    build(dd, server)
    hot = dd.simulate(
        "lead_nurture", data={"email": "hot@example.com", "name": "H"}, until=timedelta(days=40)
    )
    assert hot.steps("sent") == ["initial_email", "enterprise_pitch", "notify_sales"]
    first = hot.entries[0]
    assert "transition (priority 10) to 'enterprise_pitch'" in first.next
    assert "HTTP hook 'lead_score' is 85" in first.next
    cold = dd.simulate(
        "lead_nurture", data={"email": "cold@example.com", "name": "C"}, until=timedelta(days=40)
    )
    assert cold.steps("sent") == ["initial_email", "nurture_tips", "case_study", "update_crm"]
    assert "not taken before" in cold.entries[0].next and "is 20" in cold.entries[0].next
    assert "next: transition" in str(cold.entries[0])
