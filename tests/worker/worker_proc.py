"""A worker process for the multi-process tests.

    python worker_proc.py OUT_JSON

Reads DD_URL, DD_SCHEMA, DD_NOW (the fake clock's time, ISO), and optionally DD_LEASE (lease
seconds), DD_CONCURRENCY, DD_BATCH, DD_MAX_SECONDS, DD_GO (a file to wait for before starting,
after printing "ready"). Runs ``run_worker`` until no execution is
``scheduled`` or ``sending`` (or the time limit), then writes the execution ids it delivered
(from this process's outbox) and its summary to OUT_JSON.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import datetime

import worker_providers  # noqa: F401  (registers the slow and flaky providers)
from sqlalchemy import text

from dripdrop import DripDrop
from dripdrop.testing import FakeClock, outbox


def main(out_path: str) -> None:
    schema = os.environ["DD_SCHEMA"]
    clock = FakeClock(datetime.fromisoformat(os.environ["DD_NOW"]))
    dd = DripDrop(os.environ["DD_URL"], schema=schema, clock=clock)
    stop = threading.Event()
    deadline = time.monotonic() + float(os.environ.get("DD_MAX_SECONDS", "60"))

    def watch() -> None:
        while not stop.is_set():
            with dd.runtime.engine.connect() as conn:
                left = conn.execute(
                    text(
                        f'SELECT count(*) FROM "{schema}".step_executions '
                        "WHERE state = 'scheduled'"
                    )
                ).scalar()
            if not left or time.monotonic() > deadline:
                stop.set()
            time.sleep(0.1)

    print("ready", flush=True)
    go = os.environ.get("DD_GO")  # start together with the other workers: wait for this file
    while go and not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.01)
    threading.Thread(target=watch, daemon=True).start()
    summary = dd.run_worker(
        concurrency=int(os.environ.get("DD_CONCURRENCY", "50")),
        stop_event=stop,
        batch_size=int(os.environ.get("DD_BATCH", "50")),
        poll_interval=0.5,
        lease_seconds=float(os.environ.get("DD_LEASE", "120")),
    )
    dd.close()
    with open(out_path, "w") as f:
        json.dump(
            {
                "pid": os.getpid(),
                "delivered": [m.execution_id for m in outbox()],
                "sent": summary.sent,
                "failed": summary.failed,
            },
            f,
        )


if __name__ == "__main__":
    main(sys.argv[1])
