"""REST enrollments: single (idempotent), bulk NDJSON, paging, lifecycle, events, tenants."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import text
from web_support import bearer

API = "/api/v1"


@pytest.fixture
def seq(dd) -> Any:
    """An active sequence ``onb``: a welcome email now, a follow-up a day later."""
    dd.create_channel_adapter(name="mem", channel="email", provider="memory")
    s = dd.create_sequence(name="Onboarding", key="onb")
    v = dd.create_sequence_version(s.id, active=True)
    dd.create_step(v.id, name="welcome", channel="email", config={"subject": "Hi", "body": "b"})
    dd.create_step(
        v.id,
        name="later",
        channel="email",
        timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"},
        config={"subject": "Again", "body": "b"},
    )
    return s


def body(sid: Any = 1, **extra: Any) -> dict[str, Any]:
    return {
        "sequence_key": "onb",
        "subscriber": {"type": "User", "id": sid},
        "data": {"email": f"u{sid}@example.com"},
        **extra,
    }


def count(dd, table: str) -> int:
    with dd.runtime.engine.begin() as conn:
        return conn.execute(text(f'SELECT count(*) FROM "{dd.schema}".{table}')).scalar_one()


def test_enroll_get_and_conflicts(dd, client, admin, seq) -> None:
    created = client.post(
        f"{API}/enrollments", json=body(7, metadata={"src": "api"}), headers=admin
    )
    assert created.status_code == 201, created.text
    e = created.json()
    assert e["subscriber_type"] == "User" and e["subscriber_id"] == "7"
    assert e["state"] == "active" and e["metadata"] == {"src": "api"}
    assert e["sequence_id"] == str(seq.id) and e["started_at"].endswith("+00:00")
    assert client.get(f"{API}/enrollments/{e['id']}", headers=admin).json() == e
    again = client.post(f"{API}/enrollments", json=body(7), headers=admin)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    ignored = client.post(f"{API}/enrollments", json=body(7, on_conflict="ignore"), headers=admin)
    assert ignored.status_code == 201 and ignored.json()["id"] == e["id"]
    missing = client.post(
        f"{API}/enrollments", json={**body(8), "sequence_key": "nope"}, headers=admin
    )
    assert missing.status_code == 404
    bad = client.post(f"{API}/enrollments", json={"sequence_key": "onb"}, headers=admin)
    assert bad.status_code == 422 and "subscriber" in bad.json()["errors"]
    extra = client.post(f"{API}/enrollments", json=body(9, colour="red"), headers=admin)
    assert extra.status_code == 422 and "colour" in extra.json()["errors"]
    wrong = client.post(f"{API}/enrollments", json=body(9, on_conflict="merge"), headers=admin)
    assert wrong.status_code == 422 and "on_conflict" in wrong.json()["errors"]
    assert client.get(f"{API}/enrollments/{seq.id}", headers=admin).status_code == 404
    assert client.get(f"{API}/enrollments/not-an-id", headers=admin).status_code == 422
    read = bearer(dd, "read")
    assert client.post(f"{API}/enrollments", json=body(10), headers=read).status_code == 403


def test_an_idempotency_key_replays_the_first_answer(dd, client, admin, seq) -> None:
    key = {**admin, "Idempotency-Key": "abc-123"}
    first = client.post(f"{API}/enrollments", json=body(1), headers=key)
    assert first.status_code == 201
    again = client.post(f"{API}/enrollments", json=body(1), headers=key)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert count(dd, "enrollments") == 1 and count(dd, "step_executions") == 1
    other = client.post(f"{API}/enrollments", json=body(2), headers=key)
    assert other.status_code == 422 and list(other.json()["errors"]) == ["Idempotency-Key"]
    # Keys belong to the API key that sent them: another key may use the same one.
    mine = {**bearer(dd, "write"), "Idempotency-Key": "abc-123"}
    assert client.post(f"{API}/enrollments", json=body(2), headers=mine).status_code == 201
    # A failure stores nothing: the same key runs again once the cause is gone.
    fresh = {**admin, "Idempotency-Key": "later"}
    assert client.post(f"{API}/enrollments", json=body(1), headers=fresh).status_code == 409
    assert client.post(f"{API}/enrollments", json=body(3), headers=fresh).status_code == 201
    bad = client.post(f"{API}/enrollments", json=body(4), headers={**admin, "Idempotency-Key": ""})
    assert bad.status_code == 422 and list(bad.json()["errors"]) == ["Idempotency-Key"]


def test_an_idempotency_key_expires_after_a_day(dd, client, admin, seq, clock) -> None:
    key = {**admin, "Idempotency-Key": "k"}
    assert client.post(f"{API}/enrollments", json=body(1), headers=key).status_code == 201
    clock.advance(hours=25)
    # Expired: the key is free again (this body would have been a 422 within the day).
    assert client.post(f"{API}/enrollments", json=body(2), headers=key).status_code == 201
    assert count(dd, "enrollments") == 2 and count(dd, "idempotency_keys") == 1


def test_concurrent_requests_with_one_key_enroll_once(dd, client, admin, seq) -> None:
    real = dd.enroll
    calls: list[int] = []

    def slow_enroll(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        time.sleep(0.5)  # holds the key (uncommitted) while the other request arrives
        return real(*args, **kw)

    dd.enroll = slow_enroll
    key = {**admin, "Idempotency-Key": "race"}
    answers: list[Any] = [None, None]
    start = threading.Barrier(2)

    def send(i: int) -> None:
        start.wait()
        answers[i] = client.post(f"{API}/enrollments", json=body(1), headers=key)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert len(calls) == 1 and count(dd, "enrollments") == 1


def test_bulk_ndjson_enrolls_good_lines_and_reports_bad_ones(dd, client, admin, seq) -> None:
    lines = [
        '{"subscriber": {"type": "User", "id": 1}, "data": {"email": "a@x.io"}}',
        "{not json",
        '{"subscriber": {"type": "User", "id": 2}}',
        "",
        '{"subscriber": {"type": "User"}, "data": {}}',
        '{"subscriber": {"type": "User", "id": 3}, "colour": "red"}',
        '{"subscriber": {"type": "User", "id": 4}, "data": {"email": "d@x.io"}}',
    ]
    ndjson = {**admin, "Content-Type": "application/x-ndjson"}
    answer = client.post(
        f"{API}/enrollments/bulk?sequence_key=onb", content="\n".join(lines), headers=ndjson
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["enrolled"] == 3
    assert [e["line"] for e in result["errors"]] == [2, 5, 6]
    assert result["errors"][0]["errors"] == {"line": ["is not valid JSON"]}
    assert list(result["errors"][1]["errors"]) == ["subscriber.id"]
    assert "colour" in result["errors"][2]["errors"]
    assert count(dd, "enrollments") == 3 and count(dd, "step_executions") == 3
    # Already enrolled subscribers are left as they are.
    again = client.post(
        f"{API}/enrollments/bulk?sequence_key=onb", content=lines[0] + "\n", headers=ndjson
    )
    assert again.json() == {"enrolled": 0, "errors": [], "error_count": 0}
    url = f"{API}/enrollments/bulk?sequence_key=nope"
    assert client.post(url, content=lines[0], headers=ndjson).status_code == 404
    plain = client.post(
        f"{API}/enrollments/bulk?sequence_key=onb",
        content=lines[0],
        headers={**admin, "Content-Type": "application/json"},
    )
    assert plain.status_code == 415
    nokey = client.post(f"{API}/enrollments/bulk", content=lines[0], headers=ndjson)
    assert nokey.status_code == 422 and "sequence_key" in nokey.json()["errors"]


def test_paging_sees_each_enrollment_once_while_new_ones_arrive(dd, client, admin, seq) -> None:
    n = dd.enroll_many("onb", [{"subscriber": {"type": "User", "id": i}} for i in range(120)])
    assert n == 120
    seen: list[str] = []
    cursor = None
    added = 0
    while True:
        params: dict[str, Any] = {"limit": 50, "sequence_key": "onb"}
        if cursor:
            params["cursor"] = cursor
        listed = client.get(f"{API}/enrollments", params=params, headers=admin).json()
        seen += [e["id"] for e in listed["items"]]
        cursor = listed["next_cursor"]
        if cursor is None:
            break
        dd.enroll("onb", {"type": "User", "id": f"new{added}"})  # between pages
        added += 1
    assert len(seen) == len(set(seen)) == 120 + added
    assert added == 2
    with dd.runtime.engine.begin() as conn:
        ids = {
            str(i)
            for i in conn.execute(text(f'SELECT id FROM "{dd.schema}".enrollments')).scalars()
        }
    assert set(seen) == ids
    bad = client.get(f"{API}/enrollments", params={"cursor": "zzz"}, headers=admin)
    assert bad.status_code == 422 and list(bad.json()["errors"]) == ["cursor"]
    assert client.get(f"{API}/enrollments?limit=0", headers=admin).status_code == 422


def test_list_filters_by_sequence_and_state(dd, client, admin, seq) -> None:
    a = dd.enroll("onb", {"type": "User", "id": 1})
    b = dd.enroll("onb", {"type": "User", "id": 2})
    dd.pause_enrollment(b.id)
    paused = client.get(f"{API}/enrollments?state=paused", headers=admin).json()
    assert [e["id"] for e in paused["items"]] == [str(b.id)] and paused["next_cursor"] is None
    active = client.get(f"{API}/enrollments?sequence_key=onb&state=active", headers=admin).json()
    assert [e["id"] for e in active["items"]] == [str(a.id)]
    bad = client.get(f"{API}/enrollments?state=sleeping", headers=admin)
    assert bad.status_code == 422 and list(bad.json()["errors"]) == ["state"]
    assert client.get(f"{API}/enrollments?sequence_key=nope", headers=admin).status_code == 404


def test_pause_resume_unenroll_and_executions(dd, client, admin, seq) -> None:
    e = dd.enroll("onb", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    base = f"{API}/enrollments/{e.id}"
    paused = client.post(f"{base}/pause", headers=admin)
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    assert client.post(f"{base}/resume", headers=admin).json()["state"] == "active"
    executions = client.get(f"{base}/executions", headers=admin).json()
    assert [x["state"] for x in executions["items"]] == ["scheduled"]
    assert executions["items"][0]["enrollment_id"] == str(e.id)
    gone = client.post(f"{base}/unenroll", headers=admin)
    assert gone.status_code == 200 and gone.json()["state"] == "cancelled"
    assert client.get(f"{base}/executions", headers=admin).json()["items"][0]["state"] == (
        "cancelled"
    )
    assert client.post(f"{base}/unenroll", headers=admin).json()["state"] == "cancelled"
    no = client.post(f"{base}/resume", headers=admin)
    assert no.status_code == 422 and list(no.json()["errors"]) == ["state"]
    assert client.post(f"{base}/pause", headers=admin).status_code == 422
    unknown = f"{API}/enrollments/{seq.id}"
    for action in ("pause", "resume", "unenroll"):
        assert client.post(f"{unknown}/{action}", headers=admin).status_code == 404
    assert client.get(f"{unknown}/executions", headers=admin).status_code == 404


def test_events_by_enrollment_and_by_subscriber(dd, client, admin, seq) -> None:
    e = dd.enroll("onb", {"type": "User", "id": 1})
    one = client.post(
        f"{API}/enrollments/{e.id}/events",
        json={"event_key": "clicked", "event_data": {"link": "x"}},
        headers=admin,
    )
    assert one.status_code == 201
    assert one.json()["event_key"] == "clicked" and one.json()["enrollment_id"] == str(e.id)
    tracked = client.post(
        f"{API}/events",
        json={"subscriber": {"type": "User", "id": 1}, "event_key": "paid", "event_data": {}},
        headers=admin,
    )
    assert tracked.status_code == 201
    assert [ev["event_key"] for ev in tracked.json()["items"]] == ["paid"]
    nobody = client.post(
        f"{API}/events",
        json={"subscriber": {"type": "User", "id": 99}, "event_key": "paid"},
        headers=admin,
    )
    assert nobody.status_code == 201 and nobody.json()["items"] == []
    bad = client.post(
        f"{API}/events", json={"subscriber": {"type": "User", "id": 1}}, headers=admin
    )
    assert bad.status_code == 422 and "event_key" in bad.json()["errors"]
    unknown = client.post(
        f"{API}/enrollments/{seq.id}/events", json={"event_key": "x"}, headers=admin
    )
    assert unknown.status_code == 404
    empty = client.post(f"{API}/enrollments/{e.id}/events", json={"event_key": ""}, headers=admin)
    assert empty.status_code == 422 and "event_key" in empty.json()["errors"]


def test_a_tenant_key_sees_only_its_tenants_enrollments(dd, client, admin, seq) -> None:
    glob = dd.enroll("onb", {"type": "User", "id": 1})
    dd.create_sequence(name="Acme onboarding", key="onb", tenant_key="acme")
    acme_seq = dd.get_sequence("onb", tenant_key="acme")
    v = dd.create_sequence_version(acme_seq.id, active=True)
    dd.create_step(v.id, name="hi", channel="email", config={"subject": "s", "body": "b"})
    acme = bearer(dd, "read", "write", tenant_key="acme")
    assert client.get(f"{API}/enrollments", headers=acme).json()["items"] == []
    base = f"{API}/enrollments/{glob.id}"
    assert client.get(base, headers=acme).status_code == 404
    assert client.get(f"{base}/executions", headers=acme).status_code == 404
    for action in ("pause", "resume", "unenroll"):
        assert client.post(f"{base}/{action}", headers=acme).status_code == 404
    assert client.post(f"{base}/events", json={"event_key": "x"}, headers=acme).status_code == 404
    # The same subscriber's event from acme does not reach the global enrollment.
    tracked = client.post(
        f"{API}/events",
        json={"subscriber": {"type": "User", "id": 1}, "event_key": "x"},
        headers=acme,
    )
    assert tracked.json()["items"] == []
    # acme enrolls in its own "onb"; the global one is untouched.
    mine = client.post(f"{API}/enrollments", json=body(1), headers=acme)
    assert mine.status_code == 201 and mine.json()["tenant_key"] == "acme"
    assert mine.json()["sequence_id"] == str(acme_seq.id)
    listed = client.get(f"{API}/enrollments?sequence_key=onb", headers=acme).json()["items"]
    assert [e["id"] for e in listed] == [mine.json()["id"]]
    smuggled = client.post(f"{API}/enrollments", json=body(2, tenant_key="globex"), headers=acme)
    assert smuggled.status_code == 422 and list(smuggled.json()["errors"]) == ["tenant_key"]
    ndjson = {**acme, "Content-Type": "application/x-ndjson"}
    bulk = client.post(
        f"{API}/enrollments/bulk?sequence_key=onb",
        content='{"subscriber": {"type": "User", "id": 5}}\n',
        headers=ndjson,
    )
    assert bulk.json()["enrolled"] == 1
    everyone = client.get(f"{API}/enrollments", headers=admin).json()["items"]
    assert len(everyone) == 3
