"""``check_templates`` / ``dripdrop templates check`` / ``POST /templates/check`` against real
PostgreSQL with real sequences: every step of every active version rendered with sample data."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from dripdrop.cli import app as cli
from dripdrop.db import models as m
from dripdrop.web import create_app

runner = CliRunner()


def _sequence(dd, key: str, *, category: str | None = None, tenant_key: str | None = None):
    seq = dd.create_sequence(name=key.title(), key=key, category=category, tenant_key=tenant_key)
    return dd.create_sequence_version(seq.id, active=True)


def _kinds(problems) -> set[tuple[str, str, str]]:
    return {(p.step_key, p.kind, p.field) for p in problems}


def test_a_clean_sequence_has_no_problems(dd) -> None:
    version = _sequence(dd, "clean")
    dd.create_step(
        version.id,
        name="Welcome",
        channel="email",
        config={"subject": "Hi {{ name }}", "body": "<p>{{ trial_days_remaining }} days</p>"},
    )
    dd.create_step(version.id, name="Nudge", channel="sms", config={"body": "Hi {{ name }}"})
    assert dd.check_templates() == []
    data = {"name": "Ada", "trial_days_remaining": 3, "email": "a@example.com", "phone": "+1555"}
    assert dd.check_templates("clean", data) == []


def test_unknown_variables_and_missing_recipients_with_real_data(dd) -> None:
    version = _sequence(dd, "onboarding")
    dd.create_step(
        version.id,
        name="Welcome",
        channel="email",
        config={"subject": "Hi {{ name }}", "body": "Your plan: {{ plan.name }}"},
    )
    dd.create_step(version.id, name="Text", channel="sms", config={"body": "Hi {{ name }}"})
    problems = dd.check_templates("onboarding", {"name": "Ada", "email": "ada@example.com"})
    assert _kinds(problems) == {
        ("welcome", "unknown_variable", "config.body"),
        ("text", "recipient", "config.to"),
    }
    unknown = next(p for p in problems if p.kind == "unknown_variable")
    assert "plan" in unknown.message and unknown.severity == "error"
    assert str(unknown).startswith("onboarding v1 step 'welcome': config.body:")
    # Generated sample data holds every name the templates read and the recipient fields.
    assert dd.check_templates("onboarding") == []


def test_http_hook_keys_are_known_variables(dd) -> None:
    version = _sequence(dd, "hooked")
    dd.create_http_hook(
        version.sequence_id, name="Score", key="lead_score", url="https://example.com/score"
    )
    dd.create_step(
        version.id,
        name="Mail",
        channel="email",
        config={"subject": "S {{ lead_score }}", "body": "b"},
    )
    assert dd.check_templates("hooked", {"email": "ada@example.com"}) == []


def test_over_long_sms(dd) -> None:
    version = _sequence(dd, "sms")
    dd.create_step(
        version.id, name="Long", channel="sms", config={"body": "{{ name }} " + "x" * 500}
    )
    problems = dd.check_templates("sms", {"name": "Ada", "phone": "+15550100001"})
    assert _kinds(problems) == {("long", "sms_length", "config.body")}
    assert "4 segment(s) of 153" in problems[0].message
    assert dd.check_templates("sms", {"name": "Ada", "phone": "+1555"}, max_sms_segments=4) == []


def test_mjml_that_breaks_only_with_data(dd) -> None:
    version = _sequence(dd, "mjml")
    body = (
        "<mjml><mj-body>{% if vip %}<mj-section>{% endif %}<mj-column><mj-text>Hi {{ name }}"
        "</mj-text></mj-column></mj-body></mjml>"
    )
    dd.create_step(  # valid as created: with no data, ``vip`` is false
        version.id,
        name="Fancy",
        channel="email",
        config={"subject": "Hi", "body": body, "template_engine": "mjml"},
    )
    problems = dd.check_templates("mjml")
    assert _kinds(problems) == {("fancy", "mjml", "config.body")}
    assert "mjml error" in problems[0].message


def test_marketing_emails_need_an_unsubscribe_link(dd) -> None:
    version = _sequence(dd, "promo", category="marketing")
    dd.create_step(
        version.id, name="Sale", channel="email", config={"subject": "Sale", "body": "50% off"}
    )
    dd.create_step(
        version.id,
        name="Sale 2",
        key="sale_2",
        channel="email",
        config={"subject": "Sale", "body": '50% off <a href="{{ unsubscribe_url }}">stop</a>'},
    )
    assert _kinds(dd.check_templates("promo")) == {("sale", "unsubscribe", "config.body")}
    # The same step in a transactional sequence is fine.
    other = _sequence(dd, "receipts")
    dd.create_step(other.id, name="Sale", channel="email", config={"subject": "S", "body": "b"})
    assert dd.check_templates("receipts") == []


def test_a_stored_template_that_no_longer_compiles(dd) -> None:
    version = _sequence(dd, "legacy")
    step = dd.create_step(
        version.id, name="Old", channel="email", config={"subject": "S", "body": "b"}
    )
    with dd.runtime.engine.begin() as conn:  # written before templates were validated
        conn.execute(
            update(m.Step.__table__)
            .where(m.Step.__table__.c.id == step.id)
            .values(config={"subject": "{% if %}", "body": "b"})
        )
    assert _kinds(dd.check_templates("legacy")) == {("old", "syntax", "config.subject")}


def test_scope_drafts_tenants_and_lookup_errors(dd) -> None:
    import pytest

    from dripdrop.errors import NotFound, ValidationError

    _sequence(dd, "a")
    seq = dd.create_sequence(name="Draft", key="draft")
    dd.create_sequence_version(seq.id, active=False)
    assert dd.check_templates() == []  # a draft among many is not reported
    [problem] = dd.check_templates("draft")
    assert (problem.kind, problem.severity) == ("no_active_version", "warning")
    other = _sequence(dd, "theirs", tenant_key="acme")
    dd.create_step(other.id, name="S", channel="sms", config={"body": "x" * 1000})
    assert {p.sequence_key for p in dd.check_templates()} == {"theirs"}
    assert dd.check_templates(tenant_key="beta") == []
    assert len(dd.check_templates("theirs", tenant_key="acme")) == 1
    with pytest.raises(NotFound):
        dd.check_templates("theirs")
    with pytest.raises(ValidationError) as caught:
        dd.check_templates(7, data=[1], max_sms_segments=0)
    assert set(caught.value.errors) == {"sequence_key", "data", "max_sms_segments"}


def test_module_templates_are_reported_as_not_checked(dd) -> None:
    version = _sequence(dd, "mod")
    dd.create_step(
        version.id,
        name="Mod",
        channel="email",
        template_type="module",
        template_module="json",
        template_function="dumps",
    )
    [problem] = dd.check_templates("mod")
    assert (problem.kind, problem.severity) == ("not_checked", "warning")


def test_cli_exit_codes_and_data_file(dd, tmp_path: Path) -> None:
    version = _sequence(dd, "cli_seq")
    dd.create_step(
        version.id, name="Mail", channel="email", config={"subject": "Hi {{ name }}", "body": "b"}
    )
    base = ["--database-url", dd.runtime.database_url, "--schema", dd.schema]
    ok = runner.invoke(cli, ["templates", "check", *base])
    assert ok.exit_code == 0, ok.output
    assert "renders cleanly" in ok.output
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"name": "Ada"}))
    bad = runner.invoke(cli, ["templates", "check", "cli_seq", "--data", str(data), *base])
    assert bad.exit_code == 1, bad.output
    assert "recipient" in bad.output and "mail" in bad.output
    as_json = runner.invoke(
        cli, ["templates", "check", "cli_seq", "--data", str(data), "--json", *base]
    )
    assert as_json.exit_code == 1
    assert json.loads(as_json.output)["items"][0]["kind"] == "recipient"
    data.write_text("[1, 2]")
    wrong = runner.invoke(cli, ["templates", "check", "--data", str(data), *base])
    assert wrong.exit_code == 2 and "JSON object" in wrong.output
    # Warnings pass unless --strict.
    draft = dd.create_sequence(name="Draft", key="draft")
    dd.create_sequence_version(draft.id, active=False)
    assert runner.invoke(cli, ["templates", "check", "draft", *base]).exit_code == 0
    assert runner.invoke(cli, ["templates", "check", "draft", "--strict", *base]).exit_code == 1


def test_rest_check(dd) -> None:
    version = _sequence(dd, "rest_seq")
    dd.create_step(version.id, name="Text", channel="sms", config={"body": "Hi {{ name }}"})
    tenant = _sequence(dd, "tenant_seq", tenant_key="acme")
    dd.create_step(tenant.id, name="Text", channel="sms", config={"body": "{{ x }}" + "é" * 500})
    write = dd.create_api_key("w", scopes=["write"])
    bound = dd.create_api_key("b", scopes=["write"], tenant_key="acme")
    with TestClient(create_app(dd)) as client:
        headers = {"Authorization": f"Bearer {write.secret}"}
        answer = client.post(
            "/api/v1/templates/check",
            json={"sequence_key": "rest_seq", "data": {"name": "Ada"}},
            headers=headers,
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["ok"] is False and body["next_cursor"] is None
        assert [(p["step_key"], p["kind"]) for p in body["items"]] == [("text", "recipient")]
        answer = client.post("/api/v1/templates/check", json={}, headers=headers)
        assert {p["sequence_key"] for p in answer.json()["items"]} == {"tenant_seq"}
        # A tenant-bound key sees only its tenant; another tenant's key is refused.
        bound_headers = {"Authorization": f"Bearer {bound.secret}"}
        answer = client.post("/api/v1/templates/check", json={}, headers=bound_headers)
        assert [p["kind"] for p in answer.json()["items"]] == ["sms_length"]
        answer = client.post(
            "/api/v1/templates/check", json={"sequence_key": "rest_seq"}, headers=bound_headers
        )
        assert answer.status_code == 404
        answer = client.post("/api/v1/templates/check", json={"data": "x"}, headers=headers)
        assert answer.status_code == 422
