"""Template types through the engine: module (a Python function), external (a local HTTP
server, cached, transient errors retried, loopback refused by the default outbound policy) and
the per-step text engine (mustache, jinja2)."""

from __future__ import annotations

import json

from pytest_httpserver import HTTPServer

from dripdrop import DripDrop
from dripdrop.crypto import generate_key
from dripdrop.testing import outbox

ADA = {"email": "ada@x.io", "name": "Ada"}


def _memory(dd) -> None:
    dd.create_channel_adapter(name="mem", channel="email", provider="memory")


def _only_execution(dd, enrollment):
    (ex,) = dd.list_executions(enrollment.id)
    return ex


def test_module_template_fields_come_from_the_function(dd, make_sequence) -> None:
    _memory(dd)
    step = {
        "name": "welcome",
        "channel": "email",
        "config": {"from": "a@x.io"},
        "template_type": "module",
        "template_module": "e2e_templates",
        "template_function": "welcome",
    }
    make_sequence([step], key="onboarding")
    enrollment = dd.enroll("onboarding", {"type": "User", "id": 1}, data=ADA)
    dd.run_due()
    ex = _only_execution(dd, enrollment)
    assert ex.state == "sent", ex.error_message
    (m,) = outbox("email")
    assert m.recipient == "ada@x.io"
    assert m.payload["subject"] == "Welcome Ada"
    assert m.payload["body"] == "<p>Hi Ada, step welcome of onboarding</p>"
    assert m.payload["from"] == "a@x.io", "the step's own config is kept"
    assert ex.payload["subject"] == "Welcome Ada"


def test_async_module_template(dd, make_sequence) -> None:
    _memory(dd)
    step = {
        "name": "welcome",
        "channel": "email",
        "config": {"from": "a@x.io"},
        "template_type": "module",
        "template_module": "e2e_templates",
        "template_function": "welcome_async",
    }
    make_sequence([step])
    dd.enroll("s", {"type": "User", "id": 42}, data=ADA)
    dd.run_due()
    (m,) = outbox("email")
    assert m.payload["subject"] == "Async hello 42"


def test_module_template_returning_a_non_dict_fails(dd, make_sequence) -> None:
    _memory(dd)
    step = {
        "name": "welcome",
        "channel": "email",
        "config": {"from": "a@x.io"},
        "template_type": "module",
        "template_module": "e2e_templates",
        "template_function": "not_a_dict",
    }
    make_sequence([step])
    enrollment = dd.enroll("s", {"type": "User", "id": 1}, data=ADA)
    dd.run_due()
    ex = _only_execution(dd, enrollment)
    assert ex.state == "failed"
    assert "must return a dict" in ex.error_message


def _external_step(url: str) -> dict:
    return {
        "name": "news",
        "channel": "email",
        "config": {"from": "a@x.io"},
        "template_type": "external",
        "template_content": {"url": url},
    }


TEMPLATE = {"subject": "News for {{ name }}", "body": "<p>Dear {{ name | upcase }}</p>"}


def test_external_template_is_rendered_and_fetched_once(
    dd, make_sequence, httpserver: HTTPServer
) -> None:
    _memory(dd)
    httpserver.expect_request("/templates/news.json").respond_with_json(TEMPLATE)
    make_sequence([_external_step(httpserver.url_for("/templates/news.json"))])
    dd.enroll("s", {"type": "User", "id": 1}, data=ADA)
    dd.enroll("s", {"type": "User", "id": 2}, data={"email": "bob@x.io", "name": "Bob"})
    dd.run_due()
    sent = sorted(outbox("email"), key=lambda m: m.recipient)
    assert [(m.recipient, m.payload["subject"], m.payload["body"]) for m in sent] == [
        ("ada@x.io", "News for Ada", "<p>Dear ADA</p>"),
        ("bob@x.io", "News for Bob", "<p>Dear BOB</p>"),
    ]
    assert len(httpserver.log) == 1, "the template is cached between the two enrollments"


def test_external_plain_text_template_fills_the_main_field(
    dd, make_sequence, httpserver: HTTPServer
) -> None:
    _memory(dd)
    httpserver.expect_request("/t.txt").respond_with_data(
        "Hello {{ name }}", content_type="text/plain"
    )
    step = _external_step(httpserver.url_for("/t.txt"))
    step["config"] = {"from": "a@x.io", "subject": "Hi"}
    make_sequence([step])
    dd.enroll("s", {"type": "User", "id": 1}, data=ADA)
    dd.run_due()
    (m,) = outbox("email")
    assert m.payload["body"] == "Hello Ada"
    assert m.payload["subject"] == "Hi"


def test_external_template_server_error_is_retried(
    env, dd, make_sequence, httpserver: HTTPServer
) -> None:
    _memory(dd)
    httpserver.expect_ordered_request("/t.json").respond_with_data("boom", status=500)
    httpserver.expect_ordered_request("/t.json").respond_with_json(TEMPLATE)
    make_sequence([_external_step(httpserver.url_for("/t.json"))])
    enrollment = dd.enroll("s", {"type": "User", "id": 1}, data=ADA)
    dd.run_due()
    ex = _only_execution(dd, enrollment)
    assert ex.state == "scheduled", ex.error_message
    assert ex.retry_count == 1
    assert ex.error_message.startswith("attempt 1 failed, retrying")
    assert outbox() == []

    env.advance_and_run(minutes=5)
    ex = _only_execution(dd, enrollment)
    assert ex.state == "sent", ex.error_message
    assert outbox("email")[0].payload["subject"] == "News for Ada"
    assert len(httpserver.log) == 2


def test_default_policy_refuses_a_loopback_template_url(
    env, database_url: str, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/t.json").respond_with_json(TEMPLATE)
    strict = DripDrop(
        database_url, schema=env.schema, clock=env.clock, encryption_key=generate_key()
    )
    try:
        assert not strict.runtime.policy.allow_private_network
        _memory(strict)
        seq = strict.create_sequence(name="S", key="s")
        version = strict.create_sequence_version(seq.id, active=True)
        strict.create_step(version.id, **_external_step(httpserver.url_for("/t.json")))
        enrollment = strict.enroll("s", {"type": "User", "id": 1}, data=ADA)
        strict.run_due()
        (ex,) = strict.list_executions(enrollment.id)
    finally:
        strict.close()
    assert ex.state == "failed", ex.error_message
    assert ex.retry_count == 0, "a refused address is permanent, not retried"
    message = ex.error_message.lower()
    assert "refus" in message or "not allowed" in message or "private" in message, message
    assert len(httpserver.log) == 0, "the request never left"
    assert outbox() == []


def test_step_template_engines_mustache_and_jinja2(dd, make_sequence) -> None:
    _memory(dd)
    data = {**ADA, "items": ["tea", "cake"]}
    steps = [
        {
            "name": "m",
            "channel": "email",
            "config": {
                "template_engine": "mustache",
                "from": "a@x.io",
                "subject": "Mustache {{name}}",
                "body": "<ul>{{#items}}<li>{{.}}</li>{{/items}}</ul>",
            },
        },
        {
            "name": "j",
            "channel": "email",
            "config": {
                "template_engine": "jinja2",
                "from": "a@x.io",
                "subject": "Jinja {{ name | upper }}",
                "body": "<ul>{% for i in items %}<li>{{ i }}</li>{% endfor %}</ul>",
            },
        },
        {
            "name": "l",
            "channel": "email",
            "config": {
                "from": "a@x.io",
                "subject": "Liquid {{ name | downcase }}",
                "body": "{% for i in items %}{{ i }};{% endfor %}",
            },
        },
    ]
    make_sequence(steps)
    dd.enroll("s", {"type": "User", "id": 1}, data=data)
    dd.run_due()
    sent = {m.payload["subject"]: m.payload for m in outbox("email")}
    assert set(sent) == {"Mustache Ada", "Jinja ADA", "Liquid ada"}
    assert sent["Mustache Ada"]["body"] == "<ul><li>tea</li><li>cake</li></ul>"
    assert sent["Jinja ADA"]["body"] == "<ul><li>tea</li><li>cake</li></ul>"
    assert sent["Liquid ada"]["body"] == "tea;cake;"
    assert all("template_engine" not in p for p in sent.values())


def test_jinja2_is_sandboxed(dd, make_sequence) -> None:
    _memory(dd)
    step = {
        "name": "j",
        "channel": "email",
        "config": {
            "template_engine": "jinja2",
            "from": "a@x.io",
            "subject": "x",
            "body": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        },
    }
    try:
        make_sequence([step])
    except Exception as exc:  # rejected at create time is fine too
        assert "unsafe" in str(exc).lower() or "template" in str(exc).lower()
        return
    enrollment = dd.enroll("s", {"type": "User", "id": 1}, data=ADA)
    dd.run_due()
    ex = _only_execution(dd, enrollment)
    assert ex.state == "failed"
    assert "subclasses" not in json.dumps(ex.payload or {})
