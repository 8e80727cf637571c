"""The worker loop in a thread: graceful stop with deliveries in flight, and LISTEN/NOTIFY
waking it at once (far sooner than its poll interval)."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from worker_support import enroll_n, executions, one_step_sequence, sql, states

from dripdrop.testing import outbox


@contextmanager
def running_worker(dd: Any, **options: Any) -> Iterator[tuple[threading.Event, Callable[[], Any]]]:
    """``run_worker`` in a thread; yields (stop_event, join) where join() returns its summary."""
    stop = threading.Event()
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["summary"] = dd.run_worker(stop_event=stop, **options)
        except BaseException as exc:  # surfaced by join()
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join(timeout: float = 15.0) -> Any:
        thread.join(timeout)
        assert not thread.is_alive(), "run_worker did not return after stop"
        if "error" in result:
            raise result["error"]
        return result["summary"]

    try:
        yield stop, join
    finally:
        stop.set()
        thread.join(15.0)


def _wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return value


def test_stop_lets_in_flight_deliveries_finish(dd) -> None:
    one_step_sequence(dd, provider="slow", adapter_config={"delay": 0.5})
    enroll_n(dd, 30)
    with running_worker(dd, concurrency=10, batch_size=10, poll_interval=0.2) as (stop, join):
        in_flight = _wait_for(
            lambda: (
                len(ids := {r.id for r in executions(dd) if r.reported == "sending"}) == 10 and ids
            ),
            10,
            "10 deliveries in flight",
        )
        stop.set()
        stopped = time.monotonic()
        summary = join()
        took = time.monotonic() - stopped
    rows = {r.id: r for r in executions(dd)}
    assert took < 2.0, f"stop took {took:.2f} s"
    assert {rows[i].state for i in in_flight} == {"sent"}
    assert "sending" not in states(dd)
    sent = {i for i, r in rows.items() if r.state == "sent"}
    assert summary.sent == len(sent) == len(outbox())
    assert len(sent) < 30, "the worker went on claiming after stop"
    assert {r.state for i, r in rows.items() if i not in sent} == {"scheduled"}
    assert all(r.lease_token is None and r.locked_until is None for r in rows.values())


def test_stop_releases_deliveries_that_outlast_the_grace_period(dd) -> None:
    one_step_sequence(dd, provider="slow", adapter_config={"delay": 10})
    enroll_n(dd, 5)
    with running_worker(dd, concurrency=5, poll_interval=0.2, grace=0.3) as (stop, join):
        _wait_for(lambda: states(dd).get("sending", 0) == 5, 10, "5 deliveries in flight")
        stop.set()
        stopped = time.monotonic()
        summary = join()
        took = time.monotonic() - stopped
    assert took < 2.0
    assert summary.sent == 0 and outbox() == []
    # Given back at once for another worker, not left to wait for the lease to expire.
    assert {(r.state, r.lease_token, r.locked_until) for r in executions(dd)} == {
        ("scheduled", None, None)
    }


def test_notify_wakes_the_worker_long_before_its_poll_interval(dd) -> None:
    one_step_sequence(dd)
    latencies: list[float] = []
    with running_worker(dd, concurrency=10, poll_interval=5.0) as (stop, join):
        for i in range(21):
            started = time.monotonic()
            dd.enroll("s", {"type": "User", "id": i}, data={"email": f"u{i}@x.io"})
            _wait_for(lambda n=i + 1: len(outbox()) == n, 4.0, f"delivery {i}")
            if i:  # the first one warms up (the listener connects as the worker starts)
                latencies.append(time.monotonic() - started)
            time.sleep(0.05)
        stop.set()
        summary = join()
    assert summary.sent == 21
    median = statistics.median(latencies)
    print(
        f"\nenroll → delivered: median {median * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms over {len(latencies)}"
    )
    assert max(latencies) < 1.0, latencies
    assert median < 0.25, latencies


def test_concurrency_bounds_the_deliveries_in_flight(dd) -> None:
    one_step_sequence(dd, provider="slow", adapter_config={"delay": 0.3})
    enroll_n(dd, 60)
    peak = 0
    with running_worker(dd, concurrency=15, batch_size=10, poll_interval=0.2) as (stop, join):
        deadline = time.monotonic() + 20
        while len(outbox()) < 60:
            assert time.monotonic() < deadline, "the worker did not deliver all 60"
            peak = max(peak, states(dd).get("sending", 0))
            time.sleep(0.02)
        stop.set()
        summary = join()
    assert summary.sent == 60
    # Two lanes of 8 and 7 (15 split over batches of 10): never more than 15 at once, and
    # more than one lane at work.
    assert 8 < peak <= 15, peak


@pytest.mark.parametrize(
    ("concurrency", "batch_size", "sizes"),
    [
        (1, 500, [1]),
        (5, 500, [3, 2]),  # two lanes whenever there is room for two
        (15, 10, [8, 7]),
        (200, 100, [100, 100]),
        (1000, 500, [500, 500]),
        (1001, 500, [334, 334, 333]),  # more lanes once concurrency exceeds two batches
    ],
)
def test_lanes_share_out_the_concurrency(concurrency: int, batch_size: int, sizes: list) -> None:
    from dripdrop.worker.sizing import lane_sizes

    assert lane_sizes(concurrency, batch_size) == sizes
    assert sum(sizes) == concurrency and max(sizes) <= batch_size


def test_worker_rides_out_lost_database_connections(dd) -> None:
    """Every connection of the worker is killed while a batch is being delivered: the lane
    keeps that batch's outcomes, reconnects and records them, and goes on. Nothing is lost and
    nothing is delivered twice."""
    one_step_sequence(dd, provider="slow", adapter_config={"delay": 0.5})
    enroll_n(dd, 30)
    with running_worker(dd, concurrency=10, batch_size=10, poll_interval=0.2) as (stop, join):
        _wait_for(lambda: states(dd).get("sending", 0) == 10, 10, "10 deliveries in flight")
        killed = sql(
            dd,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name",
            name=f"dripdrop worker {dd.schema}"[:63],
        )
        assert killed, "no worker connection to kill"
        _wait_for(lambda: states(dd).get("sent", 0) == 30, 20, "all 30 recorded as sent")
        stop.set()
        summary = join()
    ids = [m.execution_id for m in outbox()]
    assert len(ids) == len(set(ids)) == 30
    assert summary.sent == 30


def test_a_failing_record_is_written_one_by_one_not_retried_or_resent(dd, caplog) -> None:
    """The next step is deleted while the batch before it is being delivered: recording that
    batch then fails (its next executions would point at a missing step). That is not retried
    forever, nor is the batch sent again: its outcomes are written one by one, their next step
    worked out from the definitions as they are now, and the enrollments complete without the
    deleted step."""
    seq = dd.create_sequence(name="S", key="s")
    version = dd.create_sequence_version(seq.id, active=True)
    dd.create_channel_adapter(name="slow", channel="email", provider="slow", config={"delay": 0.5})
    dd.create_step(version.id, name="a", channel="email", config={"subject": "a", "body": "a"})
    doomed = dd.create_step(
        version.id, name="b", channel="email", config={"subject": "b", "body": "b"}
    )
    enroll_n(dd, 3)
    with running_worker(
        dd, concurrency=10, batch_size=10, poll_interval=0.2, lease_seconds=1.0
    ) as (stop, join):
        _wait_for(lambda: states(dd).get("sending", 0) == 3, 10, "3 deliveries in flight")
        dd.delete_step(doomed.id)
        _wait_for(lambda: not dd.list_active_enrollments("s"), 20, "the enrollments to end")
        stop.set()
        join()
    assert "one by one" in caplog.text
    # Only the error's first line: PostgreSQL's DETAIL quotes the row (rendered content).
    assert "DETAIL" not in caplog.text
    ids = [m.execution_id for m in outbox()]
    assert len(ids) == len(set(ids)) == 3, "a delivered message was sent again"
    assert states(dd) == {"sent": 3}
    assert {r.state for r in sql(dd, "SELECT state FROM {s}.enrollments")} == {"completed"}


def test_an_idle_worker_waits_out_other_workers_leases_instead_of_spinning(dd, monkeypatch) -> None:
    """Due rows under another worker's live lease are not claimable: an idle worker sleeps
    until that lease runs out (or its poll comes), then takes the rows over."""
    from dripdrop.worker import runner

    one_step_sequence(dd)
    enroll_n(dd, 5)
    sql(
        dd,
        "UPDATE {s}.step_executions SET lease_token = gen_random_uuid(), locked_by = 'other', "
        "locked_until = clock_timestamp() + interval '1.5 seconds'",
    )
    rounds: list[float] = []
    real = runner.finish_and_claim

    def counting(*args: Any) -> Any:
        rounds.append(time.monotonic())
        return real(*args)

    monkeypatch.setattr(runner, "finish_and_claim", counting)
    started = time.monotonic()
    with running_worker(dd, concurrency=10, poll_interval=5.0, listen=False) as (stop, join):
        _wait_for(lambda: len(outbox()) == 5, 10, "the rows after the other lease ran out")
        took = time.monotonic() - started
        stop.set()
        join()
    # One look at start, one when the lease ran out (and each lane's empty claim after its
    # batch): a handful of round trips, not a spin.
    assert len(rounds) <= 8, len(rounds)
    assert 1.3 < took < 4.0, took
