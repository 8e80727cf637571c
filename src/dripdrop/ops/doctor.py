"""``dripdrop doctor``: is this deployment able to deliver, and if not, what to fix.

Each check answers ``ok``, ``warn`` (works, but look at it) or ``fail`` (something will not be
delivered), with what to do. Checks never print a secret, a recipient or a row's data: only
counts, ids, revision names and addresses from adapter configs.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text

#: Seconds the oldest due execution may wait before the lag check warns.
LAG_WARNING_SECONDS = 60.0
#: Seconds a reachability probe of an adapter's address may take.
CONNECT_TIMEOUT = 3.0


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "fail"


def run_checks(
    rt: Any, *, check_adapters: bool = False, lag_warning: float = LAG_WARNING_SECONDS
) -> list[Check]:
    """Every check, in order; later ones are left out when the database cannot be reached."""
    database = check_database(rt)
    checks = [database]
    if database.failed:
        return checks
    migrations = check_migrations(rt)
    checks.append(migrations)
    if migrations.failed and "not set up" in migrations.detail:
        return checks
    checks.append(check_keyring(rt))
    checks.append(check_schedule(rt, lag_warning))
    checks.append(check_workers(rt))
    if check_adapters:
        checks.extend(check_adapter_reachability(rt))
    return checks


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return (lines[0] if lines else type(orig).__name__)[:300]


def check_database(rt: Any) -> Check:
    try:
        with rt.engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar()
    except Exception as exc:
        return Check(
            "database",
            "fail",
            f"cannot connect: {_first_line(exc)}",
            "check DRIPDROP_DATABASE_URL (--database-url), that PostgreSQL is running and "
            "accepts connections from this host",
        )
    return Check("database", "ok", f"PostgreSQL {version}, schema {rt.schema!r}")


def check_migrations(rt: Any) -> Check:
    from alembic.script import ScriptDirectory

    from dripdrop.db.migrate import MIGRATIONS, alembic_config, current_revision

    with rt.engine.connect() as conn:
        scripts = ScriptDirectory.from_config(alembic_config(conn, rt.schema))
    head = scripts.get_current_head()
    current = current_revision(rt.engine, rt.schema)
    if current is None:
        return Check(
            "migrations", "fail", f"schema {rt.schema!r} is not set up", "run `dripdrop setup`"
        )
    if current == head:
        return Check("migrations", "ok", f"at {current} (latest)")
    known = {s.revision for s in scripts.walk_revisions()}
    if current not in known:
        return Check(
            "migrations",
            "warn",
            f"the database is at {current}, which this DripDrop does not know ({MIGRATIONS.name} "
            f"ends at {head})",
            "upgrade dripdrop-engine on this host to the version the database was migrated by",
        )
    return Check("migrations", "fail", f"at {current}, latest is {head}", "run `dripdrop migrate`")


def check_keyring(rt: Any) -> Check:
    """Every stored secret decrypts with the configured key ring."""
    from sqlalchemy import select

    from dripdrop.definitions.rotation import SECRET_COLUMNS
    from dripdrop.definitions.secrets import aad
    from dripdrop.errors import ConfigurationError, CryptoError

    rows: list[tuple[str, str, Any, bytes]] = []
    with rt.engine.connect() as conn:
        for table, column in SECRET_COLUMNS:
            col = table.c[column]
            found = conn.execute(
                select(table.c.id, col)
                .where(col.is_not(None))
                .execution_options(schema_translate_map={None: rt.schema})
            )
            rows += [(table.name, column, r[0], bytes(r[1])) for r in found]
    if not rows:
        return Check("key ring", "ok", "no stored secrets")
    try:
        ring = rt.keyring
    except ConfigurationError:
        return Check(
            "key ring",
            "fail",
            f"{len(rows)} stored secret(s) but no encryption key",
            "set DRIPDROP_ENCRYPTION_KEY to the key they were stored with",
        )
    bad: list[str] = []
    old = 0
    for table_name, column, row_id, blob in rows:
        try:
            ring.decrypt(blob, aad=aad(table_name, column, row_id))
            old += bool(ring.needs_rotation(blob))
        except CryptoError:
            bad.append(f"{table_name} {row_id}")
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        return Check(
            "key ring",
            "fail",
            f"{len(bad)} of {len(rows)} stored secret(s) do not decrypt: {shown}",
            'put the key they were stored with back in DRIPDROP_ENCRYPTION_KEY ("new,old"), '
            "or set those credentials again",
        )
    if old:
        return Check(
            "key ring",
            "warn",
            f"all {len(rows)} secret(s) decrypt; {old} under an older key",
            "run `dripdrop rotate-key`, then drop the old key from DRIPDROP_ENCRYPTION_KEY",
        )
    return Check("key ring", "ok", f"all {len(rows)} stored secret(s) decrypt")


def check_schedule(rt: Any, lag_warning: float = LAG_WARNING_SECONDS) -> Check:
    from dripdrop.ops.queue import due_summary

    with rt.engine.connect() as conn:
        due, oldest = due_summary(conn, rt.schema, rt.now())
    if oldest is None or oldest <= lag_warning:
        lag = f"{oldest:.1f} s" if oldest is not None else "nothing due"
        return Check("schedule lag", "ok", f"{due} due now; oldest waiting: {lag}")
    return Check(
        "schedule lag",
        "warn",
        f"{due} due now; the oldest has waited {oldest:.0f} s past its time",
        "start a worker (`dripdrop worker`), or more of them, or raise --concurrency; "
        "`dripdrop status` shows the queue",
    )


def check_workers(rt: Any) -> Check:
    """Workers connected to this schema (their connections name themselves)."""
    with rt.engine.connect() as conn:
        n = conn.execute(
            text(
                "SELECT count(DISTINCT client_addr::text || ':' || pid::text) "
                "FROM pg_stat_activity WHERE application_name = :name"
            ),
            {"name": f"dripdrop worker {rt.schema}"[:63]},
        ).scalar()
    if n:
        return Check("workers", "ok", f"{n} worker connection(s) to this schema")
    return Check(
        "workers",
        "warn",
        "no worker is connected to this schema",
        "start `dripdrop worker` (nothing is delivered without one)",
    )


def _address(config: dict[str, Any]) -> tuple[str, int] | None:
    """Host and port an adapter's config points at (base_url, url, or host + port)."""
    for key in ("base_url", "url", "endpoint_url", "server_url"):
        value = config.get(key)
        if isinstance(value, str) and "://" in value:
            parts = urlsplit(value)
            if parts.hostname:
                port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
                return parts.hostname, port
    host = config.get("host")
    if isinstance(host, str) and host:
        port = config.get("port")
        return host, int(port) if isinstance(port, int) else 587
    return None


def check_adapter_reachability(rt: Any) -> list[Check]:
    """A TCP connection to each active adapter's configured address (those without one in
    their config use the provider's public API and are listed as not checked)."""
    from sqlalchemy import select

    from dripdrop.db import models as m

    table = m.ChannelAdapter.__table__
    with rt.engine.connect() as conn:
        adapters = conn.execute(
            select(table.c.id, table.c.name, table.c.provider, table.c.config)
            .where(table.c.active)
            .order_by(table.c.name)
            .execution_options(schema_translate_map={None: rt.schema})
        ).all()
    checks = []
    for a in adapters:
        label = f"adapter {a.name!r} ({a.provider})"
        address = _address(a.config or {})
        if address is None:
            checks.append(Check(label, "ok", "not checked: no address in its config"))
            continue
        host, port = address
        try:
            asyncio.run(_probe(host, port))
        except (OSError, TimeoutError) as exc:
            checks.append(
                Check(
                    label,
                    "fail",
                    f"cannot connect to {host}:{port}: {type(exc).__name__}",
                    "check the adapter's address and this host's network/firewall",
                )
            )
            continue
        checks.append(Check(label, "ok", f"{host}:{port} accepts connections"))
    return checks


async def _probe(host: str, port: int) -> None:
    async with asyncio.timeout(CONNECT_TIMEOUT):
        _, writer = await asyncio.open_connection(host, port, family=socket.AF_UNSPEC)
    writer.close()
    await writer.wait_closed()
