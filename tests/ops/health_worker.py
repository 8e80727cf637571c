"""A worker process with a health port whose event loop can be stalled, for the health port
tests.

    python health_worker.py

Reads DD_URL, DD_SCHEMA, DD_HEALTH_PORT, DD_BEAT (seconds between the health beats, instead of
5), and DD_STALL (a file: once it exists, its content — seconds — is slept *on the event loop*,
as a provider making a blocking call would, and the file is removed). Runs
``AsyncDripDrop.run_worker(health_port=...)`` until SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from dripdrop import AsyncDripDrop
from dripdrop.ops import sidecar


async def stall_on_request(path: Path) -> None:
    while True:
        if path.exists():
            seconds = float(path.read_text() or "0")
            path.unlink()
            time.sleep(seconds)  # blocks the loop: no beat, no lane, no await runs meanwhile
        await asyncio.sleep(0.05)


async def main() -> None:
    sidecar.HEALTH_INTERVAL = float(os.environ.get("DD_BEAT", "5"))
    dd = AsyncDripDrop(os.environ["DD_URL"], schema=os.environ["DD_SCHEMA"])
    staller = asyncio.create_task(stall_on_request(Path(os.environ["DD_STALL"])))
    try:
        summary = await dd.run_worker(
            concurrency=2, health_port=int(os.environ["DD_HEALTH_PORT"]), poll_interval=0.5
        )
        print(f"stopped: {summary}", flush=True)
    finally:
        staller.cancel()
        await dd.close()


if __name__ == "__main__":
    asyncio.run(main())
