"""References to steps (``step_executions.step_id``, ``enrollments.current_step_id``) are foreign
keys (migration 0005; 0002 had emulated them with triggers): a missing step is a foreign-key
violation, deleting a step cascades, and a step being referenced by an open transaction cannot
be deleted under it."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from dripdrop import DripDrop


def _sql(dd: DripDrop, statement: str, **params: Any) -> list[Any]:
    with dd.runtime.engine.begin() as conn:
        result = conn.execute(text(statement.format(s=f'"{dd.schema}"')), params)
        return result.all() if result.returns_rows else []


def _dsn(dd: DripDrop) -> str:
    url = make_url(dd.runtime.database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@pytest.fixture
def two_steps(dd: DripDrop) -> tuple[Any, Any]:
    seq = dd.create_sequence(name="S", key="s")
    version = dd.create_sequence_version(seq.id, active=True)
    dd.create_channel_adapter(name="mem", channel="email", provider="memory")
    first = dd.create_step(
        version.id, name="a", channel="email", config={"subject": "a", "body": "a"}
    )
    second = dd.create_step(
        version.id,
        name="b",
        channel="email",
        timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"},
        config={"subject": "b", "body": "b"},
    )
    return first, second


def _execution_of(dd: DripDrop) -> Any:
    return _sql(dd, "SELECT id, enrollment_id FROM {s}.step_executions LIMIT 1")[0]


INSERT_EXECUTION = (
    "INSERT INTO {s}.step_executions (id, enrollment_id, step_id, channel, idempotency_key) "
    "VALUES (gen_random_uuid(), :enrollment_id, :step_id, 'email', 'k')"
)


def _assert_fk_violation(caught: pytest.ExceptionInfo[IntegrityError], constraint: str) -> None:
    orig = caught.value.orig
    assert isinstance(orig, psycopg.errors.ForeignKeyViolation)
    assert orig.diag.constraint_name == constraint
    assert 'is not present in table "steps"' in (orig.diag.message_detail or "")


def test_an_execution_of_a_missing_step_is_a_foreign_key_violation(dd, two_steps) -> None:
    dd.enroll("s", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    enrollment_id = _execution_of(dd).enrollment_id
    with pytest.raises(IntegrityError) as caught:
        _sql(dd, INSERT_EXECUTION, enrollment_id=enrollment_id, step_id=uuid.uuid4())
    _assert_fk_violation(caught, "fk_step_executions_step_id_steps")
    # A batch with one bad row fails whole, like a foreign key.
    with pytest.raises(IntegrityError):
        _sql(
            dd,
            "INSERT INTO {s}.step_executions (enrollment_id, step_id, channel, idempotency_key) "
            "VALUES (:e, :good, 'email', 'k1'), (:e, :bad, 'email', 'k2')",
            e=enrollment_id,
            good=two_steps[1].id,
            bad=uuid.uuid4(),
        )
    assert len(_sql(dd, "SELECT 1 FROM {s}.step_executions")) == 1


def test_moving_an_execution_or_an_enrollment_to_a_missing_step_is_refused(dd, two_steps) -> None:
    dd.enroll("s", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    row = _execution_of(dd)
    with pytest.raises(IntegrityError) as caught:
        _sql(dd, "UPDATE {s}.step_executions SET step_id = :x", x=uuid.uuid4())
    _assert_fk_violation(caught, "fk_step_executions_step_id_steps")
    with pytest.raises(IntegrityError) as caught:
        _sql(dd, "UPDATE {s}.enrollments SET current_step_id = :x", x=uuid.uuid4())
    _assert_fk_violation(caught, "fk_enrollments_current_step_id_steps")
    # Existing steps (and no step, for an enrollment) are accepted.
    _sql(dd, "UPDATE {s}.step_executions SET step_id = :x", x=two_steps[1].id)
    _sql(dd, "UPDATE {s}.enrollments SET current_step_id = NULL")
    _sql(dd, "UPDATE {s}.enrollments SET current_step_id = :x", x=two_steps[1].id)
    assert _sql(dd, "SELECT step_id FROM {s}.step_executions WHERE id = :i", i=row.id)[0][0] == (
        two_steps[1].id
    )


def test_deleting_a_step_deletes_its_executions_and_clears_current_steps(dd, two_steps) -> None:
    first, second = two_steps
    for sid in range(3):
        dd.enroll("s", {"type": "User", "id": sid}, data={"email": f"u{sid}@x.io"})
    dd.run_due()  # the first step is sent; every enrollment now stands on the second
    other = dd.create_sequence(name="Other", key="other")
    other_version = dd.create_sequence_version(other.id, active=True)
    dd.create_step(
        other_version.id, name="x", channel="email", config={"subject": "x", "body": "x"}
    )
    dd.enroll("other", {"type": "User", "id": 9}, data={"email": "o@x.io"})

    dd.delete_step(second.id)

    steps = [r.step_id for r in _sql(dd, "SELECT step_id FROM {s}.step_executions")]
    assert second.id not in steps
    assert steps.count(first.id) == 3  # the other step's history stays
    assert len(steps) == 4  # and the other sequence's execution
    currents = _sql(
        dd,
        "SELECT e.current_step_id FROM {s}.enrollments e JOIN {s}.sequences q "
        "ON q.id = e.sequence_id WHERE q.key = 's'",
    )
    assert [c for (c,) in currents] == [None, None, None]
    assert (
        _sql(
            dd,
            "SELECT current_step_id FROM {s}.enrollments e JOIN {s}.sequences q "
            "ON q.id = e.sequence_id WHERE q.key = 'other'",
        )[0][0]
        is not None
    )


def test_deleting_a_sequence_still_takes_everything_with_it(dd, two_steps) -> None:
    dd.enroll("s", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    dd.delete_sequence(dd.get_sequence("s").id)
    for table in ("steps", "enrollments", "step_executions"):
        assert _sql(dd, f"SELECT count(*) FROM {{s}}.{table}")[0][0] == 0, table


def test_a_step_referenced_by_an_open_transaction_cannot_be_deleted_under_it(dd, two_steps) -> None:
    """Like a foreign key: the insert locks the step (FOR KEY SHARE), so the delete waits for
    it, and then its cascade takes the new execution too — no execution outlives its step."""
    dd.enroll("s", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    enrollment_id = _execution_of(dd).enrollment_id
    second = two_steps[1]
    inserting = psycopg.connect(_dsn(dd))
    try:
        inserting.execute(
            INSERT_EXECUTION.format(s=f'"{dd.schema}"')
            .replace(":enrollment_id", "%s")
            .replace(":step_id", "%s"),
            (enrollment_id, second.id),
        )
        deleted = threading.Event()

        def delete() -> None:
            dd.delete_step(second.id)
            deleted.set()

        deleter = threading.Thread(target=delete)
        deleter.start()
        time.sleep(0.5)
        assert not deleted.is_set(), "the delete did not wait for the inserting transaction"
        inserting.commit()
        deleter.join(10)
        assert deleted.is_set()
    finally:
        inserting.close()
    assert _sql(dd, "SELECT 1 FROM {s}.step_executions WHERE step_id = :i", i=second.id) == []


def test_an_execution_cannot_reference_a_step_being_deleted(dd, two_steps) -> None:
    """The other order: the step's delete is in flight; the insert waits for it, then fails."""
    dd.enroll("s", {"type": "User", "id": 1}, data={"email": "a@x.io"})
    enrollment_id = _execution_of(dd).enrollment_id
    second = two_steps[1]
    deleting = psycopg.connect(_dsn(dd))
    failure: list[BaseException] = []
    try:
        deleting.execute(f'DELETE FROM "{dd.schema}".steps WHERE id = %s', (second.id,))

        def insert() -> None:
            try:
                _sql(dd, INSERT_EXECUTION, enrollment_id=enrollment_id, step_id=second.id)
            except BaseException as exc:
                failure.append(exc)

        inserter = threading.Thread(target=insert)
        inserter.start()
        time.sleep(0.5)
        assert inserter.is_alive(), "the insert did not wait for the deleting transaction"
        deleting.commit()
        inserter.join(10)
    finally:
        deleting.close()
    assert len(failure) == 1 and isinstance(failure[0], IntegrityError)
    assert isinstance(failure[0].orig, psycopg.errors.ForeignKeyViolation)
