"""The worker's health port for orchestrators (``dripdrop worker --health-port``,
``run_worker(health_port=...)``): ``GET /health`` and ``GET /ready``.

The worker's event loop reports to a :class:`HealthState` every few seconds (``ops/sidecar.py``:
the same beat that rewrites the health file): that it still runs, how many executions it has in
flight, and what a probe of the database found (reachable, and the schedule lag: how long the
oldest due execution has waited). The HTTP server runs on its own daemon thread and only reads
that report, so a stalled loop is *answered* (503), not left to time out, and a request never
touches the database or the loop.

The staleness rule is the health file's: a loop that has not reported for
``STALE_AFTER_BEATS`` beats (30 s with the 5 s beat) is stalled. Bodies hold counts, times and
the worker's id: never a secret or a row's data.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("dripdrop.worker")

#: Beats a loop may miss before it counts as stalled (the health file's ~30 s at 5 s a beat).
STALE_AFTER_BEATS = 6


class HealthState:
    """What the worker's loop last reported; read by the server's threads (under a lock)."""

    def __init__(self, rt: Any, interval: float) -> None:
        self.worker = rt.worker_id
        self.schema = rt.schema
        self.stale_after = STALE_AFTER_BEATS * interval
        self._lock = threading.Lock()
        self._beat_mono = time.monotonic()
        self._beat_at = datetime.now(UTC)
        self._in_flight = 0
        self._database = "unknown"  # until the first probe answers
        self._lag: float | None = None

    def beat(self, in_flight: int) -> None:
        """The loop is alive (called on the loop, so a stalled loop stops calling it)."""
        with self._lock:
            self._beat_mono, self._beat_at = time.monotonic(), datetime.now(UTC)
            self._in_flight = in_flight

    def probed(self, reachable: bool, lag: float | None = None) -> None:
        """What the last probe of the database found (``lag``: seconds the oldest due execution
        has waited, 0 when nothing waits)."""
        with self._lock:
            self._database = "ok" if reachable else "unreachable"
            self._lag = round(lag, 3) if reachable and lag is not None else None

    def report(self) -> tuple[int, int, dict[str, Any]]:
        """(status of /health, status of /ready, body). /health is 503 when the loop is stalled
        or the database unreachable; /ready is 200 only once a probe found the database and the
        loop is running."""
        with self._lock:
            ago = time.monotonic() - self._beat_mono
            body: dict[str, Any] = {
                "state": "ok",
                "last_loop": self._beat_at.isoformat(),
                "loop_seconds_ago": round(ago, 3),
                "stale_after_seconds": self.stale_after,
                "database": self._database,
                "lag_seconds": self._lag,
                "in_flight": self._in_flight,
                "pid": os.getpid(),
                "worker": self.worker,
                "schema": self.schema,
            }
        if ago > self.stale_after:
            body["state"] = "stalled"
        elif body["database"] == "unreachable":
            body["state"] = "degraded"
        elif body["database"] == "unknown":
            body["state"] = "starting"
        state = body["state"]
        health = 503 if state in ("stalled", "degraded") else 200
        ready = 200 if state == "ok" else 503
        return health, ready, body


def probe_database(rt: Any) -> float:
    """Seconds the oldest due execution has waited (0: none waits); raises when the database
    does not answer. Reads the head of the due index only (``ops/queue.py``)."""
    from dripdrop.ops.queue import due_summary

    with rt.engine.connect() as conn:
        _, oldest = due_summary(conn, rt.schema, rt.now(), cap=1000)
    return oldest or 0.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a client that sends nothing does not hold a thread for long

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in ("/health", "/ready"):
            self._send(404, {"error": "not found: GET /health or /ready"})
            return
        health, ready, body = self.server.state.report()
        self._send(health if path == "/health" else ready, body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # not stderr: the worker's log
        log.debug("health port: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: HealthState) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer's own looks the host's name up (getfqdn): a DNS query at start, for nothing.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]


class HealthServer:
    """``GET /health`` and ``GET /ready`` on ``host:port`` from a daemon thread."""

    def __init__(self, state: HealthState, host: str, port: int) -> None:
        self.server = _Server((host, port), state)  # binds now: OSError when it cannot
        self.port = int(self.server.server_address[1])
        self.host = host
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="dripdrop-health",
            daemon=True,
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


__all__ = ["STALE_AFTER_BEATS", "HealthServer", "HealthState", "probe_database"]
