"""Starting the chaos tests' webhook sink (tests/chaos/sink.py) on a busy shared machine: the
same process as chaos_support.SinkProcess, with a longer wait for it to listen (importing
DripDrop alone took 17 s at a load average of 20)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from chaos_support import HERE as CHAOS
from chaos_support import SinkProcess, new_signing_secret, wait_until

START_SECONDS = 120.0


def start_sink(directory: Path, delay: float = 0.0) -> SinkProcess:
    directory.mkdir(parents=True, exist_ok=True)
    sink = SinkProcess.__new__(SinkProcess)
    sink.secret = new_signing_secret()
    sink.log_path = directory / "requests.jsonl"
    sink.out_path = directory / "sink.out"
    port_file = directory / "port"
    args = [sys.executable, str(CHAOS / "sink.py"), str(port_file), str(sink.log_path)]
    with sink.out_path.open("w") as out:
        sink.proc = subprocess.Popen(
            [*args, "--delay", str(delay)],
            env={**os.environ, "SINK_SECRET": sink.secret},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: port_file.exists() or sink.proc.poll() is not None,
            START_SECONDS,
            "the sink to listen",
            sink.diagnostics,
            poll=0.05,
        )
        if sink.proc.poll() is not None:
            raise AssertionError(f"the sink exited:\n{sink.diagnostics()}")
        sink.url = f"http://127.0.0.1:{int(port_file.read_text())}/hook"
    except BaseException:
        sink.stop()
        raise
    return sink


# The installed `dripdrop` command beside this interpreter, as an operator runs it.
_SCRIPT = Path(sys.executable).with_name("dripdrop")
DRIPDROP = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "dripdrop.cli"]


def start_worker(
    directory: Path, name: str, database_url: str, schema: str, key: str, concurrency: int
) -> tuple[subprocess.Popen[bytes], Path]:
    """A `dripdrop worker` OS process on ``schema``; its output goes to ``directory/name.log``."""
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / f"{name}.log"
    args = [*DRIPDROP, "worker", "--database-url", database_url, "--schema", schema]
    environ = {
        **os.environ,
        "DRIPDROP_ENCRYPTION_KEY": key,
        "DRIPDROP_ALLOW_PRIVATE_NETWORK": "true",  # the sink is on loopback
        "PYTHONUNBUFFERED": "1",
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*args, "--concurrency", str(concurrency)],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return proc, log_path
