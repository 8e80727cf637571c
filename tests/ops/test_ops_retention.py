"""Retention: what a prune removes, what it never touches, the archive, the lock that lets one
process prune at a time, the worker pruning on its own, and prune racing a running worker."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from ops_support import enroll_n, sql, two_step_sequence
from typer.testing import CliRunner

from dripdrop import DripDrop
from dripdrop.cli import app
from dripdrop.ops.retention import Busy, prune, uuid7_floor
from dripdrop.testing import FakeClock, outbox


def _history(env) -> dict[str, object]:
    """Old history and live work side by side; returns what each part is."""
    dd, clock = env.dd, env.clock
    two_step_sequence(dd, second_delay_days=200)
    old = dd.enroll(
        sequence_key="s", subscriber={"type": "User", "id": "old"}, data={"email": "o@x.io"}
    )
    dd.track_event(old.id, "clicked")
    dd.run_due()  # step one sent; step two waits 200 days (scheduled, never pruned)
    done = dd.enroll(
        sequence_key="s", subscriber={"type": "User", "id": "done"}, data={"email": "d@x.io"}
    )
    dd.track_event(done.id, "clicked")
    dd.run_due()
    dd.unenroll("s", "User", "done")  # ended: its events may go, its cancelled step too
    clock.advance(days=100)
    fresh = dd.enroll(
        sequence_key="s", subscriber={"type": "User", "id": "new"}, data={"email": "n@x.io"}
    )
    dd.run_due()  # finished, but recent
    return {"old": old, "done": done, "fresh": fresh}


def test_prune_removes_only_old_finished_history(env) -> None:
    dd = env.dd
    parts = _history(env)
    sql(
        dd,
        "INSERT INTO {s}.idempotency_keys (scope, key, request_hash, status, response, created_at) "
        "VALUES ('k', 'old', '\\x00', 201, '{{}}', CAST(:now AS timestamptz) - interval '2 days'), "
        "('k', 'new', '\\x00', 201, '{{}}', :now)",
        now=env.clock(),
    )
    before = {
        r.state: r.n
        for r in sql(dd, "SELECT state, count(*) AS n FROM {s}.step_executions GROUP BY 1")
    }
    assert before == {"sent": 3, "scheduled": 2, "cancelled": 1}

    dry = prune(dd.runtime, timedelta(days=90), dry_run=True)
    assert dry.removed == {
        "step_executions": 3,
        "events": 1,
        "notifications": 0,
        "idempotency_keys": 1,
    }
    assert len(sql(dd, "SELECT 1 FROM {s}.step_executions")) == 6  # a dry run removes nothing

    result = prune(dd.runtime, timedelta(days=90))
    assert result.removed == dry.removed
    left = sql(dd, "SELECT enrollment_id, state FROM {s}.step_executions ORDER BY id")
    # The old enrollment's waiting step and the fresh enrollment's rows stay.
    assert sorted((r.enrollment_id, r.state) for r in left) == sorted(
        [
            (parts["old"].id, "scheduled"),
            (parts["fresh"].id, "sent"),
            (parts["fresh"].id, "scheduled"),
        ]
    )
    events = sql(dd, "SELECT enrollment_id FROM {s}.events")
    assert [e.enrollment_id for e in events] == [parts["old"].id]  # active: its events count
    assert [r.key for r in sql(dd, "SELECT key FROM {s}.idempotency_keys")] == ["new"]
    # Nothing is left to do a second time.
    assert prune(dd.runtime, timedelta(days=90)).total == 0


def test_read_notifications_are_pruned_unread_ones_kept(env) -> None:
    dd = env.dd
    ids = [uuid.uuid4() for _ in range(3)]
    for n, read in zip(ids, ("2029-01-01", None, "2029-12-30"), strict=True):
        sql(
            dd,
            "INSERT INTO {s}.notifications (id, topic, payload, read_at, inserted_at) "
            "VALUES (:id, 't', '{{}}', CAST(:read AS timestamptz), '2029-01-01')",
            id=uuid.UUID(
                int=(int(uuid7_floor(env.clock() - timedelta(days=400)).int) + ids.index(n))
            ),
            read=read,
        )
    result = prune(dd.runtime, timedelta(days=90))
    assert result.removed["notifications"] == 1
    assert sorted(
        str(r.read_at) for r in sql(dd, "SELECT read_at FROM {s}.notifications")
    ) == sorted(["None", "2029-12-30 00:00:00+00:00"])


def test_archive_keeps_each_removed_row_as_json(env) -> None:
    dd = env.dd
    two_step_sequence(dd)
    enroll_n(dd, 3)
    dd.run_due()
    env.clock.advance(days=30)
    ids = {r.id for r in sql(dd, "SELECT id FROM {s}.step_executions")}
    result = prune(dd.runtime, timedelta(days=7), archive=True)
    assert result.removed["step_executions"] == 6
    archived = sql(dd, "SELECT table_name, row_id, row FROM {s}.archived_rows")
    assert {a.row_id for a in archived} == ids
    assert all(a.table_name == "step_executions" and a.row["state"] == "sent" for a in archived)
    assert {a.row["recipient"] for a in archived} == {"u0@x.io", "u1@x.io", "u2@x.io"}


def test_one_process_prunes_a_schema_at_a_time(env) -> None:
    import psycopg

    from dripdrop.ops.retention import _LOCK_NAMESPACE

    dd = env.dd
    url = dd.runtime.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as other:  # another process's prune
        other.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, dd.schema))
        with pytest.raises(Busy):
            prune(dd.runtime, timedelta(days=1))
        other.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_LOCK_NAMESPACE, dd.schema))
    # That pruner is done: pruning works again, and each prune lets go of the lock after.
    assert prune(dd.runtime, timedelta(days=1)).total == 0
    assert prune(dd.runtime, timedelta(days=1)).total == 0


def test_prune_rejects_a_bad_age(env) -> None:
    from dripdrop.errors import ValidationError

    for bad in (timedelta(0), timedelta(days=-1), 90):
        with pytest.raises(ValidationError) as caught:
            prune(env.dd.runtime, bad)
        assert "older_than" in caught.value.errors


def test_the_cli_prunes_with_a_dry_run_first(env) -> None:
    dd = env.dd
    two_step_sequence(dd)
    enroll_n(dd, 4)
    dd.run_due()
    # The CLI runs on the real clock: make the rows 100 days old, ids (time-ordered) included.
    old = uuid7_floor(datetime.now(UTC) - timedelta(days=100)).int
    for i, row in enumerate(sql(dd, "SELECT id FROM {s}.step_executions ORDER BY id")):
        sql(
            dd,
            "UPDATE {s}.step_executions SET id = :new, updated_at = now() - interval '100 days' "
            "WHERE id = :id",
            new=uuid.UUID(int=old + i),
            id=row.id,
        )
    runner = CliRunner()
    base = ["--database-url", dd.runtime.database_url, "--schema", dd.schema]
    dry = runner.invoke(app, ["prune", "--older-than", "90d", "--dry-run", *base])
    assert dry.exit_code == 0, dry.output
    assert "step_executions: would remove 8" in dry.output
    assert len(sql(dd, "SELECT 1 FROM {s}.step_executions")) == 8
    done = runner.invoke(app, ["prune", "--older-than", "90d", "--batch-size", "3", *base])
    assert done.exit_code == 0, done.output
    assert "step_executions: removed 8" in done.output
    assert sql(dd, "SELECT count(*) AS n FROM {s}.step_executions")[0].n == 0
    bad = runner.invoke(app, ["prune", "--older-than", "ninety", *base])
    assert bad.exit_code == 2 and "--older-than" in bad.output


def test_a_worker_prunes_on_its_own_and_writes_its_health_file(env, tmp_path) -> None:
    dd = env.dd
    two_step_sequence(dd)
    enroll_n(dd, 5)
    dd.run_due()
    env.clock.advance(days=10)
    health = tmp_path / "worker.health"
    stop = threading.Event()
    worker = threading.Thread(
        target=dd.run_worker,
        kwargs={
            "stop_event": stop,
            "handle_signals": False,
            "retention": timedelta(days=1),
            "prune_interval": 1.0,
            "health_file": str(health),
            "poll_interval": 0.2,
        },
    )
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while sql(dd, "SELECT count(*) AS n FROM {s}.step_executions")[0].n:
            assert time.monotonic() < deadline, "the worker did not prune"
            time.sleep(0.1)
        while not health.exists():
            assert time.monotonic() < deadline, "no health file"
            time.sleep(0.1)
        import json

        status = json.loads(health.read_text())
        assert status["status"] == "ok" and status["schema"] == dd.schema
        first = health.stat().st_mtime
        while health.stat().st_mtime == first:  # rewritten while the worker lives
            assert time.monotonic() < deadline + 10, "the health file is not refreshed"
            time.sleep(0.2)
    finally:
        stop.set()
        worker.join(30)
    assert not worker.is_alive()


def test_prune_racing_a_running_worker_never_touches_unfinished_work(env) -> None:
    """Workers deliver 2-step chains while another process prunes every finished row the
    moment it is written (its clock a day ahead, retention one minute): each message goes out
    exactly once and every chain completes."""
    dd = env.dd
    two_step_sequence(dd)
    n = 1500
    enroll_n(dd, n)
    pruner = DripDrop(
        dd.runtime.database_url, schema=dd.schema, clock=FakeClock(env.clock() + timedelta(days=1))
    )
    stop_pruning = threading.Event()
    pruned: list[int] = []

    def prune_loop() -> None:
        while not stop_pruning.is_set():
            result = prune(
                pruner.runtime, timedelta(minutes=1), batch_size=50, pause=0, wait_for_lock=True
            )
            pruned.append(result.total)

    thread = threading.Thread(target=prune_loop)
    thread.start()
    try:
        stop = threading.Event()
        worker = threading.Thread(
            target=dd.run_worker,
            kwargs={
                "concurrency": 100,
                "batch_size": 50,
                "stop_event": stop,
                "handle_signals": False,
                "poll_interval": 0.05,
            },
        )
        worker.start()
        deadline = time.monotonic() + 120
        while sql(dd, "SELECT count(*) AS n FROM {s}.enrollments WHERE state = 'active'")[0].n:
            assert time.monotonic() < deadline, "the chains did not complete"
            time.sleep(0.1)
        stop.set()
        worker.join(30)
    finally:
        stop_pruning.set()
        thread.join(60)
        pruner.close()
    sent = outbox("email")
    assert len(sent) == 2 * n
    per_recipient: dict[str, int] = {}
    for message in sent:
        per_recipient[message.recipient] = per_recipient.get(message.recipient, 0) + 1
    assert set(per_recipient.values()) == {2}  # both steps, once each, for everyone
    assert sum(pruned) > n  # the pruner really removed rows while the worker ran
    assert sql(dd, "SELECT count(*) AS n FROM {s}.enrollments WHERE state = 'completed'")[0].n == n


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"retention": 90}, "retention"),
        ({"retention": timedelta(seconds=5)}, "retention"),
        ({"retention": timedelta(days=1), "archive": "yes"}, "archive"),
        ({"prune_interval": 0}, "prune_interval"),
        ({"prune_interval": float("nan")}, "prune_interval"),
        ({"health_file": ""}, "health_file"),
        ({"health_file": 3}, "health_file"),
    ],
)
def test_run_worker_names_a_bad_duty_option(env, kwargs, field) -> None:
    from dripdrop.errors import ValidationError

    stop = threading.Event()
    stop.set()
    with pytest.raises(ValidationError) as caught:
        env.dd.run_worker(stop_event=stop, handle_signals=False, **kwargs)
    assert list(caught.value.errors) == [field]


def test_a_pruner_rests_three_times_as_long_as_its_batches_run(env, monkeypatch) -> None:
    """A pruner spends about a quarter of its time deleting: after each batch it rests three
    times as long as the batch took (at least ``pause``), leaving the cores to the hot path."""
    from dripdrop.ops import retention

    dd = env.dd
    two_step_sequence(dd)
    enroll_n(dd, 40)
    dd.run_due()
    env.clock.advance(days=100)
    rests: list[float] = []
    monkeypatch.setattr(retention.time, "sleep", rests.append)  # counted, not slept
    started = time.monotonic()
    result = prune(dd.runtime, timedelta(days=90), batch_size=5, pause=1e-6)
    working = time.monotonic() - started
    assert result.removed["step_executions"] >= 40
    assert len(rests) >= 8 and min(rests) >= 1e-6
    # Each rest is three times its batch: together well over the time spent working.
    assert sum(rests) >= 1.5 * working, (sum(rests), working)
