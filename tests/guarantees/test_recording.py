"""An execution's outcome can always be recorded, whatever it holds, and one that cannot be
stored never costs the rest of its batch (nor sends them again)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from guarantee_support import sequence, sql
from sqlalchemy import text

from dripdrop.testing import outbox
from dripdrop.worker.batch import connection_lost
from dripdrop.worker.storable import MAX_JSON

POISONS = ("nul", "surrogate", "bigint", "huge", "deep", "nan", "fail")


def test_poisoned_answers_are_stored_cleaned_and_never_resent(dd) -> None:
    """Each poisoned answer sits in one batch with healthy ones: all are recorded at once, the
    poisoned ones cleaned and capped, and a second run sends nothing again."""
    sequence(dd, "p", provider="poison", steps=({"subject": "{{ kind }}"}, {"subject": "ok"}))
    kinds = [*POISONS, "ok", "ok", "ok"]
    for i, kind in enumerate(kinds):
        dd.enroll("p", {"type": "User", "id": i}, data={"email": f"u{i}@x.io", "kind": kind})

    first = dd.run_due()
    # every first step recorded and every second one too (they were due at once)
    assert first.sent == 2 * len(kinds) - 1 and first.failed == 1, first
    sent_once = [m.execution_id for m in outbox()]
    assert len(sent_once) == len(set(sent_once))

    assert dd.run_due().total == 0
    assert [m.execution_id for m in outbox()] == sent_once, "a delivered message went out again"
    rows = {
        r.kind: r
        for r in sql(
            dd,
            "SELECT e.data->>'kind' AS kind, x.* FROM {s}.step_executions x "
            "JOIN {s}.enrollments e ON e.id = x.enrollment_id "
            "JOIN {s}.steps st ON st.id = x.step_id WHERE st.position = 1",
        )
    }
    assert rows["nul"].response["body"] == {"text": "a\ufffdb", "k\ufffd": 1}
    assert rows["nul"].response["provider_message_id"] == "id\ufffd"
    assert rows["surrogate"].response["body"] == {"text": "\ufffd lone"}
    assert rows["bigint"].response["body"] == {"n": str(2**70), "m": str(-(2**80))}
    huge = rows["huge"].response
    assert huge["truncated"] is True and len(huge["preview"]) <= 2000
    assert len(str(rows["huge"].response)) < MAX_JSON
    assert rows["nan"].response["body"] == {"f": None, "g": None}
    assert rows["deep"].state == "sent"
    assert rows["fail"].state == "failed" and "\x00" not in rows["fail"].error_message
    assert "rejected \ufffd \ufffd" in rows["fail"].error_message
    assert {r.state for k, r in rows.items() if k != "fail"} == {"sent"}
    assert sql(dd, "SELECT count(*) FROM {s}.enrollments WHERE state = 'completed'") == [
        (len(kinds),)
    ]


def test_a_hook_value_with_nul_is_stored(dd) -> None:
    sequence(dd, "h", steps=({"subject": "{{ nul }}"},), hook_module="guarantee_hooks")
    dd.enroll("h", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    assert dd.run_due().sent == 1
    [row] = sql(dd, "SELECT payload FROM {s}.step_executions")
    assert row.payload["hook_values"] == {"nul": "x\ufffdy"}
    assert dd.run_due().total == 0


def _error(dd: Any, statement: str, *setup: str) -> BaseException:
    with dd.runtime.worker_engine.connect() as conn:
        for s in setup:
            conn.execute(text(s))
        try:
            conn.execute(text(statement))
        except Exception as exc:
            return exc
    raise AssertionError("no error")


def test_only_a_lost_connection_counts_as_one(dd) -> None:
    """Deterministic errors (a timeout, a value too large) fail the same way again: they are
    not retried as if the database had gone away."""
    timeout = _error(dd, "SELECT pg_sleep(2)", "SET statement_timeout = '50ms'")
    assert isinstance(timeout.orig, psycopg.errors.QueryCanceled)  # an OperationalError
    assert not connection_lost(timeout)
    too_large = _error(dd, "SELECT repeat('x', 1024 * 1024 * 1024)::text || repeat('x', 100)")
    assert not connection_lost(too_large)

    with dd.runtime.worker_engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        sql(dd, "SELECT pg_terminate_backend(:pid)", pid=pid)
        time.sleep(0.1)
        with pytest.raises(Exception) as lost:
            conn.execute(text("SELECT 1"))
    assert connection_lost(lost.value)
