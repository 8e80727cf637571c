"""The REST API of flow control: transitions (list, create, get, patch, delete), their
conditions, a split step's branch counts; a tenant-bound key sees only its tenant's (404)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from dripdrop.web import create_app


@pytest.fixture
def client(dd):
    with TestClient(create_app(dd)) as c:
        yield c


def headers(dd, tenant=None):
    key = dd.create_api_key("k", scopes=["write"], tenant_key=tenant)
    return {"Authorization": f"Bearer {key.secret}"}


def test_transitions_over_rest(dd, flow, client):
    h = headers(dd)
    a, b, c = (flow.step(k) for k in "abc")
    base = f"/api/v1/versions/{flow.version.id}/transitions"
    r = client.post(
        base,
        json={
            "from_step_id": str(a.id),
            "to_step_id": str(c.id),
            "condition_mode": "all",
            "priority": 5,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    t = r.json()
    assert (t["to_step_id"], t["condition_mode"], t["priority"]) == (str(c.id), "all", 5)
    r = client.post(
        f"/api/v1/transitions/{t['id']}/conditions",
        headers=h,
        json={
            "condition_type": "enrollment_data",
            "field_path": "plan",
            "operator": "eq",
            "expected_value": "pro",
        },
    )
    assert r.status_code == 201 and r.json()["transition_id"] == t["id"]
    cond = r.json()["id"]
    listed = client.get(f"/api/v1/transitions/{t['id']}/conditions", headers=h).json()
    assert [x["id"] for x in listed["items"]] == [cond]
    r = client.patch(f"/api/v1/conditions/{cond}", headers=h, json={"expected_value": "team"})
    assert r.status_code == 200 and r.json()["expected_value"] == "team"
    r = client.patch(f"/api/v1/transitions/{t['id']}", headers=h, json={"priority": 1})
    assert r.status_code == 200 and r.json()["priority"] == 1
    page = client.get(base, headers=h).json()
    assert [x["id"] for x in page["items"]] == [t["id"]] and page["next_cursor"] is None
    # A loop without a wait: 422 naming the field.
    r = client.post(base, json={"from_step_id": str(c.id), "to_step_id": str(a.id)}, headers=h)
    assert r.status_code == 422 and "to_step_id" in r.json()["errors"]
    assert r.headers["content-type"].startswith("application/problem+json")
    # Another tenant's key does not see it.
    other = headers(dd, tenant="acme")
    assert client.get(f"/api/v1/transitions/{t['id']}", headers=other).status_code == 404
    assert client.get(base, headers=other).status_code == 404
    assert client.delete(f"/api/v1/transitions/{t['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/transitions/{t['id']}", headers=h).status_code == 404
    assert b is not None


def test_branch_counts_over_rest(dd, flow, client):
    h = headers(dd)
    s = flow.step(
        "ab",
        channel="split",
        config={"split": {"branches": [{"name": "A", "weight": 1}, {"name": "B", "weight": 1}]}},
    )
    flow.step("a")
    for i in range(40):
        flow.enroll(i)
    dd.run_due()
    items = client.get(f"/api/v1/steps/{s.id}/branches", headers=h).json()["items"]
    assert {x["branch"] for x in items} == {"A", "B"}
    assert sum(x["count"] for x in items) == 40
