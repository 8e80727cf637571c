"""A worker's background duties beside its lanes: the due-now gauges, retention on a schedule,
and the health file and health port orchestrators watch (``ops/health.py``).

Each duty is one asyncio task; blocking database work runs in a thread, so a slow prune never
holds the event loop (and with it the lanes). Any number of workers may run them: the prune
lock lets one worker at a time prune a schema, the others skip their turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dripdrop.observability import metrics

log = logging.getLogger("dripdrop.worker")

#: Default seconds between two prunes by a worker (the first comes within a minute of start).
PRUNE_INTERVAL = 3600.0
#: Seconds between two beats of the health file and port (read when a worker starts).
HEALTH_INTERVAL = 5.0


def write_health_file(path: str | os.PathLike[str], status: dict[str, Any]) -> None:
    """Replace ``path`` with ``status`` as JSON, atomically (a reader never sees half a file);
    its modification time is the worker's last sign of life."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, default=str))
    os.replace(tmp, target)


class Duties:
    """Started by the worker loop (``runner.work``) and stopped when it ends."""

    def __init__(
        self,
        rt: Any,
        *,
        in_flight: Callable[[], int],
        retention: timedelta | None = None,
        archive: bool = False,
        prune_interval: float = PRUNE_INTERVAL,
        health_file: str | os.PathLike[str] | None = None,
        health_interval: float | None = None,
        health_port: int | None = None,
        health_host: str = "127.0.0.1",
    ) -> None:
        self.rt = rt
        self.in_flight = in_flight
        self.retention = retention
        self.archive = archive
        self.prune_interval = prune_interval
        self.health_file = health_file
        self.health_interval = HEALTH_INTERVAL if health_interval is None else health_interval
        self.health_port = health_port
        self.health_host = health_host
        self.health: Any = None  # the health port's HealthState, while it is served
        self._health_server: Any = None
        self._probe: asyncio.Future[float] | None = None
        self.stopping = threading.Event()  # read by a prune between its batches
        self.tasks: list[asyncio.Task[None]] = []
        self.last_prune: Any = None  # the last PruneResult, for the health file and tests

    def start(self) -> None:
        """Start the duties; the health port is bound first (a ValidationError naming
        ``health_port`` when it cannot be), so nothing is left running when it fails."""
        if self.health_port is not None:
            self._serve_health()
        metrics.track_in_flight(self.rt.schema, self.in_flight)
        if metrics.ENABLED:
            self.tasks.append(asyncio.create_task(self._gauges()))
        if self.retention is not None:
            self.tasks.append(asyncio.create_task(self._prune_on_schedule()))
        if self.health_file is not None or self.health is not None:
            self.tasks.append(asyncio.create_task(self._health()))

    def _serve_health(self) -> None:
        from dripdrop.errors import ValidationError
        from dripdrop.ops.health import HealthServer, HealthState

        self.health = HealthState(self.rt, self.health_interval)
        assert self.health_port is not None
        try:
            self._health_server = HealthServer(self.health, self.health_host, self.health_port)
        except (OSError, OverflowError, ValueError) as exc:  # ValueError: unencodable host
            self.health = None
            where = f"{self.health_host}:{self.health_port}"
            raise ValidationError.single(
                "health_port", f"cannot listen on {where} ({exc}): choose a free port"
            ) from exc
        log.info(
            "health on http://%s:%d/health and /ready",
            self.health_host,
            self._health_server.port,
        )

    async def stop(self) -> None:
        self.stopping.set()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks = []
        if self._health_server is not None:
            server, self._health_server = self._health_server, None
            await asyncio.to_thread(server.stop)

    async def _gauges(self) -> None:
        while True:
            try:
                await asyncio.to_thread(metrics.refresh_due, self.rt, force=True)
            except Exception as exc:  # the database is away: the gauges keep their last value
                log.debug("could not refresh the queue gauges: %s", type(exc).__name__)
            await asyncio.sleep(metrics.DUE_REFRESH_SECONDS)

    async def _prune_on_schedule(self) -> None:
        from dripdrop.ops.retention import Busy, prune

        # Workers started together do not all try at once.
        await asyncio.sleep(random.uniform(0, min(60.0, self.prune_interval)))
        while True:
            try:
                self.last_prune = await asyncio.to_thread(
                    prune, self.rt, self.retention, archive=self.archive, stop=self.stopping
                )
            except Busy:
                log.debug("another worker is pruning; skipping this turn")
            except Exception as exc:  # never stops the worker; tried again next interval
                log.warning("pruning failed: %s", type(exc).__name__)
            await asyncio.sleep(self.prune_interval)

    async def _health(self) -> None:
        """Every ``health_interval``: the loop's beat (it runs here, on the loop: a stalled
        loop stops beating), a probe of the database for the health port, the health file."""
        while True:
            if self.health is not None:
                self.health.beat(self.in_flight())
                await self._probe_database()
            if self.health_file is not None:
                await self._write_health_file()
            await asyncio.sleep(self.health_interval)

    async def _probe_database(self) -> None:
        """One probe at a time: a probe that hangs (an unreachable host) is waited for at most
        one interval, then the database counts as unreachable until it answers."""
        from dripdrop.ops.health import probe_database

        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(asyncio.to_thread(probe_database, self.rt))
        try:
            lag = await asyncio.wait_for(asyncio.shield(self._probe), self.health_interval)
        except Exception as exc:  # TimeoutError too: not answering is unreachable
            log.debug("health probe: the database did not answer (%s)", type(exc).__name__)
            self.health.probed(False)
        else:
            self.health.probed(True, lag)

    async def _write_health_file(self) -> None:
        assert self.health_file is not None
        status = {
            "status": "ok",
            "pid": os.getpid(),
            "worker": self.rt.worker_id,
            "schema": self.rt.schema,
            "time": datetime.now(UTC).isoformat(),
            "in_flight": self.in_flight(),
        }
        try:
            await asyncio.to_thread(write_health_file, self.health_file, status)
        except OSError as exc:
            log.warning("could not write the health file: %s", exc)


#: run_worker's options for the duties (see Duties).
DUTY_OPTIONS = (
    "retention",
    "archive",
    "prune_interval",
    "health_file",
    "health_port",
    "health_host",
)


def check_duty_options(options: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """Add what is wrong with the duties' options of ``run_worker`` to ``errors``."""
    retention = options.get("retention")
    if retention is not None and not (
        isinstance(retention, timedelta) and retention >= timedelta(minutes=1)
    ):
        errors["retention"] = ["must be a timedelta of at least one minute, or None (keep all)"]
    if "archive" in options and not isinstance(options["archive"], bool):
        errors["archive"] = ["must be true or false"]
    interval = options.get("prune_interval")
    number = isinstance(interval, int | float) and not isinstance(interval, bool)
    if interval is not None and not (number and 1 <= interval <= 7 * 86_400):
        errors["prune_interval"] = ["must be a number of seconds from 1 to 604800"]
    path = options.get("health_file")
    if path is not None and not (isinstance(path, str | os.PathLike) and str(path).strip()):
        errors["health_file"] = ["must be a file path"]
    port = options.get("health_port")
    if port is not None and not (
        isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535
    ):
        errors["health_port"] = ["must be a port number from 0 to 65535, or None (no port)"]
    host = options.get("health_host")
    if "health_host" in options and not (
        isinstance(host, str) and host.strip() == host and 0 < len(host) <= 255 and "\0" not in host
    ):
        errors["health_host"] = ["must be an address to listen on, like 127.0.0.1 or 0.0.0.0"]
