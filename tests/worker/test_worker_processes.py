"""Several worker OS processes on one queue: every execution is delivered exactly once, and a
worker killed mid-batch loses nothing."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from worker_support import enroll_n, executions, one_step_sequence, sql, start_worker, states

N = 2000


def test_two_worker_processes_deliver_each_execution_exactly_once(
    dd, database_url: str, tmp_path: Path
) -> None:
    one_step_sequence(dd)
    assert enroll_n(dd, N) == N
    assert states(dd) == {"scheduled": N}

    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    go = tmp_path / "go"
    procs = [start_worker(dd, database_url, out, concurrency=20, batch=20, go=go) for out in outs]
    for p in procs:  # both imported and connected: start them at the same moment
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    go.touch()
    for p in procs:
        output, _ = p.communicate(timeout=60)
        assert p.returncode == 0, output
    results = [json.loads(out.read_text()) for out in outs]

    rows = executions(dd)
    assert len(rows) == N
    assert {r.state for r in rows} == {"sent"}
    assert all(r.lease_token is None and r.locked_until is None for r in rows)
    ids = {str(r.id) for r in rows}
    a, b = (r["delivered"] for r in results)
    print(f"\nprocess A delivered {len(a)}, process B delivered {len(b)}")
    assert len(a) == len(set(a)) and len(b) == len(set(b)), "a process delivered one twice"
    assert set(a) & set(b) == set(), "both processes delivered the same execution"
    assert set(a) | set(b) == ids
    assert [r["sent"] for r in results] == [len(a), len(b)]
    assert min(len(a), len(b)) > N // 10, "one process did (almost) nothing"
    # Each row was written by the process that delivered it: locked_by is cleared, but the
    # enrollments all completed exactly once.
    assert sql(dd, "SELECT state, count(*) FROM {s}.enrollments GROUP BY 1") == [("completed", N)]


def test_worker_killed_mid_batch_loses_nothing(dd, database_url: str, tmp_path: Path) -> None:
    one_step_sequence(dd, provider="slow", adapter_config={"delay": 3})
    n = 30
    enroll_n(dd, n)

    victim = start_worker(dd, database_url, tmp_path / "victim.json", lease=2, concurrency=n)
    deadline = time.monotonic() + 15
    while states(dd).get("sending", 0) < n:
        assert time.monotonic() < deadline, f"victim never claimed: {states(dd)}"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    assert victim.returncode == -signal.SIGKILL

    # The rows are stuck under the dead worker's lease: nobody may claim them until it expires.
    rows = executions(dd)
    assert {(r.state, r.reported) for r in rows} == {("scheduled", "sending")}
    assert all(r.lease_token is not None and r.executed_at is None for r in rows)
    assert len({r.locked_by for r in rows}) == 1
    assert not (tmp_path / "victim.json").exists()

    # The victim's 2 s lease expires; a second worker claims the rows again and sends them.
    rescuer = start_worker(
        dd, database_url, tmp_path / "rescuer.json", concurrency=n, max_seconds=30
    )
    output, _ = rescuer.communicate(timeout=40)
    assert rescuer.returncode == 0, output
    result = json.loads((tmp_path / "rescuer.json").read_text())

    rows = executions(dd)
    assert len(rows) == n
    assert {r.state for r in rows} == {"sent"}
    assert sorted(result["delivered"]) == sorted(str(r.id) for r in rows)
    assert all(r.retry_count == 0 and r.locked_by is None for r in rows)
