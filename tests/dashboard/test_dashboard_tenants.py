"""Tenants in the dashboard, over HTTP (Starlette's TestClient against the real database): a
session signed in with a tenant-bound admin key sees and changes its tenant's data only —
another tenant's (or the global) sequences, versions, steps, enrollments, executions, adapters
and hooks appear on no page, answer 404 by URL, and refuse every post."""

from __future__ import annotations

import re
from typing import Any

import pytest
from dashboard_support import run_due
from fastapi.testclient import TestClient
from test_dashboard_security import csrf_of, dashboard_routes, sign_in

from dripdrop.web import create_app

EMAIL = {"subject": "Hello {{ name }}", "body": "<p>Hi</p>"}


def world(dd: Any, tenant: str | None, people: int) -> dict[str, Any]:
    """A tenant's (None: global) sequence of two steps — one sends, one fails — with a draft,
    a condition, two adapters, an HTTP hook and ``people`` enrollments run by the worker. Every
    name carries a marker of the tenant, so a page showing it is easy to spot."""
    mark = f"mark{tenant or 'global'}"
    ok = dd.create_channel_adapter(
        name=f"Adapter {mark}", channel="email", provider="memory", tenant_key=tenant
    )
    bad = dd.create_channel_adapter(
        name=f"Failing {mark}",
        channel="email",
        provider="memory",
        config={"fail": "permanent"},
        tenant_key=tenant,
    )
    seq = dd.create_sequence(name=f"Seq {mark}", key="onboarding", tenant_key=tenant)
    version = dd.create_sequence_version(seq.id, active=True)
    first = dd.create_step(
        version.id, name=f"Welcome {mark}", channel="email", config=EMAIL, channel_adapter_id=ok.id
    )
    dd.create_step(
        version.id, name=f"Tips {mark}", channel="email", config=EMAIL, channel_adapter_id=bad.id
    )
    condition = dd.create_condition(
        first.id, field_path="plan", operator="neq", expected_value=f"plan{mark}"
    )
    draft = dd.create_sequence_version(seq.id)
    dd.create_step(draft.id, name=f"Draft step {mark}", channel="email", config=EMAIL)
    hook = dd.create_http_hook(
        seq.id,
        name=f"Hook {mark}",
        key="score",
        url="https://crm.example.com/score",
        response_type="number",
    )
    enrollments = [
        dd.enroll(
            "onboarding",
            {"type": "User", "id": f"sub{mark}{i}"},
            data={"name": f"Name{mark}", "email": f"{mark}{i}@example.com"},
            tenant_key=tenant,
        )
        for i in range(people)
    ]
    return {
        "mark": mark,
        "sequence": seq,
        "version": version,
        "draft": draft,
        "step": first,
        "condition": condition,
        "adapter": ok,
        "hook": hook,
        "enrollments": enrollments,
    }


def executions_of(dd: Any, w: dict[str, Any]) -> list[Any]:
    return [x for e in w["enrollments"] for x in dd.list_executions(e.id)]


def secrets_of(dd: Any, w: dict[str, Any]) -> list[str]:
    """What must never appear on another tenant's pages: names, subscriber ids, every id."""
    ids = [w[k].id for k in ("sequence", "version", "draft", "step", "condition")]
    ids += [w["adapter"].id, w["hook"].id]
    ids += [e.id for e in w["enrollments"]] + [x.id for x in executions_of(dd, w)]
    return [w["mark"], *map(str, ids)]


@pytest.fixture
def tenants(dd) -> dict[str, Any]:
    made = {"acme": world(dd, "acme", 1), "beta": world(dd, "beta", 2), None: world(dd, None, 3)}
    run_due(dd)
    return made


@pytest.fixture
def acme(dd) -> Any:
    """A client signed in with acme's admin key; ``client.csrf`` is its session's token."""
    with TestClient(create_app(dd)) as client:
        key = dd.create_api_key("acme", scopes=["admin"], tenant_key="acme")
        client.csrf = sign_in(client, key.secret)
        yield client


def test_a_tenant_session_sees_only_its_tenant(dd, tenants, acme):
    own, beta, world_global = tenants["acme"], tenants["beta"], tenants[None]
    failed = next(x for x in executions_of(dd, own) if x.state == "failed")
    pages = [
        "/",
        "/overview/stats",
        "/sequences",
        "/enrollments",
        "/executions",
        "/executions?state=failed",
        "/adapters",
        "/hooks",
        "/analytics",
        "/template-builder",
        f"/sequences/{own['sequence'].id}",
        f"/sequences/{own['sequence'].id}/compare?a={own['version'].id}&b={own['draft'].id}",
        f"/versions/{own['version'].id}",
        f"/versions/{own['draft'].id}",
        f"/steps/{own['step'].id}",
        f"/enrollments/{own['enrollments'][0].id}",
        f"/executions/{failed.id}",
        f"/adapters/{own['adapter'].id}",
        f"/hooks/{own['hook'].id}",
        f"/hooks/new?sequence={own['sequence'].id}",
    ]
    forbidden = secrets_of(dd, beta) + secrets_of(dd, world_global)
    for path in pages:
        answer = acme.get(path)
        assert answer.status_code == 200, (path, answer.status_code)
        for secret in forbidden:
            assert secret not in answer.text, (path, secret)
    # Filters naming another tenant's rows find nothing (the page echoes only what was typed).
    beta_seq = str(beta["sequence"].id)
    for path, typed in (
        ("/enrollments?subscriber=User:submarkbeta0", "submarkbeta0"),
        (f"/enrollments?sequence={beta_seq}", beta_seq),
        (f"/executions?sequence={beta_seq}", beta_seq),
        (f"/analytics?sequence={beta_seq}", beta_seq),
    ):
        answer = acme.get(path)
        assert answer.status_code == 200, (path, answer.status_code)
        for secret in forbidden:
            if secret not in typed:
                assert secret not in answer.text, (path, secret)
    listed = {path: acme.get(path).text for path in ("/sequences", "/enrollments", "/adapters")}
    assert all("markacme" in html for html in listed.values())
    assert ">acme<" in listed["/sequences"]  # the nav names the tenant
    # The overview counts acme's work only: 1 sent, 1 failed (beta sent 2, the globals 3).
    stats = acme.get("/overview/stats").text
    assert re.search(r'id="sent-total">1<', stats), stats
    assert re.search(r'id="failed-hour">1<', stats), stats


def test_a_tenant_session_cannot_open_or_change_another_tenants_rows(dd, tenants, acme):
    beta = tenants["beta"]
    failed = next(x for x in executions_of(dd, beta) if x.state == "failed")
    ids = {
        "sequence_id": beta["sequence"].id,
        "version_id": beta["draft"].id,
        "step_id": beta["step"].id,
        "condition_id": beta["condition"].id,
        "enrollment_id": beta["enrollments"][0].id,
        "execution_id": failed.id,
        "adapter_id": beta["adapter"].id,
        "hook_id": beta["hook"].id,
    }
    form = {
        "csrf_token": acme.csrf,
        "name": "Hijacked",
        "description": "hijacked",
        "active": "false",
        "direction": "down",
        "version_id": str(tenants["acme"]["version"].id),
        "channel": "email",
        "timing.type": "immediate",
        "config.subject": "hijacked",
        "config.body": "hijacked",
        "data": "{}",
        "event_key": "hijacked",
        "recipient": "x@example.com",
        "url": "https://evil.example/",
        "condition_type": "enrollment_data",
        "field_path": "plan",
        "expected_value": "x",
    }
    tried = 0
    for method, path in dashboard_routes():
        names = re.findall(r"\{([^}]+)\}", path)
        if not names:
            continue
        for action in ("pause", "resume", "unenroll", "events") if "action" in names else ("",):
            url = path.replace("{action}", action)
            for name in names:
                if name != "action":
                    url = url.replace("{" + name + "}", str(ids[name]))
            answer = acme.request(method, url, data=form if method == "POST" else None)
            assert answer.status_code == 404, (method, url, answer.status_code)
            for secret in secrets_of(dd, beta):
                assert secret not in answer.text, (method, url, secret)
            tried += 1
    assert tried >= 30
    # Ids in forms and query strings are checked the same way.
    own = tenants["acme"]
    refused = {
        "hook form": acme.get(f"/hooks/new?sequence={beta['sequence'].id}"),
        "hook create": acme.post(
            "/hooks",
            data={**form, "sequence_id": str(beta["sequence"].id), "key": "evil"},
        ),
        "use a template": acme.post(
            "/template-builder/use",
            data={**form, "version_id": str(beta["draft"].id), "step_config": "{}"},
        ),
        "copy a version": acme.post(
            f"/sequences/{own['sequence'].id}/versions",
            data={**form, "copy_from": str(beta["version"].id)},
        ),
    }
    assert {k: a.status_code for k, a in refused.items()} == dict.fromkeys(refused, 404)
    pinned = acme.post(
        f"/versions/{own['draft'].id}/steps",
        data={**form, "name": "Pinned", "channel_adapter_id": str(beta["adapter"].id)},
    )
    assert pinned.status_code == 422 and "does not exist" in pinned.text
    hooked = acme.post(
        f"/steps/{own['step'].id}/conditions",
        data={**form, "condition_type": "hook", "http_hook_id": str(beta["hook"].id)},
    )
    assert hooked.status_code == 422 and "does not exist" in hooked.text
    many = acme.post("/executions/replay", data={"csrf_token": acme.csrf, "ids": [str(failed.id)]})
    assert many.status_code == 200 and "failed_replays=1" in str(many.url)
    # Nothing of beta's changed.
    assert dd.get_sequence("onboarding", tenant_key="beta").name == "Seq markbeta"
    assert dd.get_sequence("onboarding", tenant_key="beta").active
    assert [v.id for v in dd.list_versions(beta["sequence"].id)] == [
        beta["version"].id,
        beta["draft"].id,
    ]
    assert [s.name for s in dd.list_steps(beta["draft"].id)] == ["Draft step markbeta"]
    assert len(dd.list_steps(beta["version"].id)) == 2
    assert len(dd.list_conditions(beta["step"].id)) == 1
    assert [dd.get_enrollment_by_id(e.id).state for e in beta["enrollments"]] == [
        "completed",
        "completed",
    ]
    assert [x.state for x in executions_of(dd, beta)].count("failed") == 2
    assert len(executions_of(dd, beta)) == 4  # no replay
    assert dd.get_channel_adapter(beta["adapter"].id).name == "Adapter markbeta"
    assert dd.get_http_hook(beta["hook"].id).name == "Hook markbeta"
    assert [h.key for h in dd.list_http_hooks(beta["sequence"].id)] == ["score"]
    assert [s.name for s in dd.list_steps(own["draft"].id)] == ["Draft step markacme"]
    assert len(dd.list_versions(own["sequence"].id)) == 2


def test_a_tenant_session_creates_in_its_tenant(dd, acme):
    answer = acme.post(
        "/sequences",
        data={"csrf_token": acme.csrf, "name": "Acme welcome", "key": "welcome"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert dd.get_sequence("welcome", tenant_key="acme").name == "Acme welcome"
    assert dd.list_sequences() == []  # nothing global
    answer = acme.post(
        "/adapters",
        data={
            "csrf_token": acme.csrf,
            "channel": "email",
            "provider": "memory",
            "name": "Acme mail",
            "active": "on",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert [a.name for a in dd.list_channel_adapters(tenant_key="acme")] == ["Acme mail"]
    assert dd.list_channel_adapters() == []


def test_the_tenant_comes_from_the_key_and_a_global_session_stays_global(dd, tenants):
    # A global admin key: global definitions, as before tenants were supported.
    with TestClient(create_app(dd)) as client:
        sign_in(client, dd.create_api_key("root", scopes=["admin"]).secret)
        html = client.get("/sequences").text
        assert "markglobal" in html and "markacme" not in html and "markbeta" not in html
        assert 'class="tenant"' not in html
    # Revoking acme's key ends its session (the tenant is read from the key, not the cookie).
    key = dd.create_api_key("acme", scopes=["admin"], tenant_key="acme")
    with TestClient(create_app(dd)) as client:
        sign_in(client, key.secret)
        assert "markacme" in client.get("/sequences").text
        dd.revoke_api_key(key.id)
        client.app.state.dashboard_keys.clear()
        assert client.get("/sequences", follow_redirects=False).status_code == 303
    # A tenant's read-only key still cannot sign in.
    reader = dd.create_api_key("r", scopes=["read", "write"], tenant_key="acme").secret
    with TestClient(create_app(dd)) as client:
        token = csrf_of(client.get("/login").text)
        answer = client.post("/login", data={"csrf_token": token, "api_key": reader})
        assert answer.status_code == 403 and "admin key" in answer.text
