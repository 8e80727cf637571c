"""The worker and suppressions: a suppressed recipient's execution is skipped with the reason,
nothing reaches the provider, the enrollment goes on; tenant, global and category semantics."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from deliverability_support import email_sequence, memory_adapters, subscriber

from dripdrop.testing import TestEnv, outbox


def _sent_to(channel: str = "email") -> list[str]:
    return [m.recipient for m in outbox(channel)]


def test_a_suppressed_recipient_is_skipped_and_the_enrollment_goes_on(dd, clock):
    memory_adapters(dd)
    email_sequence(dd, "welcome", steps=2)
    dd.suppress("email", "  Ada@Example.COM ", reason="bounce")
    ada = dd.enroll("welcome", subscriber(1), data={"name": "Ada", "email": "ada@example.com"})
    bo = dd.enroll("welcome", subscriber(2), data={"name": "Bo", "email": "bo@example.com"})
    dd.run_due()
    clock.advance(days=1)
    dd.run_due()

    assert _sent_to() == ["bo@example.com", "bo@example.com"]
    ada_runs = dd.list_executions(ada.id)
    assert [x.state for x in ada_runs] == ["skipped", "skipped"]
    assert {x.error_message for x in ada_runs} == {"suppressed: bounce"}
    assert {x.recipient for x in ada_runs} == {"ada@example.com"}
    assert all(x.payload is None for x in ada_runs)  # never rendered
    # the enrollment went on through both steps and completed, like Bo's
    assert dd.get_enrollment_by_id(ada.id).state == "completed"
    assert dd.get_enrollment_by_id(bo.id).state == "completed"


def test_one_suppressed_among_many_in_one_batch(dd):
    memory_adapters(dd)
    email_sequence(dd, "bulk", steps=1)
    suppressed = {7, 42, 199}
    for n in suppressed:
        dd.suppress("email", f"user{n}@example.com", reason="complaint")
    dd.enroll_many(
        "bulk",
        [
            {"subscriber": subscriber(n), "data": {"email": f"User{n}@Example.com"}}
            for n in range(300)
        ],
    )
    summary = dd.run_due(batch_size=500)

    assert summary.sent == 297 and summary.skipped == 3
    sent = set(_sent_to())
    assert len(sent) == 297
    assert not sent & {f"User{n}@Example.com" for n in suppressed}


def test_sms_numbers_match_in_e164_with_the_default_region(database_url, clock):
    env = TestEnv(database_url, clock=clock, phone_region="GB")
    try:
        dd = env.dd
        memory_adapters(dd)
        email_sequence(dd, "texts", steps=1, channel="sms")
        dd.suppress("sms", "+44 7700 900123", reason="manual")
        dd.enroll("texts", subscriber(1), data={"phone": "07700 900123"})
        dd.enroll("texts", subscriber(2), data={"phone": "07700 900456"})
        dd.run_due()
        assert _sent_to("sms") == ["07700 900456"]
    finally:
        env.close()


def test_tenant_rows_stay_in_their_tenant_and_global_rows_apply_to_all(dd):
    for tenant in ("acme", "globex"):
        memory_adapters(dd, tenant)
        email_sequence(dd, "news", steps=1, tenant_key=tenant)
    dd.suppress("email", "ann@example.com", tenant_key="acme")
    dd.suppress("email", "gus@example.com")  # global
    for tenant in ("acme", "globex"):
        for n, who in enumerate(("ann", "gus", "kim")):
            dd.enroll(
                "news", subscriber(n), data={"email": f"{who}@example.com"}, tenant_key=tenant
            )
    dd.run_due()

    sent = sorted((m.adapter, m.recipient) for m in outbox("email"))
    assert sent == [
        ("mem-email-acme", "kim@example.com"),
        ("mem-email-globex", "ann@example.com"),
        ("mem-email-globex", "kim@example.com"),
    ]
    assert dd.is_suppressed("email", "ann@example.com", "acme")
    assert not dd.is_suppressed("email", "ann@example.com", "globex")
    assert dd.is_suppressed("email", "GUS@example.com", "globex")


def test_categories_and_transactional_sequences(dd):
    memory_adapters(dd)
    email_sequence(dd, "promo", steps=1, category="marketing")
    email_sequence(dd, "tips", steps=1, category="product")
    email_sequence(dd, "receipts", steps=1, category="transactional")
    email_sequence(dd, "misc", steps=1)  # uncategorised
    dd.suppress("email", "mkt@example.com", reason="unsubscribe", category="marketing")
    dd.suppress("email", "all@example.com", reason="unsubscribe")  # every category…
    dd.suppress("email", "bounced@example.com", reason="bounce")  # …and a hard bounce
    for key in ("promo", "tips", "receipts", "misc"):
        for n, who in enumerate(("mkt", "all", "bounced")):
            dd.enroll(key, subscriber(n), data={"email": f"{who}@example.com"})
    dd.run_due()

    got = sorted((m.metadata["sequence_key"], m.recipient) for m in outbox("email"))
    assert got == [
        ("misc", "mkt@example.com"),
        ("receipts", "all@example.com"),  # a transactional email ignores opt-outs…
        ("receipts", "mkt@example.com"),  # …but never a bounce
        ("tips", "mkt@example.com"),
    ]
    assert dd.is_suppressed("email", "mkt@example.com", category="marketing")
    assert not dd.is_suppressed("email", "mkt@example.com", category="product")
    assert not dd.is_suppressed("email", "all@example.com", category="transactional")
    assert dd.is_suppressed("email", "bounced@example.com", category="transactional")


def test_a_templated_recipient_is_checked_once_rendered(dd):
    memory_adapters(dd)
    email_sequence(dd, "work", steps=1, to="{{ work_email }}")
    dd.suppress("email", "boss@corp.example")
    dd.enroll("work", subscriber(1), data={"work_email": "Boss@Corp.example"})
    dd.enroll("work", subscriber(2), data={"work_email": "dev@corp.example"})
    summary = dd.run_due()
    assert (summary.sent, summary.skipped) == (1, 1)
    assert _sent_to() == ["dev@corp.example"]


def test_unsuppress_lets_messages_through_again(dd, clock):
    memory_adapters(dd)
    email_sequence(dd, "two", steps=2)
    dd.suppress("email", "ada@example.com", tenant_key=None)
    dd.enroll("two", subscriber(1), data={"email": "ada@example.com"})
    dd.run_due()
    assert dd.unsuppress("email", "ADA@example.com") == 1
    clock.advance(days=1)
    dd.run_due()
    assert _sent_to() == ["ada@example.com"]  # the second step only


def test_suppress_while_the_worker_runs(database_url):
    """Race: whatever a running worker claims after suppress() returns is skipped.

    Real clock; one enrollment per 20 ms keeps the worker claiming while the suppression
    commits. Every execution of the suppressed address that ran after suppress() returned is
    skipped, and none of them reached the provider."""
    env = TestEnv(database_url, clock=lambda: datetime.now(UTC))
    dd = env.dd
    stop = threading.Event()
    worker = threading.Thread(
        target=dd.run_worker,
        kwargs={"concurrency": 10, "stop_event": stop, "handle_signals": False},
    )
    ids = []
    try:
        memory_adapters(dd)
        email_sequence(dd, "race", steps=1)
        worker.start()
        suppressed_at = None
        for n in range(60):
            if n == 30:
                dd.suppress("email", "target@example.com", reason="complaint")
                suppressed_at = datetime.now(UTC)
            ids.append(dd.enroll("race", subscriber(n), data={"email": "target@example.com"}).id)
            time.sleep(0.02)

        def finished() -> list:
            runs = [x for i in ids for x in dd.list_executions(i)]
            return [x for x in runs if x.state in ("sent", "skipped")]

        deadline = time.monotonic() + 20
        while len(finished()) < 60 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        if worker.is_alive():
            worker.join(30)
    try:
        done = finished()
        assert len(done) == 60
        after = [x for x in done if x.executed_at >= suppressed_at]
        assert after, "the worker should still have been running after the suppression"
        assert {x.state for x in after} == {"skipped"}
        assert {x.error_message for x in after} == {"suppressed: complaint"}
        sent = [x for x in done if x.state == "sent"]
        assert len(outbox("email")) == len(sent) < 60
        assert all(x.executed_at < suppressed_at for x in sent)
    finally:
        env.close()


@pytest.mark.parametrize("region", [None, "US"])
def test_the_batch_check_is_one_query(dd, region, monkeypatch):
    """However many recipients a batch has, the suppression lookup is one statement."""
    from dripdrop.engine import suppression

    calls = []
    real = suppression.lookup

    def counting(*args, **kwargs):
        calls.append(len(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(suppression, "lookup", counting)
    dd.runtime.phone_region = region
    memory_adapters(dd)
    email_sequence(dd, "one_query", steps=1)
    dd.enroll_many(
        "one_query",
        [{"subscriber": subscriber(n), "data": {"email": f"u{n}@x.example"}} for n in range(250)],
    )
    dd.run_due(batch_size=500, lanes=1)
    assert calls == [250]
