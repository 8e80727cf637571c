"""Steps, conditions, channel adapters and HTTP hooks through the REST API."""

from __future__ import annotations

import base64
import json
import urllib.parse
import uuid
from typing import Any

from pytest_httpserver import HTTPServer
from web_support import bearer

API = "/api/v1"
SECRET = "pm-Sup3rS3cret-token-7f1c2e"
HOOK_SECRET = "hook-B3arer-s3cret-91ab"


def _version(client: Any, headers: dict[str, str], key: str = "onboarding") -> tuple[str, str]:
    """A sequence and a version of it, made through the API: (sequence id, version id)."""
    seq = client.post(f"{API}/sequences", json={"name": key.title(), "key": key}, headers=headers)
    assert seq.status_code == 201, seq.text
    ver = client.post(f"{API}/sequences/{seq.json()['id']}/versions", json={}, headers=headers)
    assert ver.status_code == 201, ver.text
    return seq.json()["id"], ver.json()["id"]


def _email_step(**extra: Any) -> dict[str, Any]:
    body = {"name": "Welcome", "channel": "email", "config": {"subject": "Hi", "body": "Hello"}}
    body.update(extra)
    return body


def _problem(answer: Any, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    return answer.json()


# ---------------------------------------------------------------------------------------------
# Steps


def test_steps_are_created_listed_changed_and_deleted(dd, client) -> None:
    write = bearer(dd, "write")
    _, version_id = _version(client, write)
    first = client.post(f"{API}/versions/{version_id}/steps", json=_email_step(), headers=write)
    assert first.status_code == 201, first.text
    step = first.json()
    assert step["key"] == "welcome" and step["position"] == 1 and step["channel"] == "email"
    assert step["sequence_version_id"] == version_id and step["timing"]["type"] == "immediate"
    second = client.post(
        f"{API}/versions/{version_id}/steps",
        json=_email_step(
            name="Nudge", timing={"type": "delay", "delay_amount": 2, "delay_unit": "days"}
        ),
        headers=write,
    ).json()
    assert second["position"] == 2
    zeroth = client.post(
        f"{API}/versions/{version_id}/steps",
        json=_email_step(name="Intro", key="intro", position=0),
        headers=write,
    ).json()

    listed = client.get(f"{API}/versions/{version_id}/steps", headers=write).json()
    assert [s["key"] for s in listed["items"]] == ["intro", "welcome", "nudge"]
    assert listed["next_cursor"] is None

    got = client.get(f"{API}/steps/{step['id']}", headers=write)
    assert got.status_code == 200 and got.json() == step

    patched = client.patch(
        f"{API}/steps/{step['id']}", json={"name": "Welcome!", "position": 5}, headers=write
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Welcome!" and patched.json()["position"] == 5
    assert patched.json()["config"] == step["config"]  # fields not given keep their values
    assert dd.get_step(uuid.UUID(step["id"])).position == 5

    off = client.post(f"{API}/steps/{second['id']}/deactivate", headers=write)
    assert off.status_code == 200 and off.json()["active"] is False

    gone = client.delete(f"{API}/steps/{zeroth['id']}", headers=write)
    assert gone.status_code == 204 and gone.content == b""
    assert client.get(f"{API}/steps/{zeroth['id']}", headers=write).status_code == 404
    listed = client.get(f"{API}/versions/{version_id}/steps", headers=write).json()
    assert [s["key"] for s in listed["items"]] == ["nudge", "welcome"]


def test_step_validation_errors_name_their_fields(dd, client) -> None:
    write = bearer(dd, "write")
    _, version_id = _version(client, write)
    url = f"{API}/versions/{version_id}/steps"
    bad_channel = _problem(client.post(url, json=_email_step(channel="pigeon"), headers=write), 422)
    assert "channel" in bad_channel["errors"]
    typo = _problem(client.post(url, json=_email_step(config={"subjet": "Hi"}), headers=write), 422)
    assert "config.subjet" in typo["errors"]
    unknown_field = _problem(client.post(url, json=_email_step(colour="red"), headers=write), 422)
    assert list(unknown_field["errors"]) == ["colour"]
    missing = _problem(client.post(url, json={"channel": "email"}, headers=write), 422)
    assert missing["errors"]["name"] == ["is required"]
    step = client.post(url, json=_email_step(), headers=write).json()
    duplicate = _problem(client.post(url, json=_email_step(), headers=write), 422)
    assert list(duplicate["errors"]) == ["key"]
    cannot = _problem(
        client.patch(f"{API}/steps/{step['id']}", json={"key": "other"}, headers=write), 422
    )
    assert list(cannot["errors"]) == ["key"]
    bad_patch = _problem(
        client.patch(f"{API}/steps/{step['id']}", json={"config": {"subjet": "x"}}, headers=write),
        422,
    )
    assert "config.subjet" in bad_patch["errors"]


def test_malformed_ids_name_the_path_parameter_and_unknown_ids_are_404(dd, client, admin) -> None:
    cases = [
        ("GET", "/versions/{}/steps", "version_id"),
        ("POST", "/versions/{}/steps", "version_id"),
        ("GET", "/steps/{}", "step_id"),
        ("PATCH", "/steps/{}", "step_id"),
        ("DELETE", "/steps/{}", "step_id"),
        ("POST", "/steps/{}/deactivate", "step_id"),
        ("GET", "/steps/{}/conditions", "step_id"),
        ("POST", "/steps/{}/conditions", "step_id"),
        ("PATCH", "/conditions/{}", "condition_id"),
        ("DELETE", "/conditions/{}", "condition_id"),
        ("GET", "/adapters/{}", "adapter_id"),
        ("PATCH", "/adapters/{}", "adapter_id"),
        ("DELETE", "/adapters/{}", "adapter_id"),
        ("POST", "/adapters/{}/deactivate", "adapter_id"),
        ("GET", "/sequences/{}/http-hooks", "sequence_id"),
        ("POST", "/sequences/{}/http-hooks", "sequence_id"),
        ("GET", "/http-hooks/{}", "hook_id"),
        ("PATCH", "/http-hooks/{}", "hook_id"),
        ("DELETE", "/http-hooks/{}", "hook_id"),
        ("POST", "/http-hooks/{}/test", "hook_id"),
    ]
    # Bodies valid enough to reach the id lookup.
    bodies = {
        "/versions/{}/steps": _email_step(),
        "/steps/{}/conditions": {"field_path": "plan", "expected_value": "pro"},
        "/sequences/{}/http-hooks": {"name": "H", "key": "h", "url": "https://example.com/"},
    }
    for method, path, param in cases:
        body = bodies.get(path, {}) if method in ("POST", "PATCH") else None
        bad = client.request(method, API + path.format("not-a-uuid"), json=body, headers=admin)
        assert list(_problem(bad, 422)["errors"]) == [param], (method, path, bad.text)
        unknown = client.request(method, API + path.format(uuid.uuid4()), json=body, headers=admin)
        assert unknown.status_code == 404, (method, path, unknown.text)


# ---------------------------------------------------------------------------------------------
# Conditions


def test_conditions_are_created_listed_changed_and_deleted(dd, client) -> None:
    write = bearer(dd, "write")
    _, version_id = _version(client, write)
    step = client.post(
        f"{API}/versions/{version_id}/steps", json=_email_step(), headers=write
    ).json()
    url = f"{API}/steps/{step['id']}/conditions"
    created = client.post(
        url,
        json={"field_path": "plan_tier", "operator": "eq", "expected_value": "pro"},
        headers=write,
    )
    assert created.status_code == 201, created.text
    cond = created.json()
    assert cond["condition_type"] == "enrollment_data" and cond["step_id"] == step["id"]
    assert cond["expected_value"] == "pro"
    event = client.post(
        url,
        json={
            "condition_type": "event",
            "config": {"event_key": "paid"},
            "operator": "gte",
            "expected_value": 1,
        },
        headers=write,
    ).json()
    listed = client.get(url, headers=write).json()
    assert [c["id"] for c in listed["items"]] == [cond["id"], event["id"]]
    assert listed["next_cursor"] is None

    patched = client.patch(
        f"{API}/conditions/{cond['id']}", json={"expected_value": "enterprise"}, headers=write
    )
    assert patched.status_code == 200 and patched.json()["expected_value"] == "enterprise"
    assert patched.json()["field_path"] == "plan_tier"

    bad = _problem(client.post(url, json={"condition_type": "event"}, headers=write), 422)
    assert "config.event_key" in bad["errors"]
    bad_op = _problem(
        client.patch(f"{API}/conditions/{cond['id']}", json={"operator": "likes"}, headers=write),
        422,
    )
    assert "operator" in bad_op["errors"]
    extra = _problem(client.post(url, json={"field": "x"}, headers=write), 422)
    assert list(extra["errors"]) == ["field"]

    assert client.delete(f"{API}/conditions/{cond['id']}", headers=write).status_code == 204
    assert [c["id"] for c in client.get(url, headers=write).json()["items"]] == [event["id"]]
    assert client.delete(f"{API}/conditions/{cond['id']}", headers=write).status_code == 404


# ---------------------------------------------------------------------------------------------
# Channel adapters


def _leaks(text: str, secret: str) -> bool:
    forms = {
        secret,
        base64.b64encode(secret.encode()).decode(),
        base64.urlsafe_b64encode(secret.encode()).decode(),
        base64.b64encode(secret.encode()).decode().rstrip("="),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1],
        secret.encode().hex(),
    }
    return any(form in text for form in forms)


def test_adapters_crud_never_answers_the_credentials(dd, app, client, admin) -> None:
    answers: list[Any] = []

    def call(method: str, path: str, **kw: Any) -> Any:
        answer = client.request(method, API + path, headers=admin, **kw)
        answers.append(answer)
        return answer

    created = call(
        "POST",
        "/adapters",
        json={
            "name": "Postmark",
            "channel": "email",
            "provider": "postmark",
            "credentials": {"server_token": SECRET},
            "config": {"from": "hello@example.com"},
        },
    )
    assert created.status_code == 201, created.text
    adapter = created.json()
    assert "credentials" not in adapter and adapter["credentials_set"] == ["server_token"]
    assert adapter["is_default"] is True and adapter["tenant_key"] is None
    assert adapter["config"]["from"] == "hello@example.com"
    # Stored for real (and usable by the engine).
    stored = dd.get_channel_adapter(uuid.UUID(adapter["id"]))
    assert stored.credentials.reveal() == {"server_token": SECRET}

    second = call(
        "POST",
        "/adapters",
        json={
            "name": "Backup",
            "channel": "email",
            "provider": "postmark",
            "credentials": {"server_token": SECRET + "-2"},
        },
    ).json()
    assert second["is_default"] is False
    sms = call(
        "POST",
        "/adapters",
        json={"name": "Dev SMS", "channel": "sms", "provider": "console"},
    )
    assert sms.status_code == 201, sms.text

    assert call("GET", f"/adapters/{adapter['id']}").json()["credentials_set"] == ["server_token"]
    listed = call("GET", "/adapters", params={"channel": "email"}).json()
    assert [a["name"] for a in listed["items"]] == ["Backup", "Postmark"]
    assert all("credentials" not in a for a in listed["items"])
    everything = call("GET", "/adapters").json()["items"]
    assert [a["channel"] for a in everything] == ["email", "email", "sms"]
    page1 = call("GET", "/adapters", params={"limit": 2}).json()
    assert len(page1["items"]) == 2 and page1["next_cursor"]
    page2 = call("GET", "/adapters", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    assert [a["name"] for a in page2["items"]] == ["Dev SMS"] and page2["next_cursor"] is None

    patched = call(
        "PATCH",
        f"/adapters/{second['id']}",
        json={"credentials": {"server_token": SECRET + "-3"}, "is_default": True},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["is_default"] is True and "credentials" not in patched.json()
    assert call("GET", f"/adapters/{adapter['id']}").json()["is_default"] is False
    off = call("POST", f"/adapters/{second['id']}/deactivate")
    assert off.status_code == 200 and off.json()["active"] is False
    inactive = call("GET", "/adapters", params={"active": "false"}).json()["items"]
    assert [a["id"] for a in inactive] == [second["id"]]

    bad_channel = _problem(
        call("POST", "/adapters", json={"name": "X", "channel": "pigeon", "provider": "console"}),
        422,
    )
    assert "channel" in bad_channel["errors"]
    bad_creds = _problem(
        call(
            "POST",
            "/adapters",
            json={
                "name": "Y",
                "channel": "email",
                "provider": "postmark",
                "credentials": {"server_token": SECRET, "password": SECRET},
            },
        ),
        422,
    )
    assert "credentials.password" in bad_creds["errors"]
    bad_config = _problem(
        call("PATCH", f"/adapters/{adapter['id']}", json={"config": {"subjet": "x"}}), 422
    )
    assert "config.subjet" in bad_config["errors"]

    assert call("DELETE", f"/adapters/{adapter['id']}").status_code == 204
    assert call("GET", f"/adapters/{adapter['id']}").status_code == 404

    openapi = json.dumps(app.openapi())
    for answer in answers:
        for secret in (SECRET, SECRET + "-2", SECRET + "-3"):
            assert not _leaks(answer.text, secret), answer.text
            assert not _leaks(str(answer.headers), secret)
    assert not _leaks(openapi, SECRET)
    schema = app.openapi()["components"]["schemas"]
    assert "credentials" in schema["AdapterIn"]["properties"]


# ---------------------------------------------------------------------------------------------
# HTTP hooks


def test_http_hooks_crud_and_a_test_call_against_a_local_server(
    dd, app, client, admin, httpserver: HTTPServer
) -> None:
    httpserver.expect_request(
        "/users/u-7/score", method="POST", headers={"Authorization": f"Bearer {HOOK_SECRET}"}
    ).respond_with_json({"score": "81"})
    seq_id, _ = _version(client, admin)
    url = f"{API}/sequences/{seq_id}/http-hooks"
    created = client.post(
        url,
        json={
            "name": "Lead Score",
            "key": "lead_score",
            "url": httpserver.url_for("/") + "users/{{ subscriber_id }}/score",
            "auth_type": "bearer",
            "auth_config": {"token": HOOK_SECRET},
            "response_path": "score",
            "response_type": "number",
            "retry_count": 0,
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    assert "auth_config" not in hook and hook["auth_config_set"] == ["token"]
    assert hook["sequence_id"] == seq_id and hook["last_test_at"] is None

    listed = client.get(url, headers=admin).json()
    assert [h["key"] for h in listed["items"]] == ["lead_score"] and listed["next_cursor"] is None
    assert client.get(f"{API}/http-hooks/{hook['id']}", headers=admin).json() == hook

    tested = client.post(
        f"{API}/http-hooks/{hook['id']}/test",
        json={"test_data": {"subscriber_id": "u-7"}},
        headers=admin,
    )
    assert tested.status_code == 200, tested.text
    result = tested.json()
    assert (result["ok"], result["value"], result["status"], result["error"]) == (
        True,
        81,
        200,
        None,
    )
    assert result["missing"] == []
    after = client.get(f"{API}/http-hooks/{hook['id']}", headers=admin).json()
    assert after["last_test_at"] is not None and after["last_test_result"]["value"] == 81

    # A failing call is an answer with ok=false, naming what test_data lacked.
    failed = client.post(f"{API}/http-hooks/{hook['id']}/test", json={}, headers=admin).json()
    assert failed["ok"] is False and failed["missing"] == ["subscriber_id"]
    bad = _problem(
        client.post(f"{API}/http-hooks/{hook['id']}/test", json={"data": {}}, headers=admin), 422
    )
    assert list(bad["errors"]) == ["data"]

    patched = client.patch(
        f"{API}/http-hooks/{hook['id']}", json={"timeout_ms": 2000}, headers=admin
    )
    assert patched.status_code == 200 and patched.json()["timeout_ms"] == 2000
    assert patched.json()["auth_config_set"] == ["token"]
    bad_method = _problem(
        client.patch(f"{API}/http-hooks/{hook['id']}", json={"method": "BREW"}, headers=admin), 422
    )
    assert "method" in bad_method["errors"]

    # A hook condition through the API.
    _, version_id = _version(client, admin, key="scored")
    other_seq_step = client.post(
        f"{API}/versions/{version_id}/steps", json=_email_step(), headers=admin
    ).json()
    foreign = _problem(
        client.post(
            f"{API}/steps/{other_seq_step['id']}/conditions",
            json={"http_hook_id": hook["id"], "operator": "gte", "expected_value": 50},
            headers=admin,
        ),
        422,
    )
    assert list(foreign["errors"]) == ["http_hook_id"]

    everything = " ".join(
        [created.text, json.dumps(listed), tested.text, patched.text, json.dumps(app.openapi())]
    )
    assert not _leaks(everything, HOOK_SECRET)

    assert client.delete(f"{API}/http-hooks/{hook['id']}", headers=admin).status_code == 204
    assert client.get(f"{API}/http-hooks/{hook['id']}", headers=admin).status_code == 404
    assert client.get(url, headers=admin).json()["items"] == []


# ---------------------------------------------------------------------------------------------
# Scopes and tenants


def test_scopes_are_enforced(dd, client, admin) -> None:
    read, write = bearer(dd, "read"), bearer(dd, "write")
    seq_id, version_id = _version(client, write)
    step = client.post(
        f"{API}/versions/{version_id}/steps", json=_email_step(), headers=write
    ).json()
    # read: reads only
    assert client.get(f"{API}/versions/{version_id}/steps", headers=read).status_code == 200
    assert client.get(f"{API}/steps/{step['id']}", headers=read).status_code == 200
    assert client.get(f"{API}/steps/{step['id']}/conditions", headers=read).status_code == 200
    refused = client.post(f"{API}/versions/{version_id}/steps", json=_email_step(), headers=read)
    assert _problem(refused, 403)["detail"].count("write") == 1
    for method, path in [
        ("PATCH", f"/steps/{step['id']}"),
        ("DELETE", f"/steps/{step['id']}"),
        ("POST", f"/steps/{step['id']}/deactivate"),
        ("POST", f"/steps/{step['id']}/conditions"),
    ]:
        assert client.request(method, API + path, json={}, headers=read).status_code == 403
    # write: no adapters, no hooks (reads included)
    adapter = client.post(
        f"{API}/adapters",
        json={"name": "Dev", "channel": "email", "provider": "console"},
        headers=admin,
    ).json()
    for method, path in [
        ("GET", "/adapters"),
        ("POST", "/adapters"),
        ("GET", f"/adapters/{adapter['id']}"),
        ("PATCH", f"/adapters/{adapter['id']}"),
        ("DELETE", f"/adapters/{adapter['id']}"),
        ("POST", f"/adapters/{adapter['id']}/deactivate"),
        ("GET", f"/sequences/{seq_id}/http-hooks"),
        ("POST", f"/sequences/{seq_id}/http-hooks"),
        ("GET", f"/http-hooks/{uuid.uuid4()}"),
        ("POST", f"/http-hooks/{uuid.uuid4()}/test"),
    ]:
        body = (
            {"name": "X", "channel": "email", "provider": "console"} if method == "POST" else None
        )
        answer = client.request(method, API + path, json=body, headers=write)
        assert _problem(answer, 403)["detail"].count("admin") == 1, (method, path)
    assert dd.get_channel_adapter(uuid.UUID(adapter["id"])).active is True
    # admin implies the others
    assert client.get(f"{API}/steps/{step['id']}", headers=admin).status_code == 200


def test_a_tenant_bound_key_sees_and_touches_only_its_tenant(dd, client, admin) -> None:
    seq = dd.create_sequence(name="Global", key="global")
    version = dd.create_sequence_version(seq.id)
    step = dd.create_step(
        version.id, name="Welcome", channel="email", config={"subject": "Hi", "body": "Hello"}
    )
    cond = dd.create_condition(step.id, field_path="plan", expected_value="pro")
    hook = dd.create_http_hook(seq.id, name="H", key="h", url="https://example.com/")
    theirs = dd.create_channel_adapter(
        name="Globex", channel="email", provider="console", tenant_key="globex"
    )
    acme = bearer(dd, "admin", tenant_key="acme")

    hidden = [
        ("GET", f"/versions/{version.id}/steps"),
        ("POST", f"/versions/{version.id}/steps"),
        ("GET", f"/steps/{step.id}"),
        ("PATCH", f"/steps/{step.id}"),
        ("DELETE", f"/steps/{step.id}"),
        ("POST", f"/steps/{step.id}/deactivate"),
        ("GET", f"/steps/{step.id}/conditions"),
        ("POST", f"/steps/{step.id}/conditions"),
        ("PATCH", f"/conditions/{cond.id}"),
        ("DELETE", f"/conditions/{cond.id}"),
        ("GET", f"/adapters/{theirs.id}"),
        ("PATCH", f"/adapters/{theirs.id}"),
        ("DELETE", f"/adapters/{theirs.id}"),
        ("POST", f"/adapters/{theirs.id}/deactivate"),
        ("GET", f"/sequences/{seq.id}/http-hooks"),
        ("POST", f"/sequences/{seq.id}/http-hooks"),
        ("GET", f"/http-hooks/{hook.id}"),
        ("PATCH", f"/http-hooks/{hook.id}"),
        ("DELETE", f"/http-hooks/{hook.id}"),
        ("POST", f"/http-hooks/{hook.id}/test"),
    ]
    bodies = {
        f"/versions/{version.id}/steps": _email_step(name="Sneaky"),
        f"/steps/{step.id}/conditions": {"field_path": "plan"},
        f"/sequences/{seq.id}/http-hooks": {"name": "X", "key": "x", "url": "https://e.com/"},
    }
    for method, path in hidden:
        body = bodies.get(path, {}) if method in ("POST", "PATCH") else None
        answer = client.request(method, API + path, json=body, headers=acme)
        assert answer.status_code == 404, (method, path, answer.text)
    # Nothing changed.
    assert [s.name for s in dd.list_steps(version.id)] == ["Welcome"]
    assert dd.get_step(step.id).active is True
    assert len(dd.list_conditions(step.id)) == 1
    assert dd.get_channel_adapter(theirs.id).active is True
    assert [h.key for h in dd.list_http_hooks(seq.id)] == ["h"]

    # Its own adapter goes to its tenant; it lists only its own.
    mine = client.post(
        f"{API}/adapters",
        json={"name": "Mine", "channel": "email", "provider": "console"},
        headers=acme,
    )
    assert mine.status_code == 201 and mine.json()["tenant_key"] == "acme"
    listed = client.get(f"{API}/adapters", headers=acme).json()["items"]
    assert [a["id"] for a in listed] == [mine.json()["id"]]
    everyone = client.get(f"{API}/adapters", headers=admin).json()["items"]
    assert {a["tenant_key"] for a in everyone} == {"acme", "globex"}
    smuggled = client.post(
        f"{API}/adapters",
        json={"name": "S", "channel": "email", "provider": "console", "tenant_key": "globex"},
        headers=acme,
    )
    assert list(_problem(smuggled, 422)["errors"]) == ["tenant_key"]

    # Its own sequence: steps and hooks work, and a step cannot pin another tenant's adapter.
    seq_id, version_id = _version(client, acme, key="mine")
    pinned = client.post(
        f"{API}/versions/{version_id}/steps",
        json=_email_step(channel_adapter_id=str(theirs.id)),
        headers=acme,
    )
    assert list(_problem(pinned, 422)["errors"]) == ["channel_adapter_id"]
    assert str(theirs.id) in pinned.json()["errors"]["channel_adapter_id"][0]
    rotated = client.post(
        f"{API}/versions/{version_id}/steps",
        json=_email_step(
            config={"subject": "Hi", "body": "x", "channel_adapter_rotation": [str(theirs.id)]}
        ),
        headers=acme,
    )
    assert "config.channel_adapter_rotation.0" in _problem(rotated, 422)["errors"]
    own = client.post(
        f"{API}/versions/{version_id}/steps",
        json=_email_step(channel_adapter_id=mine.json()["id"]),
        headers=acme,
    )
    assert own.status_code == 201, own.text
    assert own.json()["tenant_key"] == "acme"
    assert own.json()["channel_adapter_id"] == mine.json()["id"]
    cond2 = client.post(
        f"{API}/steps/{own.json()['id']}/conditions", json={"field_path": "plan"}, headers=acme
    )
    assert cond2.status_code == 201 and cond2.json()["tenant_key"] == "acme"
    own_hook = client.post(
        f"{API}/sequences/{seq_id}/http-hooks",
        json={"name": "Mine", "key": "mine", "url": "https://example.com/"},
        headers=acme,
    )
    assert own_hook.status_code == 201 and own_hook.json()["tenant_key"] == "acme"
    # Another tenant's HTTP hook in a condition is answered as a hook that does not exist: the
    # key learns nothing of it.
    answers = [
        client.post(
            f"{API}/steps/{own.json()['id']}/conditions",
            json={"condition_type": "hook", "http_hook_id": hook_id, "operator": "exists"},
            headers=acme,
        )
        for hook_id in (str(hook.id), "00000000-0000-7000-8000-000000000000")
    ]
    messages = [_problem(a, 422)["errors"]["http_hook_id"][0] for a in answers]
    assert messages[0].replace(str(hook.id), "ID") == messages[1].replace(
        "00000000-0000-7000-8000-000000000000", "ID"
    ), messages
    assert "does not exist" in messages[0]
    # The global admin key sees the tenant's rows too.
    assert client.get(f"{API}/steps/{own.json()['id']}", headers=admin).status_code == 200
