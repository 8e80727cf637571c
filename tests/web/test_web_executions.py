"""REST executions, notifications (list, read, SSE stream over LISTEN/NOTIFY) and simulate."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
import uvicorn
from sqlalchemy import text
from web_support import bearer

from dripdrop.web.auth import Principal
from dripdrop.web.routes.executions import executions_query

API = "/api/v1"


@pytest.fixture
def seqs(dd) -> dict[str, Any]:
    """``ok`` sends an email; ``bad`` sends through an adapter that always fails; ``inbox``
    publishes to the topic ``signups`` through the PostgreSQL pub/sub provider."""
    dd.create_channel_adapter(name="mem", channel="email", provider="memory")
    broken = dd.create_channel_adapter(
        name="broken",
        channel="email",
        provider="memory",
        config={"fail": "permanent"},
        is_default=False,
    )
    dd.create_channel_adapter(name="inbox", channel="pubsub", provider="postgres")
    made = {}
    for key, step in (
        ("ok", {"channel": "email", "config": {"subject": "Hi", "body": "b"}}),
        (
            "bad",
            {
                "channel": "email",
                "config": {"subject": "Hi", "body": "b"},
                "channel_adapter_id": broken.id,
            },
        ),
        (
            "inbox",
            {
                "channel": "pubsub",
                "config": {"topic": "signups", "event": "joined", "payload": {"plan": "pro"}},
            },
        ),
    ):
        s = dd.create_sequence(name=key, key=key)
        v = dd.create_sequence_version(s.id, active=True)
        dd.create_step(v.id, name="first", **step)
        made[key] = s
    return made


def enroll(dd, key: str, *sids: Any) -> None:
    for sid in sids:
        dd.enroll(key, {"type": "User", "id": sid}, data={"email": f"u{sid}@example.com"})


def test_list_filter_page_get_and_replay_executions(dd, client, admin, seqs) -> None:
    enroll(dd, "ok", 1, 2, 3)
    enroll(dd, "bad", 4, 5)
    summary = dd.run_due()
    assert summary.sent == 3 and summary.failed == 2
    listed = client.get(f"{API}/executions", headers=admin).json()
    ids = [x["id"] for x in listed["items"]]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True)  # newest first
    assert listed["next_cursor"] is None
    failed = client.get(f"{API}/executions?state=failed", headers=admin).json()["items"]
    assert len(failed) == 2 and {x["state"] for x in failed} == {"failed"}
    assert len(client.get(f"{API}/executions?channel=email", headers=admin).json()["items"]) == 5
    assert client.get(f"{API}/executions?channel=sms", headers=admin).json()["items"] == []
    bad = client.get(f"{API}/executions?sequence_key=bad", headers=admin).json()["items"]
    assert {x["id"] for x in bad} == {x["id"] for x in failed}
    # Pages of 2: each once, in order.
    seen: list[str] = []
    cursor = None
    while True:
        page = client.get(
            f"{API}/executions", params={"limit": 2, "cursor": cursor or ""}, headers=admin
        ).json()
        seen += [x["id"] for x in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ids
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert (
        client.get(f"{API}/executions", params={"since": later}, headers=admin).json()["items"]
        == []
    )
    window = {"since": earlier, "until": later}
    assert len(client.get(f"{API}/executions", params=window, headers=admin).json()["items"]) == 5
    nope = client.get(f"{API}/executions?state=bogus", headers=admin)
    assert nope.status_code == 422 and list(nope.json()["errors"]) == ["state"]
    assert client.get(f"{API}/executions?sequence_key=nope", headers=admin).status_code == 404

    one = client.get(f"{API}/executions/{failed[0]['id']}", headers=admin)
    assert one.status_code == 200 and one.json() == failed[0]
    assert client.get(f"{API}/executions/{seqs['ok'].id}", headers=admin).status_code == 404
    assert client.get(f"{API}/executions/xyz", headers=admin).status_code == 422
    replayed = client.post(f"{API}/executions/{failed[0]['id']}/replay", headers=admin)
    assert replayed.status_code == 201
    assert replayed.json()["replay_of"] == failed[0]["id"]
    assert replayed.json()["state"] == "scheduled"
    sent = ids[-1]
    again = client.post(f"{API}/executions/{sent}/replay", headers=admin)
    assert again.status_code == 422
    assert client.post(f"{API}/executions/{seqs['ok'].id}/replay", headers=admin).status_code == (
        404
    )
    assert client.post(
        f"{API}/executions/{sent}/replay", headers=bearer(dd, "read")
    ).status_code == (403)


def test_listing_failed_executions_walks_an_index(dd, seqs) -> None:
    """The statement behind ``GET /executions?state=failed`` is served by the primary key
    ``pk_step_executions`` (ids are time-ordered): no sequential scan and no sort."""
    n = dd.enroll_many("bad", [{"subscriber": {"type": "User", "id": i}} for i in range(5000)])
    assert n == 5000
    with dd.runtime.engine.begin() as conn:
        s = f'"{dd.schema}"'
        conn.execute(text(f"UPDATE {s}.step_executions SET state = 'failed' WHERE random() < 0.2"))
        conn.execute(text(f"ANALYZE {s}.step_executions"))
    stmt = executions_query(Principal(frozenset({"read"})), state="failed", limit=50)
    sql = str(
        stmt.compile(dialect=dd.runtime.engine.dialect, compile_kwargs={"literal_binds": True})
    )

    def plan(seqscan: bool) -> str:
        with dd.runtime.engine.begin() as conn:
            conn.execute(text(f'SET LOCAL search_path TO "{dd.schema}"'))
            if not seqscan:
                conn.execute(text("SET LOCAL enable_seqscan = off"))
            return "\n".join(conn.execute(text(f"EXPLAIN {sql}")).scalars())

    for seqscan in (False, True):
        shown = plan(seqscan)
        assert "Seq Scan on step_executions" not in shown, shown
        assert "pk_step_executions" in shown and "Sort" not in shown, shown


def test_a_tenant_key_sees_no_global_executions_or_notifications(dd, client, seqs) -> None:
    enroll(dd, "bad", 1)
    enroll(dd, "inbox", 2)
    dd.run_due()
    acme = bearer(dd, "read", "write", tenant_key="acme")
    assert client.get(f"{API}/executions", headers=acme).json()["items"] == []
    assert client.get(f"{API}/executions?state=failed", headers=acme).json()["items"] == []
    admin = bearer(dd, "admin")
    everything = client.get(f"{API}/executions", headers=admin).json()["items"]
    assert len(everything) == 2
    for x in everything:
        assert client.get(f"{API}/executions/{x['id']}", headers=acme).status_code == 404
        assert client.post(f"{API}/executions/{x['id']}/replay", headers=acme).status_code == 404
    assert client.get(f"{API}/notifications?topic=signups", headers=acme).json()["items"] == []
    (note,) = client.get(f"{API}/notifications?topic=signups", headers=admin).json()["items"]
    assert client.post(f"{API}/notifications/{note['id']}/read", headers=acme).status_code == 404
    assert client.post(f"{API}/sequences/ok/simulate", json={}, headers=acme).status_code == 404


def test_notifications_list_and_mark_read(dd, client, admin, seqs) -> None:
    enroll(dd, "inbox", 1, 2)
    assert dd.run_due().sent == 2
    listed = client.get(f"{API}/notifications?topic=signups", headers=admin).json()
    assert len(listed["items"]) == 2 and listed["next_cursor"] is None
    first = listed["items"][0]
    assert first["event"] == "joined" and first["payload"] == {"plan": "pro"}
    assert first["read_at"] is None
    one = client.get(f"{API}/notifications?topic=signups&limit=1", headers=admin).json()
    rest = client.get(
        f"{API}/notifications",
        params={"topic": "signups", "limit": 1, "cursor": one["next_cursor"]},
        headers=admin,
    ).json()
    assert [n["id"] for n in one["items"] + rest["items"]] == [n["id"] for n in listed["items"]]
    read = client.post(f"{API}/notifications/{first['id']}/read", headers=admin)
    assert read.status_code == 200 and read.json()["read_at"] is not None
    unread = client.get(f"{API}/notifications?topic=signups&unread_only=true", headers=admin)
    assert [n["id"] for n in unread.json()["items"]] == [listed["items"][1]["id"]]
    assert client.get(f"{API}/notifications?topic=other", headers=admin).json()["items"] == []
    assert client.post(f"{API}/notifications/{seqs['ok'].id}/read", headers=admin).status_code == (
        404
    )
    assert client.get(f"{API}/notifications?topic=", headers=admin).status_code == 422


def test_simulate_returns_the_timeline(dd, client, admin, seqs) -> None:
    answer = client.post(
        f"{API}/sequences/ok/simulate",
        json={
            "data": {"email": "a@x.io"},
            "events": [{"after_seconds": 3600, "event_key": "paid", "event_data": {}}],
            "until_seconds": 86400,
        },
        headers=admin,
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["final_state"] == "completed"
    sent = [e for e in result["entries"] if e["step_key"] == "first"]
    assert sent and sent[0]["kind"] == "sent" and sent[0]["recipient"] == "a@x.io"
    assert any(e["detail"] and "paid" in e["detail"] for e in result["entries"]) or any(
        e["kind"] == "event" for e in result["entries"]
    )
    # Nothing was stored:
    assert client.get(f"{API}/enrollments", headers=admin).json()["items"] == []
    unknown = client.post(f"{API}/sequences/nope/simulate", json={}, headers=admin)
    assert unknown.status_code == 404
    bad = client.post(
        f"{API}/sequences/ok/simulate",
        json={"events": [{"after_seconds": -1, "event_key": "x"}]},
        headers=admin,
    )
    assert bad.status_code == 422 and "events.0.after_seconds" in bad.json()["errors"]


# --- the SSE stream, through a real server ------------------------------------------------


@pytest.fixture
def server(app) -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        srv.force_exit = True
        thread.join(10)


def read_events(lines: Iterator[str], n: int) -> list[dict[str, Any]]:
    """The next ``n`` SSE events (id and parsed data) from a response's ``iter_lines()``."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in lines:
        if line.startswith("id:"):
            current["id"] = line[3:].strip()
        elif line.startswith("data:"):
            current["data"] = json.loads(line[5:].strip())
        elif not line and "data" in current:
            events.append(current)
            current = {}
            if len(events) == n:
                return events
    raise AssertionError(f"stream ended after {events}")


def test_the_stream_sends_notifications_and_replays_after_last_event_id(
    dd, admin, seqs, server
) -> None:
    url = f"{server}{API}/notifications/stream"
    with httpx2.Client(timeout=httpx2.Timeout(10.0)) as http:
        with http.stream("GET", url, params={"topic": "signups"}, headers=admin) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            enroll(dd, "inbox", 1)  # the pub/sub step stores it and NOTIFYs on commit
            assert dd.run_due().sent == 1
            (first,) = read_events(stream.iter_lines(), 1)
        assert first["data"]["topic"] == "signups" and first["data"]["event"] == "joined"
        assert first["data"]["payload"] == {"plan": "pro"}
        assert first["id"] == first["data"]["id"]
        # Sent while nobody listened: a reconnect with Last-Event-ID gets them first, in order.
        enroll(dd, "inbox", 2)
        dd.run_due()
        enroll(dd, "inbox", 3)
        dd.run_due()
        notes = dd.list_notifications("signups")
        stored = [str(n.id) for n in sorted(notes, key=lambda n: (n.inserted_at, n.id))]
        assert stored[0] == first["id"]
        headers = {**admin, "Last-Event-ID": first["id"]}
        with http.stream("GET", url, params={"topic": "signups"}, headers=headers) as stream:
            lines = stream.iter_lines()
            missed = read_events(lines, 2)
            assert [e["id"] for e in missed] == stored[1:]
            enroll(dd, "inbox", 4)
            dd.run_due()
            (live,) = read_events(lines, 1)
            assert live["id"] not in {e["id"] for e in missed} | {first["id"]}
        assert http.get(url, params={"topic": "signups"}).status_code == 401
        bad = http.get(url, params={"topic": "signups"}, headers={**admin, "Last-Event-ID": "x"})
        assert bad.status_code == 422 and list(bad.json()["errors"]) == ["Last-Event-ID"]
