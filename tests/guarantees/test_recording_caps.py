"""An execution row keeps at most MAX_TEXT characters of its error and recipient, whatever a
provider says (worker/storable.py): the common small row is written as it is, a longer text
is cut, and either way the batch is recorded once."""

from __future__ import annotations

import orjson
from guarantee_support import sequence, sql

from dripdrop.worker.storable import MAX_TEXT, dump_row


def test_a_provider_error_longer_than_a_row_keeps_is_cut_and_recorded(dd) -> None:
    sequence(dd, "l", provider="poison", steps=({"subject": "{{ kind }}"},))
    for i, kind in enumerate(("long", "ok")):
        dd.enroll("l", {"type": "User", "id": i}, data={"email": f"u{i}@x.io", "kind": kind})
    summary = dd.run_due()
    assert summary.failed == 1 and summary.sent == 1, summary
    [(message,)] = sql(dd, "SELECT error_message FROM {s}.step_executions WHERE state = 'failed'")
    assert len(message) <= MAX_TEXT and message.startswith("é" * 100)
    assert message.endswith("characters, cut)")
    assert dd.run_due().total == 0


def test_rows_at_and_past_the_text_cap() -> None:
    small = {"id": "x", "state": "sent", "error_message": "é" * 1000, "recipient": "a@b.io"}
    assert dump_row(small) == orjson.dumps(small)  # the common row: written as it is
    at_cap = {"id": "x", "error_message": "a" * MAX_TEXT}
    assert orjson.loads(dump_row(at_cap))["error_message"] == "a" * MAX_TEXT
    for text in ("a" * (MAX_TEXT + 1), "é" * (MAX_TEXT + 1), "😀" * (MAX_TEXT + 1)):
        for field in ("error_message", "recipient"):
            stored = orjson.loads(dump_row({"id": "x", field: text}))[field]
            assert len(stored) <= MAX_TEXT and stored.endswith("characters, cut)")
