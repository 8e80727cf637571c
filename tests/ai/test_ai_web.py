"""``POST /api/v1/templates/generate|improve|translate`` through TestClient, with a scripted
pydantic-ai model injected as ``app.state.template_model``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from scripted_models import BROKEN, WELCOME, Script

from dripdrop.web import create_app

VARS = ["name", "trial_days_remaining"]


@pytest.fixture
def app(dd):
    return create_app(dd)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def _headers(dd, *scopes: str) -> dict[str, str]:
    key = dd.create_api_key("t", scopes=list(scopes))
    return {"Authorization": f"Bearer {key.secret}"}


def test_generate_repairs_and_answers_the_template(dd, app, client) -> None:
    script = Script(BROKEN, WELCOME)
    app.state.template_model = script.model
    answer = client.post(
        "/api/v1/templates/generate",
        json={"description": "Welcome a trial user", "available_variables": VARS},
        headers=_headers(dd, "write"),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["subject"] == WELCOME["subject"]
    assert body["repairs"] == 1
    assert body["usage"]["requests"] == 2
    assert body["step_config"]["template_engine"] == "liquid"
    assert "preheader" not in body["step_config"]
    # The answer is ready for a step.
    seq = dd.create_sequence(name="S", key="s")
    version = dd.create_sequence_version(seq.id, active=True)
    step = dd.create_step(version.id, name="Welcome", channel="email", config=body["step_config"])
    assert step.config["subject"] == WELCOME["subject"]


def test_improve_and_translate(dd, app, client) -> None:
    headers = _headers(dd, "write")
    app.state.template_model = Script(WELCOME).model
    answer = client.post(
        "/api/v1/templates/improve",
        json={"template": WELCOME, "instruction": "shorter"},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    answer = client.post(
        "/api/v1/templates/translate",
        json={"template": {"text": "Hi {{ name }}"}, "channel": "slack", "language": "German"},
        headers=headers,
    )
    # The scripted model answers an email to a Slack request: its fields do not fit.
    assert answer.status_code == 502
    assert answer.headers["content-type"] == "application/problem+json"


def test_bad_input_is_a_422_naming_the_field(dd, app, client) -> None:
    app.state.template_model = Script(WELCOME).model
    headers = _headers(dd, "write")
    answer = client.post(
        "/api/v1/templates/generate",
        json={"description": "x", "channel": "fax", "engine": "handlebars"},
        headers=headers,
    )
    assert answer.status_code == 422
    assert set(answer.json()["errors"]) == {"channel", "engine"}
    answer = client.post("/api/v1/templates/generate", json={"channel": "sms"}, headers=headers)
    assert answer.status_code == 422 and "description" in answer.json()["errors"]
    answer = client.post(
        "/api/v1/templates/generate", json={"description": "x", "bogus": 1}, headers=headers
    )
    assert answer.status_code == 422 and "bogus" in answer.json()["errors"]


def test_a_model_that_never_validates_is_a_502_with_the_problems(dd, app, client) -> None:
    app.state.template_model = Script({**WELCOME, "body": "{{ secret }}"}).model
    answer = client.post(
        "/api/v1/templates/generate",
        json={"description": "x", "available_variables": VARS, "max_repairs": 1},
        headers=_headers(dd, "write"),
    )
    assert answer.status_code == 502
    problem = answer.json()
    assert problem["attempts"] == 2
    assert any("secret" in p for p in problem["problems"])


def test_without_a_provider_key_the_problem_says_so(dd, client, monkeypatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "DRIPDROP_AI_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    answer = client.post(
        "/api/v1/templates/generate", json={"description": "x"}, headers=_headers(dd, "write")
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert "ANTHROPIC_API_KEY or OPENAI_API_KEY" in answer.json()["detail"]


def test_generating_needs_the_write_scope(dd, app, client) -> None:
    app.state.template_model = Script(WELCOME).model
    body = {"description": "x"}
    assert client.post("/api/v1/templates/generate", json=body).status_code == 401
    answer = client.post("/api/v1/templates/generate", json=body, headers=_headers(dd, "read"))
    assert answer.status_code == 403
