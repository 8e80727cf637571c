"""Rows of the growing tables get time-ordered ids (UUID version 7), so inserts append to the
right edge of the primary-key indexes."""

from __future__ import annotations

from typing import Any

from dripdrop.ids import new_id, new_id_strings


def test_new_ids_are_version_7_and_ordered() -> None:
    ids = [new_id() for _ in range(1000)]
    assert {i.version for i in ids} == {7}
    assert ids == sorted(ids)
    texts = new_id_strings(500)
    assert texts == sorted(texts) and len(set(texts)) == 500
    assert all(t[14] == "7" for t in texts)


def test_enrollments_and_executions_use_time_ordered_ids(flow: Any, dd: Any) -> None:
    flow.step("one")
    flow.step("two", timing={"type": "delay", "delay_amount": 1, "delay_unit": "days"})
    single = flow.enroll(1)
    assert dd.enroll_many(flow.key, [{"subscriber": {"type": "User", "id": 2}, "data": {}}]) == 1
    bulk = dd.get_enrollment(flow.key, "User", 2)
    dd.run_due()
    for enrollment in (single, bulk):
        assert enrollment.id.version == 7
        executions = dd.list_executions(enrollment.id)
        assert len(executions) == 2
        assert {e.id.version for e in executions} == {7}
