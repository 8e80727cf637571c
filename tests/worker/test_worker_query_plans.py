"""The hot queue queries walk the partial indexes, not the history: checked with EXPLAIN on a
table of a million finished executions, some future and in-flight ones, and a few due ones."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from worker_support import enroll_n, one_step_sequence, sql

from dripdrop.worker.batch import claim_params
from dripdrop.worker.queries import (
    CLAIM,
    FENCE,
    FINISH,
    NEXT_DUE,
    NEXT_WAKE,
    RELEASE,
    RENEW,
    q,
    raw_sql,
)

FINISHED = 1_000_000
DUE = 20

HISTORY = """
INSERT INTO {s}.step_executions
    (id, enrollment_id, step_id, state, scheduled_for, executed_at, channel, idempotency_key)
SELECT lpad(to_hex(g), 32, '0')::uuid, e.id, :step, 'sent', :now - make_interval(mins => g),
       :now - make_interval(mins => g), 'email', 'hist-' || g
FROM (SELECT id FROM {s}.enrollments LIMIT 1) AS e, generate_series(1, :n) AS g
"""

# 1000 future executions, and 5 due ones in flight (under another worker's live lease).
FUTURE_AND_IN_FLIGHT = """
INSERT INTO {s}.step_executions
    (enrollment_id, step_id, state, scheduled_for, channel, idempotency_key, locked_until,
     lease_token)
SELECT e.id, :step, 'scheduled',
       CASE WHEN g <= 5 THEN :now - interval '1 minute' ELSE :now + make_interval(days => g) END,
       'email', 'future-' || g,
       CASE WHEN g <= 5 THEN clock_timestamp() + interval '1 minute' END,
       CASE WHEN g <= 5 THEN gen_random_uuid() END
FROM (SELECT id FROM {s}.enrollments LIMIT 1) AS e, generate_series(1, 1005) AS g
"""


def _fill(dd: Any) -> None:
    step = one_step_sequence(dd)
    enroll_n(dd, DUE)
    params = {"step": step.id, "now": dd.runtime.now(), "n": FINISHED}
    started = time.monotonic()
    with dd.runtime.engine.begin() as conn:
        # One enrollment and one step carry the whole history, so the foreign keys hold by
        # construction; as a superuser we skip re-checking them row by row (halves the time).
        superuser = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        if conn.execute(text(superuser)).scalar():
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(HISTORY.format(s=f'"{dd.schema}"')), params)
        conn.execute(text(FUTURE_AND_IN_FLIGHT.format(s=f'"{dd.schema}"')), params)
    sql(dd, "ANALYZE {s}.step_executions")
    print(f"\ninserted {FINISHED} finished executions in {time.monotonic() - started:.1f} s")
    orphans = sql(
        dd,
        "SELECT count(*) FROM {s}.step_executions x WHERE NOT EXISTS "
        "(SELECT 1 FROM {s}.enrollments e WHERE e.id = x.enrollment_id) OR NOT EXISTS "
        "(SELECT 1 FROM {s}.steps st WHERE st.id = x.step_id)",
    )
    assert orphans == [(0,)]


def _plan(dd: Any, query: str, **params: Any) -> dict[str, Any]:
    with dd.runtime.engine.begin() as conn:
        raw = conn.execute(
            text("EXPLAIN (FORMAT JSON) " + q(query, dd.schema).text), params
        ).scalar()
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out += _nodes(child)
    return out


ORDERED = ("Index Scan", "Index Only Scan")


def _assert_uses(plan: dict[str, Any], index: str) -> None:
    """No sequential scan of step_executions, and ``index`` read in order by an index scan."""
    nodes = _nodes(plan)
    shown = json.dumps(plan, indent=1)
    seq = [n for n in nodes if n["Node Type"] == "Seq Scan"]
    assert not [n for n in seq if n.get("Relation Name") == "step_executions"], shown
    used = {(n["Node Type"], n.get("Index Name")) for n in nodes}
    assert any((kind, index) in used for kind in ORDERED), shown


def test_queue_queries_walk_the_partial_indexes_over_a_million_finished_rows(dd) -> None:
    _fill(dd)
    now = dd.runtime.now()
    claim = {"now": now, "limit": 100, "token": uuid.uuid4(), "worker": "w", "lease": 120.0}

    _assert_uses(_plan(dd, CLAIM, **claim), "ix_step_executions_due")
    _assert_uses(_plan(dd, NEXT_DUE), "ix_step_executions_due")
    _assert_uses(_plan(dd, NEXT_WAKE), "ix_step_executions_due")
    # The fence, the heartbeat and the release look rows up by id: through the primary key or,
    # when the planner finds it smaller, the due index — never the history.
    ids = ",".join(str(uuid.uuid4()) for _ in range(100))
    by_id = {"ids": ids, "token": uuid.uuid4(), "lease": 30.0}
    for query in (FENCE, RENEW, RELEASE):
        plan = _plan(dd, query, **by_id)
        try:
            _assert_uses(plan, "pk_step_executions")
        except AssertionError:
            _assert_uses(plan, "ix_step_executions_due")

    # And the claim takes exactly the due rows, fast: neither history, nor future work, nor rows
    # under a live lease.
    with dd.runtime.engine.begin() as conn:
        started = time.monotonic()
        rows = conn.execute(q(CLAIM, dd.schema), claim).all()
        took = time.monotonic() - started
    assert len(rows) == DUE
    print(f"claim of {DUE} due among {FINISHED + 1005 + DUE} rows: {took * 1000:.1f} ms")
    assert took < 0.5


def _explain_prepared(conn: Any, statement: str, types: str, args: str) -> list[dict[str, Any]]:
    """EXPLAIN a prepared statement under forced custom and generic plans: both plans' nodes.
    (EXECUTE takes no bind parameters, so ``args`` are SQL literals.)"""
    conn.exec_driver_sql(f"PREPARE dd_stmt ({types}) AS {statement}")
    plans = []
    for mode in ("force_custom_plan", "force_generic_plan"):
        conn.exec_driver_sql(f"SET LOCAL plan_cache_mode = {mode}")
        raw = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) EXECUTE dd_stmt ({args})").scalar()
        plans.append((json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"])
    conn.exec_driver_sql("DEALLOCATE dd_stmt")
    return plans


def _finish_plans(dd: Any) -> list[dict[str, Any]]:
    """FINISH for a batch of 100 outcomes, prepared: its custom and generic plans."""
    rows = [
        {
            "id": str(uuid.uuid4()),
            "state": "sent",
            "action": "next",
            "next_id": str(uuid.uuid4()),
            "next_step_id": str(uuid.uuid4()),
        }
        for _ in range(100)
    ]
    finish = (
        raw_sql(FINISH, dd.schema)
        .replace("%(rows)s", "$1")
        .replace("%(now)s", "$2")
        .replace("%(token)s", "$3")
    )
    with dd.runtime.engine.begin() as conn:
        return _explain_prepared(
            conn,
            finish,
            "jsonb, timestamptz, uuid",
            f"$j${json.dumps(rows)}$j$, '{dd.runtime.now().isoformat()}', '{uuid.uuid4()}'",
        )


def test_prepared_claim_and_finish_use_the_indexes_in_custom_and_generic_plans(dd) -> None:
    """psycopg prepares the hot statements after a few runs, and PostgreSQL may then switch to
    a generic plan: the claim (its batch size written into the statement) still walks the due
    index, and FINISH reaches the executions it records by primary key, never by a scan of the
    history. (Enrollments are 20 rows here: a scan of them is the right plan.)"""
    _fill(dd)
    rt = dd.runtime
    sql, _ = claim_params(rt, 100, uuid.uuid4(), rt.now(), 120.0)
    claim = raw_sql(sql, dd.schema)
    for name, n in (("now", 1), ("token", 2), ("worker", 3), ("lease", 4)):
        claim = claim.replace(f"%({name})s", f"${n}")
    with rt.engine.begin() as conn:
        claim_plans = _explain_prepared(
            conn,
            claim,
            "timestamptz, uuid, text, float8",
            f"'{rt.now().isoformat()}', '{uuid.uuid4()}', 'w', 120",
        )
    finish_plans = _finish_plans(dd)
    for plan in claim_plans:
        _assert_uses(plan, "ix_step_executions_due")
    for plan in finish_plans:
        nodes = _nodes(plan)
        shown = json.dumps(plan, indent=1)
        scanned = {n.get("Relation Name") for n in nodes if n["Node Type"] == "Seq Scan"}
        assert "step_executions" not in scanned, shown
        assert "pk_step_executions" in {n.get("Index Name") for n in nodes}, shown


@pytest.mark.parametrize("enrollments", [200, 3000])
def test_finish_never_rescans_its_batch_on_a_small_table(dd, enrollments: int) -> None:
    """On a small table a scan of step_executions can be the right plan, but never one that
    walks the whole batch again for each row it finds (a nested loop over the batch): the
    lease-token test must not look so selective that the planner expects a single row."""
    one_step_sequence(dd)
    enroll_n(dd, enrollments)
    sql(dd, "ANALYZE {s}.step_executions")
    for plan in _finish_plans(dd):
        for node in _nodes(plan):
            if node["Node Type"] != "Nested Loop":
                continue
            inner = [c for c in node["Plans"] if c.get("Parent Relationship") == "Inner"]
            assert inner and inner[0]["Node Type"] != "CTE Scan", json.dumps(plan, indent=1)
