"""The seed's Example 2 end to end: a lead score from an HTTP hook decides a step (condition) and
appears in a Slack message (template), with Mailgun, Slack and a CRM webhook on local servers."""

from __future__ import annotations

import json

import pytest
from werkzeug import Request, Response

SCORES = {"hot@example.com": 85, "cold@example.com": 20}


@pytest.fixture
def servers(httpserver):
    calls: dict[str, list] = {"score": [], "mailgun": [], "slack": [], "crm": []}

    def score(request: Request) -> Response:
        assert request.headers["Authorization"] == "Bearer zap-token"
        body = json.loads(request.data)
        calls["score"].append(body)
        return Response(
            json.dumps({"score": SCORES[body["email"]]}), content_type="application/json"
        )

    def mailgun(request: Request) -> Response:
        assert request.authorization.username == "api"
        assert request.authorization.password == "key-test"
        calls["mailgun"].append(dict(request.form))
        return Response(
            json.dumps({"id": f"<{len(calls['mailgun'])}@mg>", "message": "Queued. Thank you."}),
            content_type="application/json",
        )

    def slack(request: Request) -> Response:
        calls["slack"].append(json.loads(request.data))
        return Response("ok")

    def crm(request: Request) -> Response:
        calls["crm"].append((request.method, request.path, json.loads(request.data)))
        return Response(json.dumps({"updated": True}), content_type="application/json")

    httpserver.expect_request("/hooks/catch/lead", method="POST").respond_with_handler(score)
    httpserver.expect_request("/v3/mg.example.com/messages", method="POST").respond_with_handler(
        mailgun
    )
    httpserver.expect_request("/services/T1/B1/xyz", method="POST").respond_with_handler(slack)
    httpserver.expect_request("/api/leads/hot", method="PATCH").respond_with_handler(crm)
    httpserver.expect_request("/api/leads/cold", method="PATCH").respond_with_handler(crm)
    return httpserver, calls


def build(dd, server):
    base = server.url_for("/").rstrip("/")
    dd.create_channel_adapter(
        name="Mailgun",
        channel="email",
        provider="mailgun",
        credentials={"api_key": "key-test"},
        config={"domain": "mg.example.com", "base_url": base, "from": "sales@example.com"},
    )
    dd.create_channel_adapter(
        name="Sales Slack",
        channel="slack",
        provider="webhook",
        credentials={"webhook_url": server.url_for("/services/T1/B1/xyz")},
    )
    dd.create_channel_adapter(name="CRM", channel="webhook", provider="http")
    seq = dd.create_sequence(name="Lead Nurture", key="lead_nurture")
    v1 = dd.create_sequence_version(seq.id, version=1, active=True)
    hook = dd.create_http_hook(
        seq.id,
        name="Lead Score",
        key="lead_score",
        method="POST",
        url=server.url_for("/hooks/catch/lead"),
        auth_type="bearer",
        auth_config={"token": "zap-token"},
        body_template='{"email": "{{ email }}"}',
        response_path="score",
        response_type="number",
    )
    dd.create_step(
        v1.id,
        name="Initial Email",
        position=1,
        channel="email",
        config={
            "subject": "Quick question about {{ company_name }}",
            "body": "<p>Hi {{ name }}</p>",
        },
    )
    pitch = dd.create_step(
        v1.id,
        name="Enterprise Pitch",
        position=2,
        channel="email",
        timing={"type": "delay", "delay_amount": 3, "delay_unit": "days"},
        config={"subject": "Enterprise plans for {{ company_name }}", "body": "<p>Let's talk</p>"},
    )
    dd.create_condition(pitch.id, http_hook_id=hook.id, operator="gte", expected_value="70")
    dd.create_step(
        v1.id,
        name="Notify Sales",
        position=3,
        channel="slack",
        timing={"type": "delay", "delay_amount": 3, "delay_unit": "days"},
        config={
            "channel": "#sales",
            "text": "🔥 Hot lead: {{ name }} at {{ company_name }} (score: {{ lead_score }})",
        },
    )
    dd.create_step(
        v1.id,
        name="Update CRM",
        position=4,
        channel="webhook",
        timing={"type": "delay", "delay_amount": 14, "delay_unit": "days"},
        config={
            "url": base + "/api/leads/{{ subscriber_id }}",
            "method": "PATCH",
            "body": '{"status": "unresponsive"}',
        },
    )
    return seq


def test_lead_score_drives_the_condition_and_the_slack_message(dd, env, servers):
    server, calls = servers
    build(dd, server)
    for sid, email, company in (
        ("hot", "hot@example.com", "Acme"),
        ("cold", "cold@example.com", "Initech"),
    ):
        dd.enroll(
            "lead_nurture",
            {"type": "Lead", "id": sid},
            data={"name": sid.title(), "email": email, "company_name": company},
        )
    assert dd.run_due().sent == 2
    assert sorted(c["subject"] for c in calls["mailgun"]) == [
        "Quick question about Acme",
        "Quick question about Initech",
    ]
    assert calls["score"] == []  # no step has needed the hook yet

    summary = env.advance_and_run(days=3)
    assert summary.sent == 3 and summary.skipped == 1
    pitches = [c for c in calls["mailgun"] if c["subject"].startswith("Enterprise")]
    assert [p["to"] for p in pitches] == ["hot@example.com"]
    texts = sorted(m["text"] for m in calls["slack"])
    assert texts == [
        "🔥 Hot lead: Cold at Initech (score: 20)",
        "🔥 Hot lead: Hot at Acme (score: 85)",
    ]
    assert all(m["channel"] == "#sales" for m in calls["slack"])
    # One call per execution that names the hook: the condition of step 2, the text of step 3.
    assert sorted(c["email"] for c in calls["score"]) == [
        "cold@example.com",
        "cold@example.com",
        "hot@example.com",
        "hot@example.com",
    ]

    cold = dd.get_enrollment("lead_nurture", "Lead", "cold")
    execs = {x.step_id: x for x in dd.list_executions(cold.id)}
    steps = {s.key: s.id for s in dd.list_steps(cold.sequence_version_id)}
    skipped = execs[steps["enterprise_pitch"]]
    assert skipped.state == "skipped" and "lead_score" in skipped.error_message
    slack = execs[steps["notify_sales"]]
    assert slack.payload["hook_values"] == {"lead_score": 20}
    assert slack.response["adapter"] == "Sales Slack"

    env.advance_and_run(days=11)
    assert sorted(calls["crm"]) == [
        ("PATCH", "/api/leads/cold", {"status": "unresponsive"}),
        ("PATCH", "/api/leads/hot", {"status": "unresponsive"}),
    ]
    assert dd.get_enrollment("lead_nurture", "Lead", "hot").state == "completed"


def test_hook_outside_the_allowed_network_fails_the_execution(env, servers, database_url):
    from dripdrop import DripDrop

    server, calls = servers
    strict = DripDrop(
        database_url, schema=env.schema, clock=env.clock, encryption_key=env.dd.runtime._key_source
    )
    build(strict, server)
    strict.enroll(
        "lead_nurture",
        {"type": "Lead", "id": "hot"},
        data={"name": "Hot", "email": "hot@example.com", "company_name": "Acme"},
    )
    strict.run_due()  # the first email's base_url is loopback too: refused
    e = strict.get_enrollment("lead_nurture", "Lead", "hot")
    first = strict.list_executions(e.id)[0]
    assert first.state == "failed"
    assert "127.0.0.1" in first.error_message or "loopback" in first.error_message
    assert calls["mailgun"] == [] and calls["score"] == []
    strict.close()
