"""The dashboard's guards, over HTTP (Starlette's TestClient against the real database): every
page needs a session, state changes need the CSRF token and the same site, stored markup is
inert, and no secret reaches a page in any encoding."""

from __future__ import annotations

import base64
import re
import urllib.parse
import uuid
from typing import Any

import pytest
from dashboard_support import run_due
from fastapi.testclient import TestClient

from dripdrop.web import create_app
from dripdrop.web.dashboard import session as sessions
from dripdrop.web.dashboard.pages import ROUTERS
from dripdrop.web.dashboard.security import DashboardRoute

PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout")}


def dashboard_routes() -> list[tuple[str, str]]:
    """(method, path) of every dashboard route (its routers, as the app includes them)."""
    out = []
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, DashboardRoute), route.path
            for method in sorted(route.methods):
                out.append((method, route.path))
    return out


def concrete(path: str) -> str:
    return re.sub(
        r"\{[^}]+\}", lambda m: "pause" if m.group(0) == "{action}" else str(uuid.uuid4()), path
    )


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client: TestClient, key: str) -> str:
    """Signs in; returns the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    answer = client.post(
        "/login", data={"csrf_token": token, "api_key": key, "next": "/"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/sequences").text)


@pytest.fixture
def client(dd) -> Any:
    with TestClient(create_app(dd)) as c:
        yield c


def test_every_page_requires_a_session(client):
    routes = dashboard_routes()
    assert len(routes) > 40  # the enumeration found the dashboard
    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        answer = client.request(method, concrete(path), follow_redirects=False)
        assert answer.status_code == 303, (method, path, answer.status_code)
        assert answer.headers["location"].startswith("/login?next="), (method, path)
    # htmx requests are told where to go instead of being redirected in place
    answer = client.get("/overview/stats", headers={"HX-Request": "true"})
    assert answer.status_code == 401 and answer.headers["HX-Redirect"].startswith("/login")


def test_sign_in_needs_a_live_admin_key(dd, client):
    # (A tenant-bound admin key signs in to its tenant: test_dashboard_tenants.py.)
    reader = dd.create_api_key("reader", scopes=["read", "write"]).secret
    tenant_reader = dd.create_api_key("t", scopes=["read", "write"], tenant_key="acme").secret
    for key, status in ((reader, 403), (tenant_reader, 403), ("dd_nope_nope", 401)):
        token = csrf_of(client.get("/login").text)
        answer = client.post(
            "/login", data={"csrf_token": token, "api_key": key}, follow_redirects=False
        )
        assert answer.status_code == status
        assert client.get("/", follow_redirects=False).status_code == 303
    admin = dd.create_api_key("admin", scopes=["admin"])
    sign_in(client, admin.secret)
    assert client.get("/").status_code == 200
    # The cookie names the key, not its token, and is unreadable and unforgeable.
    cookie = client.cookies[sessions.COOKIE]
    assert admin.secret not in cookie and str(admin.id) not in cookie
    client.cookies.clear()
    client.cookies.set(
        sessions.COOKIE, cookie[:-6] + ("A" * 6 if cookie[-6:] != "A" * 6 else "B" * 6)
    )
    assert client.get("/", follow_redirects=False).status_code == 303
    client.cookies.clear()
    client.cookies.set(sessions.COOKIE, cookie)
    assert client.get("/").status_code == 200
    # A revoked key's session ends (within the key cache's few seconds; cleared here).
    dd.revoke_api_key(admin.id)
    client.app.state.dashboard_keys.clear()
    assert client.get("/", follow_redirects=False).status_code == 303


def test_session_cookie_flags_and_security_headers(dd):
    key = dd.create_api_key("admin", scopes=["admin"]).secret
    with TestClient(create_app(dd), base_url="https://dash.example") as client:
        token = csrf_of(client.get("/login").text)
        answer = client.post(
            "/login", data={"csrf_token": token, "api_key": key}, follow_redirects=False
        )
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
        page = client.get("/sequences")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp
    assert "frame-ancestors 'none'" in csp and page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text and " style=" not in page.text and "onclick" not in page.text


def test_state_changes_need_the_csrf_token_and_the_same_site(dd, client):
    csrf = sign_in(client, dd.create_api_key("admin", scopes=["admin"]).secret)
    form = {"name": "Evil", "key": "evil"}
    refused = [
        client.post("/sequences", data=form),  # no token at all
        client.post("/sequences", data={**form, "csrf_token": "forged"}),
        client.post(
            "/sequences",
            data={**form, "csrf_token": csrf},
            headers={"Origin": "https://attacker.example"},
        ),
        client.post(
            "/sequences",
            data={**form, "csrf_token": csrf},
            headers={"Sec-Fetch-Site": "cross-site"},
        ),
    ]
    assert [r.status_code for r in refused] == [403] * 4
    assert "CSRF" in refused[0].text or "cross-site" in refused[2].text
    assert dd.list_sequences() == []
    ok = client.post("/sequences", data={**form, "csrf_token": csrf}, follow_redirects=False)
    assert ok.status_code == 303 and [s.key for s in dd.list_sequences()] == ["evil"]
    # htmx sends the token as a header
    seq = dd.list_sequences()[0]
    ok = client.post(
        f"/sequences/{seq.id}/archive",
        data={"active": "false"},
        headers={"X-CSRF-Token": csrf},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and dd.get_sequence("evil").active is False


SCRIPT = "<script>alert('x')</script>"
IMG = '<img src=x onerror="alert(1)">'


def test_stored_markup_renders_inert(dd, client):
    csrf = sign_in(client, dd.create_api_key("admin", scopes=["admin"]).secret)
    seq = dd.create_sequence(name=f"Seq {SCRIPT}", key="xss", description=IMG)
    version = dd.create_sequence_version(seq.id, active=True)
    step = dd.create_step(
        version.id, name=f"Step {SCRIPT}", channel="email", config={"subject": SCRIPT, "body": IMG}
    )
    dd.create_channel_adapter(name=f"Adapter {SCRIPT}", channel="email", provider="memory")
    e = dd.enroll("xss", {"type": "User", "id": SCRIPT}, data={"name": IMG})
    run_due(dd)
    x = dd.list_executions(e.id)[0]
    pages = [
        "/",
        "/sequences",
        f"/sequences/{seq.id}",
        f"/versions/{version.id}",
        f"/steps/{step.id}",
        "/enrollments",
        f"/enrollments/{e.id}",
        "/executions",
        f"/executions/{x.id}",
        "/adapters",
    ]
    for path in pages:
        html = client.get(path).text
        assert SCRIPT not in html and IMG not in html, path
    assert "&lt;script&gt;alert(" in client.get("/sequences").text
    preview = client.post(
        f"/steps/{step.id}/preview", data={"data": "{}"}, headers={"X-CSRF-Token": csrf}
    ).text
    assert SCRIPT not in preview
    # The email itself is HTML: it is shown only in a sandboxed frame with a no-script policy.
    framed = client.get(f"/steps/{step.id}/preview.html", params={"data": "{}"})
    policy = framed.headers["content-security-policy"]
    assert "sandbox" in policy and "script-src" not in policy and "default-src 'none'" in policy


def encodings(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        raw.hex(),
        raw.hex().upper(),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
        secret[4:-4],
    ]


def test_no_secret_reaches_any_page(dd, client):
    csrf = sign_in(client, dd.create_api_key("admin", scopes=["admin"]).secret)
    api_key = "key-T0p-S3cret-Mailgun-771"
    token = "hook-B3arer-S3cret-909"
    seq = dd.create_sequence(name="Seq", key="secrets")
    version = dd.create_sequence_version(seq.id, active=True)
    adapter = dd.create_channel_adapter(
        name="Mailgun",
        channel="email",
        provider="mailgun",
        credentials={"api_key": api_key},
        config={"domain": "mg.example.com"},
    )
    hook = dd.create_http_hook(
        seq.id,
        name="Score",
        key="score",
        url="https://h.example/s",
        auth_type="bearer",
        auth_config={"token": token},
    )
    # Edit both through the dashboard without replacing the secrets: they are kept.
    answer = client.post(
        f"/adapters/{adapter.id}",
        data={
            "csrf_token": csrf,
            "name": "Mailgun EU",
            "config.domain": "mg.example.com",
            "active": "on",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert dd.get_channel_adapter(adapter.id).credentials.reveal()["api_key"] == api_key
    answer = client.post(
        f"/hooks/{hook.id}",
        data={
            "csrf_token": csrf,
            "name": "Score",
            "url": "https://h.example/s",
            "method": "POST",
            "auth_type": "bearer",
            "response_type": "json",
            "active": "on",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert dd.get_http_hook(hook.id).auth_config.reveal() == {"token": token}
    # A failed create echoes the form back without the secret typed into it.
    failed = client.post(
        "/adapters",
        data={
            "csrf_token": csrf,
            "channel": "email",
            "provider": "mailgun",
            "name": "",
            "credentials.api_key": api_key,
        },
    )
    assert failed.status_code == 422
    pages = [
        "/",
        "/sequences",
        f"/sequences/{seq.id}",
        f"/versions/{version.id}",
        "/adapters",
        f"/adapters/{adapter.id}",
        "/adapters/new?provider=email/mailgun",
        "/hooks",
        f"/hooks/{hook.id}",
        "/executions",
        "/enrollments",
    ]
    bodies = {path: client.get(path).text for path in pages}
    bodies["failed create"] = failed.text
    for path, html in bodies.items():
        for secret in (api_key, token):
            for form in encodings(secret):
                assert form not in html, (path, form)
    assert "••••" in bodies[f"/adapters/{adapter.id}"]


def test_host_authorize_replaces_the_sign_in(dd):
    app = create_app(dd, authorize=lambda request: request.headers.get("x-staff") == "yes")
    with TestClient(app) as client:
        assert client.get("/", follow_redirects=False).status_code == 403
        page = client.get("/sequences", headers={"x-staff": "yes"})
        assert page.status_code == 200 and "Sign out" not in page.text
        csrf = csrf_of(page.text)
        refused = client.post(
            "/sequences", data={"name": "A", "key": "a"}, headers={"x-staff": "yes"}
        )
        assert refused.status_code == 403
        ok = client.post(
            "/sequences",
            data={"name": "A", "key": "a", "csrf_token": csrf},
            headers={"x-staff": "yes"},
            follow_redirects=False,
        )
        assert ok.status_code == 303 and dd.get_sequence("a").name == "A"


def test_mounted_under_a_prefix(dd):
    from fastapi import FastAPI

    host = FastAPI()
    host.mount("/admin/dripdrop", create_app(dd))
    key = dd.create_api_key("admin", scopes=["admin"]).secret
    with TestClient(host) as client:
        answer = client.get("/admin/dripdrop/sequences", follow_redirects=False)
        assert answer.headers["location"] == "/admin/dripdrop/login?next=/sequences"
        login = client.get("/admin/dripdrop/login")
        assert 'action="/admin/dripdrop/login"' in login.text
        assert 'href="/admin/dripdrop/static/dashboard.css"' in login.text
        assert "Path=/admin/dripdrop/" in login.headers["set-cookie"]
        assert client.get("/admin/dripdrop/static/htmx.min.js").status_code == 200
        answer = client.post(
            "/admin/dripdrop/login",
            data={"csrf_token": csrf_of(login.text), "api_key": key, "next": "/sequences"},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/admin/dripdrop/sequences"
        page = client.get("/admin/dripdrop/sequences")
        assert page.status_code == 200 and 'href="/admin/dripdrop/executions"' in page.text
