"""The REST face of the analytics: shapes, scopes, tenant isolation (another tenant's sequence or
adapter is a 404), input errors as problem+json — and no analytics statement ever reads
``step_executions`` (the statements are captured and EXPLAINed)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from analytics_support import mixed_sequence, sql
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from dripdrop.web import create_app


@pytest.fixture
def client(dd) -> Iterator[TestClient]:
    with TestClient(create_app(dd)) as c:
        yield c


def bearer(dd: Any, *scopes: str, tenant_key: str | None = None) -> dict[str, str]:
    key = dd.create_api_key("k", scopes=list(scopes), tenant_key=tenant_key)
    return {"Authorization": f"Bearer {key.secret}"}


def _run(env, *keys: str) -> None:
    for key in keys:
        for i in range(3):
            env.dd.enroll(key, {"type": "User", "id": i}, data={"email": f"u{i}@x.io"})
    for _ in range(4):
        env.advance_and_run(timedelta(hours=7))


def test_sequence_analytics_shape(env, client) -> None:
    dd = env.dd
    world = mixed_sequence(dd)
    _run(env, "mix")
    r = client.get(
        f"/api/v1/sequences/{world['seq'].id}/analytics",
        headers=bearer(dd, "read"),
        params={"since": (env.clock() - timedelta(days=2)).isoformat()},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sequence_key"] == "mix" and body["version"] == 1
    assert body["enrolled"] == 3 and body["completed"] == 3
    assert [s["key"] for s in body["steps"]] == ["welcome", "pro_only", "flaky"]
    assert set(body["steps"][0]) >= {
        "step_id",
        "entered",
        "reached",
        "sent",
        "skipped",
        "failed",
        "retried",
        "drop_off",
        "drop_off_rate",
        "delivery",
    }
    assert body["channels"][0]["channel"] == "email"
    assert {p["adapter_name"] for p in body["providers"]} == {"ok-mix", "bad-mix"}
    assert {"sends", "error_rate", "p50_ms", "p95_ms"} <= set(body["providers"][0])
    assert body["versions"][0]["enrolled"] == 3
    assert body["since"].endswith("+00:00")


def test_adapter_health_shape_and_scope(env, client) -> None:
    dd = env.dd
    world = mixed_sequence(dd)
    _run(env, "mix")
    r = client.get(
        "/api/v1/adapters/health",
        headers=bearer(dd, "read"),
        params={"since": (env.clock() - timedelta(days=2)).isoformat()},
    )
    assert r.status_code == 200, r.text
    items = {h["name"]: h for h in r.json()["items"]}
    assert r.json()["next_cursor"] is None
    assert items["bad-mix"]["sends"] == 9 and items["bad-mix"]["error_rate"] == 1.0
    assert items["ok-mix"]["sends"] == 3 + 0  # welcome x3; pro_only skipped (no pro plans)
    one = client.get(
        "/api/v1/adapters/health",
        headers=bearer(dd, "read"),
        params={"adapter_id": str(world["ok"].id)},
    )
    assert [h["name"] for h in one.json()["items"]] == ["ok-mix"]
    assert client.get("/api/v1/adapters/health").status_code == 401


def test_tenants_see_only_their_own(env, client) -> None:
    dd = env.dd
    acme = mixed_sequence(dd, key="acme", tenant_key="acme")
    mixed_sequence(dd, key="globex", tenant_key="globex")
    _run_tenants(env)
    acme_key = bearer(dd, "read", tenant_key="acme")
    own = client.get(f"/api/v1/sequences/{acme['seq'].id}/analytics", headers=acme_key)
    assert own.status_code == 200 and own.json()["enrolled"] == 3
    globex_key = bearer(dd, "read", tenant_key="globex")
    other = client.get(f"/api/v1/sequences/{acme['seq'].id}/analytics", headers=globex_key)
    assert other.status_code == 404
    names = {
        h["name"] for h in client.get("/api/v1/adapters/health", headers=acme_key).json()["items"]
    }
    assert names == {"ok-acme", "bad-acme"}
    hidden = client.get(
        "/api/v1/adapters/health", headers=globex_key, params={"adapter_id": str(acme["ok"].id)}
    )
    assert hidden.status_code == 404
    # The operations themselves: a tenant's lookup by key or id never finds another's.
    assert dd.sequence_analytics("acme", tenant_key="acme").enrolled == 3
    with pytest.raises(Exception, match="not found"):
        dd.sequence_analytics(acme["seq"].id, tenant_key="globex")
    assert {h.name for h in dd.adapter_health(tenant_key="globex")} == {"ok-globex", "bad-globex"}
    assert dd.adapter_health() == []  # no global adapters


def _run_tenants(env) -> None:
    dd = env.dd
    for key in ("acme", "globex"):
        for i in range(3):
            dd.enroll(key, {"type": "User", "id": i}, data={"email": "a@x.io"}, tenant_key=key)
    env.advance_and_run(timedelta(hours=1))


def test_bad_input_is_a_problem(env, client) -> None:
    dd = env.dd
    world = mixed_sequence(dd)
    headers = bearer(dd, "read")
    url = f"/api/v1/sequences/{world['seq'].id}/analytics"
    naive = client.get(url, headers=headers, params={"since": "2030-01-01T00:00:00"})
    assert naive.status_code == 422
    assert naive.headers["content-type"].startswith("application/problem+json")
    assert "since" in naive.json()["errors"]
    assert client.get(url, headers=headers, params={"since": "yesterday"}).status_code == 422
    assert client.get(url, headers=headers, params={"version_id": "x"}).status_code == 422
    missing = "/api/v1/sequences/00000000-0000-0000-0000-000000000009/analytics"
    assert client.get(missing, headers=headers).status_code == 404
    bad = client.get("/api/v1/adapters/health", headers=headers, params={"adapter_id": "x"})
    assert bad.status_code == 422


def test_no_analytics_statement_reads_executions(env) -> None:
    dd = env.dd
    world = mixed_sequence(dd)
    _run(env, "mix")
    statements: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append((statement, parameters))

    engine = dd.runtime.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        dd.sequence_analytics("mix")
        dd.sequence_analytics(world["seq"].id, version_id=world["version"].id)
        dd.adapter_health()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(statements) >= 5
    rollups = [s for s in statements if "analytics_hourly" in s[0]]
    assert len(rollups) == 3
    with engine.connect() as conn:
        for statement, params in statements:
            assert "step_executions" not in statement
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            raw = conn.connection.driver_connection
            with raw.cursor() as cur:
                cur.execute("EXPLAIN " + statement, params)
                plan = "\n".join(r[0] for r in cur.fetchall())
            assert "step_executions" not in plan, plan
    # And the rollup reads use their index once the table is large enough to matter.
    sql(dd, "ANALYZE {s}.analytics_hourly")
    with engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        plan = conn.execute(
            text(
                f'EXPLAIN SELECT * FROM "{dd.schema}".analytics_hourly '
                "WHERE sequence_version_id = :v AND bucket >= now() - interval '30 days'"
            ),
            {"v": world["version"].id},
        ).scalars()
        assert "uq_analytics_hourly_key" in "\n".join(plan)
