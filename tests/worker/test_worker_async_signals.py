"""AsyncDripDrop.run_worker stops gracefully on SIGTERM and gives the loop its handlers back;
``handle_signals=False`` leaves signals to the host (both faces)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from sqlalchemy import text

from dripdrop import AsyncDripDrop
from dripdrop.config import system_clock

KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

# Under asyncio.run, SIGINT already has asyncio's own handler and SIGTERM the default one: both
# must be the same again once run_worker returns.
SCRIPT = textwrap.dedent(
    """
    import asyncio, signal, sys
    from dripdrop import AsyncDripDrop

    async def main():
        add = AsyncDripDrop(sys.argv[1], schema=sys.argv[2], encryption_key=sys.argv[3])
        before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
        summary = await add.run_worker(concurrency=4, poll_interval=0.2)
        after = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
        print(f"stopped: sent={summary.sent}", flush=True)
        print(f"handlers restored: {after == before}", flush=True)
        await add.close()

    asyncio.run(main())
    """
)


def _sequence(dd) -> None:
    dd.create_channel_adapter(name="console", channel="email", provider="console")
    seq = dd.create_sequence(name="Sig", key="sig")
    v = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(
        v.id, name="hello", channel="email", config={"subject": "Hello {{ name }}", "body": "b"}
    )


def test_async_worker_process_stops_on_sigterm(env, database_url, tmp_path: Path) -> None:
    dd = env.dd
    _sequence(dd)
    script = tmp_path / "async_worker.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), database_url, env.schema, KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = ""
    try:
        dd.runtime.clock = system_clock  # the worker uses the real clock
        dd.enroll("sig", {"type": "User", "id": 1}, data={"email": "a@x.io", "name": "Ada"})
        deadline = time.monotonic() + 20
        state = None
        while time.monotonic() < deadline and proc.poll() is None:
            with dd.runtime.engine.begin() as conn:
                state = conn.execute(
                    text(f'SELECT state FROM "{env.schema}".step_executions')
                ).scalar()
            if state == "sent":  # the worker is running (and so are its handlers)
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.1)
        else:
            proc.kill()  # never delivered: show what it printed
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert state == "sent", out
    assert proc.returncode == 0, out  # without a handler SIGTERM killed it (-15)
    assert "Hello Ada" in out
    assert "stopped: sent=1" in out
    assert "handlers restored: True" in out


async def test_async_worker_hands_the_loop_its_signal_handler_back(env, database_url) -> None:
    loop = asyncio.get_running_loop()
    host: list[str] = []
    loop.add_signal_handler(signal.SIGTERM, host.append, "host")
    add = AsyncDripDrop(database_url, schema=env.schema, clock=env.clock, encryption_key=KEY)
    try:
        stop = asyncio.Event()
        worker = asyncio.create_task(add.run_worker(stop_event=stop, poll_interval=0.1))
        await asyncio.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(worker, 10)  # the worker's handler stopped it...
        assert stop.is_set() and host == []
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.2)
        assert host == ["host"]  # ...and the host's handler is back

        stop = asyncio.Event()
        worker = asyncio.create_task(
            add.run_worker(stop_event=stop, poll_interval=0.1, handle_signals=False)
        )
        await asyncio.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.2)
        assert host == ["host", "host"] and not stop.is_set()  # opted out: the host's signal
        stop.set()
        await asyncio.wait_for(worker, 10)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        await add.close()


def test_sync_worker_leaves_signals_alone_when_asked(dd) -> None:
    def during(handle_signals: bool) -> object:
        stop = threading.Event()
        seen: list[object] = []

        def look() -> None:
            time.sleep(0.3)
            seen.append(signal.getsignal(signal.SIGTERM))
            stop.set()

        threading.Thread(target=look).start()
        dd.run_worker(stop_event=stop, poll_interval=0.1, handle_signals=handle_signals)
        return seen[0]

    before = signal.getsignal(signal.SIGTERM)
    assert during(handle_signals=False) is before
    assert during(handle_signals=True) is not before  # the worker's handler while it runs
    assert signal.getsignal(signal.SIGTERM) is before
