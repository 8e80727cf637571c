"""API keys: shown once, stored hashed, scoped, tenant-bound; every route but /health needs one."""

from __future__ import annotations

import hashlib
import time

import pytest
from sqlalchemy import text
from web_support import bearer

from dripdrop import ValidationError


def test_a_key_is_shown_once_and_stored_as_a_hash(dd) -> None:
    key = dd.create_api_key("ci", scopes=("read", "write"))
    assert key.secret.startswith(f"dd_{key.prefix}_") and len(key.secret) > 40
    assert key.secret not in repr(key)
    (listed,) = dd.list_api_keys()
    assert listed.id == key.id and listed.secret is None and listed.scopes == ["read", "write"]
    with dd.runtime.engine.begin() as conn:
        stored = conn.execute(text(f'SELECT * FROM "{dd.schema}".api_keys')).one()._mapping
    assert key.secret not in str(dict(stored))
    assert bytes(stored["token_hash"]) == hashlib.sha256(key.secret.encode()).digest()


def test_bad_scopes_and_names_are_refused(dd) -> None:
    with pytest.raises(ValidationError) as info:
        dd.create_api_key("x", scopes=["superuser"])
    assert list(info.value.errors) == ["scopes"]
    with pytest.raises(ValidationError) as info:
        dd.create_api_key("", scopes=["read"])
    assert list(info.value.errors) == ["name"]


def test_missing_wrong_and_revoked_tokens_are_401(dd, client, monkeypatch) -> None:
    import dripdrop.web.auth

    monkeypatch.setattr(dripdrop.web.auth, "KEY_CACHE_SECONDS", 0.3)
    assert client.get("/api/v1/sequences").status_code == 401
    answer = client.get("/api/v1/sequences", headers={"Authorization": "Bearer dd_nope_x"})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 401 and answer.headers["www-authenticate"] == "Bearer"
    key = dd.create_api_key("gone", scopes=["read"])
    headers = {"Authorization": f"Bearer {key.secret}"}
    assert client.get("/api/v1/sequences", headers=headers).status_code == 200
    dd.revoke_api_key(key.id)
    # Checked tokens are trusted for KEY_CACHE_SECONDS: a revocation applies within it.
    time.sleep(0.35)
    assert client.get("/api/v1/sequences", headers=headers).status_code == 401
    # A token differing only after its prefix is not the key.
    forged = {"Authorization": f"Bearer {key.secret[:-2]}xx"}
    assert client.get("/api/v1/sequences", headers=forged).status_code == 401


def test_scopes_are_enforced(dd, client) -> None:
    read = bearer(dd, "read")
    assert client.get("/api/v1/sequences", headers=read).status_code == 200
    answer = client.post("/api/v1/sequences", json={"name": "S", "key": "s"}, headers=read)
    assert answer.status_code == 403 and "write" in answer.json()["detail"]
    write = bearer(dd, "write")
    assert (
        client.post("/api/v1/sequences", json={"name": "S", "key": "s"}, headers=write).status_code
        == 201
    )


def test_a_tenant_bound_key_sees_and_touches_only_its_tenant(dd, client) -> None:
    other = dd.create_sequence(name="Other", key="other", tenant_key="globex")
    acme = bearer(dd, "write", tenant_key="acme")
    created = client.post("/api/v1/sequences", json={"name": "A", "key": "a"}, headers=acme)
    assert created.status_code == 201 and created.json()["tenant_key"] == "acme"
    listed = client.get("/api/v1/sequences", headers=acme).json()["items"]
    assert [s["key"] for s in listed] == ["a"]
    assert client.get(f"/api/v1/sequences/{other.id}", headers=acme).status_code == 404
    assert client.delete(f"/api/v1/sequences/{other.id}", headers=acme).status_code == 404
    smuggled = client.post(
        "/api/v1/sequences", json={"name": "B", "key": "b", "tenant_key": "globex"}, headers=acme
    )
    assert smuggled.status_code == 422 and list(smuggled.json()["errors"]) == ["tenant_key"]


def test_every_route_but_health_requires_a_key(app, client) -> None:
    # The OpenAPI document lists every route the app serves.
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        url = path.replace("{", "").replace("}", "")  # any value: auth comes first
        for method in operations:
            answer = client.request(method.upper(), url)
            if path == "/health":
                assert answer.status_code == 200
            elif path.startswith("/inbound/"):
                # Provider webhooks carry the provider's signature, not a key (tests/inbound):
                # here no such adapter.
                assert answer.status_code == 404, (method, path, answer.status_code)
            else:
                assert answer.status_code == 401, (method, path, answer.status_code)
                checked += 1
    assert checked >= 10


def test_health_needs_no_key(client) -> None:
    assert client.get("/health").json() == {
        "status": "ok",
        "database": "ok",
        "lag_seconds": 0.0,
        "lag": "ok",
    }


def test_a_host_authorize_replaces_keys_when_mounted(dd) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from dripdrop.web import create_app

    host = FastAPI()
    host.mount(
        "/admin/dripdrop",
        create_app(dd, authorize=lambda request: request.headers.get("x-staff") == "yes"),
    )
    with TestClient(host) as c:
        assert c.get("/admin/dripdrop/api/v1/sequences").status_code == 401
        staff = {"x-staff": "yes"}
        assert c.get("/admin/dripdrop/api/v1/sequences", headers=staff).status_code == 200
        assert c.get("/admin/dripdrop/health").status_code == 200


def test_the_docs_page_loads_its_assets_from_the_app_not_a_cdn(dd) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from dripdrop.web import create_app

    host = FastAPI()
    host.mount("/admin/dd", create_app(dd))
    with TestClient(host) as c:
        page = c.get("/admin/dd/api/v1/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text and "http://" not in page.text and "https://" not in page.text
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            assert f"/admin/dd/api/v1/docs/assets/{asset}" in page.text
            assert c.get(f"/admin/dd/api/v1/docs/assets/{asset}").status_code == 200
        assert "/admin/dd/api/v1/openapi.json" in page.text
