"""The ``dripdrop`` command line (Typer)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

if TYPE_CHECKING:
    from dripdrop import DripDrop


def _fail(message: str, code: int = 2) -> NoReturn:
    """End the command with ``error: message`` on one line of stderr (2: bad usage or input)."""
    typer.echo(f"{typer.style('error:', fg='red')} {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


#: The DripDrop instances the running command made (see _dd).
_opened: ContextVar[list[DripDrop] | None] = ContextVar("dripdrop_cli_opened", default=None)


class _Commands(TyperGroup):
    """Runs a command, then closes the DripDrop instances it made, however it ended (which stops
    an embedded PostgreSQL it started). Errors DripDrop reports (bad input, unknown keys, missing
    configuration) and database errors end it with one line on stderr and status 1."""

    def invoke(self, ctx: Any) -> Any:
        from sqlalchemy.exc import DBAPIError

        from dripdrop.errors import DripDropError

        token = _opened.set([])
        try:
            return super().invoke(ctx)
        except DripDropError as exc:
            _fail(str(exc), 1)
        except DBAPIError as exc:
            message = (str(exc.orig or exc).strip().splitlines() or ["failed"])[0]
            if getattr(exc.orig, "sqlstate", None) == "42P01":  # undefined_table
                message += " (is the schema set up? run `dripdrop setup`)"
            _fail(f"database: {message}", 1)
        finally:
            for dd in reversed(_opened.get() or []):
                dd.close()
            _opened.reset(token)


app = typer.Typer(
    cls=_Commands,
    help="DripDrop: multi-channel messaging sequences on PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url", envvar="DRIPDROP_DATABASE_URL", help="PostgreSQL URL (default: embedded)"
    ),
]
SchemaOpt = Annotated[
    str | None,
    typer.Option("--schema", envvar="DRIPDROP_SCHEMA_NAME", help="schema (default: dripdrop)"),
]


def _dd(
    database_url: str | None, schema: str | None, engine_options: dict[str, Any] | None = None
) -> DripDrop:
    """The command's DripDrop, closed when the command ends, however it ends (which stops an
    embedded PostgreSQL it started, unless something else still uses it: see DripDrop.close)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from dripdrop import DripDrop

    if database_url:
        try:
            make_url(database_url)
        except (ArgumentError, ValueError):  # not echoed: it may hold a password
            _fail("--database-url: not a database URL (postgresql://user:password@host:port/db)")
    dd = DripDrop(database_url, schema=schema, engine_options=engine_options)
    opened = _opened.get()
    if opened is not None:
        opened.append(dd)
    return dd


@app.command()
def setup(database_url: DatabaseOpt = None, schema: SchemaOpt = None) -> None:
    """Create the schema and apply migrations (idempotent)."""
    dd = _dd(database_url, schema)
    dd.setup()
    console.print(f"[green]✓[/green] schema [cyan]{dd.schema}[/cyan] is up to date")


@app.command()
def migrate(database_url: DatabaseOpt = None, schema: SchemaOpt = None) -> None:
    """Apply pending migrations (same as setup)."""
    setup(database_url, schema)


@app.command("gen-key")
def gen_key() -> None:
    """Print a new encryption key for DRIPDROP_ENCRYPTION_KEY."""
    from dripdrop.crypto import generate_key

    print(generate_key())


@app.command("rotate-key")
def rotate_key(
    database_url: DatabaseOpt = None, schema: SchemaOpt = None, batch_size: int = 500
) -> None:
    """Re-encrypt every secret with the newest key of DRIPDROP_ENCRYPTION_KEY ("new,old").
    Safe to interrupt and run again: it resumes where it stopped. Rows that cannot be decrypted
    are skipped and listed, and the command then exits with status 1."""
    from dripdrop.definitions.rotation import rotate_all

    dd = _dd(database_url, schema)
    result = rotate_all(dd.runtime, batch_size=batch_size)
    for table, n in result.counts.items():
        console.print(f"re-encrypted {n} row(s) of {table}")
    if result.failed:
        console.print(f"[red]could not re-encrypt {len(result.failed)} row(s):[/red]")
        for bad in result.failed:
            console.print(f"  {bad.table} {bad.id}: {bad.reason}", markup=False, highlight=False)
        raise typer.Exit(1)


@app.command()
def worker(
    database_url: DatabaseOpt = None,
    schema: SchemaOpt = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c")] = 10,
    batch_size: Annotated[
        int | None, typer.Option(help="rows per claim (default 500, at most concurrency / 2)")
    ] = None,
    lease: Annotated[
        float | None,
        typer.Option(
            "--lease",
            help="seconds a claim is held without a heartbeat: a killed worker's work is "
            "picked up by another this long after (default 30)",
        ),
    ] = None,
    grace: Annotated[
        float | None,
        typer.Option(help="seconds in-flight deliveries get to finish on SIGTERM (default 30)"),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="serve Prometheus /metrics on this port (extra `metrics`)")
    ] = None,
    metrics_addr: Annotated[
        str, typer.Option(help="address of the metrics port (0.0.0.0: every interface)")
    ] = "127.0.0.1",
    log_format: Annotated[str, typer.Option(help="text, or json (one object per line)")] = "text",
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "INFO",
    retention: Annotated[
        str | None,
        typer.Option(
            envvar="DRIPDROP_RETENTION",
            help="remove finished history older than this (e.g. 90d), hourly; "
            "default: keep everything",
        ),
    ] = None,
    archive: Annotated[
        bool, typer.Option(help="with --retention: copy removed rows to archived_rows first")
    ] = False,
    health_file: Annotated[
        Path | None,
        typer.Option(help="rewrite this JSON file every 5 s while the worker is alive"),
    ] = None,
    health_port: Annotated[
        int | None,
        typer.Option(
            help="serve GET /health and /ready on this port: 200, or 503 when the worker's loop "
            "has stalled for 30 s or the database is unreachable"
        ),
    ] = None,
    health_host: Annotated[
        str, typer.Option(help="address of the health port (0.0.0.0: every interface)")
    ] = "127.0.0.1",
) -> None:
    """Run a worker until SIGTERM/SIGINT (in-flight deliveries finish first)."""
    import logging

    from dripdrop.observability import logs, metrics

    for option, value, least in (
        ("--concurrency", concurrency, 1),
        ("--batch-size", batch_size, 1),
        ("--lease", lease, 0.001),
        ("--grace", grace, 0),
    ):
        if value is not None and not value >= least:  # also NaN
            _fail(f"{option}: must be at least {least}, not {value}")
    if log_format not in ("text", "json"):
        _fail(f"--log-format: must be text or json, not {log_format!r}")
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        _fail(f"--log-level: must be DEBUG, INFO, WARNING or ERROR, not {log_level!r}")
    if metrics_port is not None and not 0 <= metrics_port <= 65535:
        _fail(f"--metrics-port: must be from 0 to 65535, not {metrics_port}")
    if health_port is not None and not 0 <= health_port <= 65535:
        _fail(f"--health-port: must be from 0 to 65535, not {health_port}")
    logs.configure(log_format, logging.getLevelName(log_level.upper()))
    dd = _dd(database_url, schema)
    dd.setup()
    console.print(f"worker on schema [cyan]{dd.schema}[/cyan], concurrency {concurrency}")
    if metrics_port is not None:
        try:
            metrics.serve(metrics_port, metrics_addr)
        except OSError as exc:
            _fail(f"--metrics-port: cannot listen on {metrics_addr}:{metrics_port}: {exc}", 1)
        console.print(f"metrics on http://{metrics_addr}:{metrics_port}/metrics", highlight=False)
    options: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
    if lease is not None:
        options["lease_seconds"] = lease
    if grace is not None:
        options["grace"] = grace
    if retention is not None:
        options["retention"] = _duration(retention, "--retention")
        options["archive"] = archive
    if health_file is not None:
        options["health_file"] = str(health_file)
    if health_port is not None:
        options["health_port"] = health_port
        options["health_host"] = health_host  # the worker logs where once it listens
    summary = dd.run_worker(concurrency=concurrency, **options)
    console.print(f"stopped: {summary}")


@app.command()
def dispatch(
    database_url: DatabaseOpt = None,
    schema: SchemaOpt = None,
    scheduler: Annotated[
        str, typer.Option(help="the scheduler due executions are handed to: celery")
    ] = "celery",
    redispatch_after: Annotated[
        float,
        typer.Option(
            help="seconds before a job that has not claimed its execution (a lost "
            "message) is handed out again"
        ),
    ] = 60.0,
    batch_size: Annotated[int, typer.Option(help="executions reserved per round")] = 500,
) -> None:
    """Hand due executions to a scheduler other than PostgreSQL until SIGTERM/SIGINT (for
    Celery: DRIPDROP_CELERY_BROKER_URL; run `celery -A dripdrop.scheduling.celery worker`)."""
    import logging

    if scheduler == "postgres":
        _fail("--scheduler: postgres needs no dispatcher: run `dripdrop worker`")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    dd = _dd(database_url, schema)
    dd._use_scheduler(scheduler)
    dd.setup()
    console.print(f"dispatching to {scheduler} on schema [cyan]{dd.schema}[/cyan]")
    handed = dd.run_dispatcher(batch_size=batch_size, redispatch_after=redispatch_after)
    console.print(f"stopped: {handed} execution(s) handed out")


@app.command()
def demo(
    database_url: DatabaseOpt = None,
    schema: Annotated[str, typer.Option("--schema")] = "dripdrop_demo",
    days: int = 10,
) -> None:
    """Deliver the SaaS onboarding sequence to three users on a virtual clock (console
    providers, embedded PostgreSQL unless DRIPDROP_DATABASE_URL is set)."""
    from dripdrop.demo.onboarding import run

    counts = run(database_url, schema=schema, days=days, console=console)
    console.print(f"\n[bold green]done[/bold green]: {counts}")


#: Rows sent to the database at once by ``enroll``.
ENROLL_BATCH = 5000


def _csv_rows(path: Path, id_column: str) -> Iterator[tuple[str, dict[str, str]]]:
    """(subscriber id, data) per row of a CSV; blank cells are left out of data. A file that is
    not a CSV with that column ends the command with a one-line error."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: Excel's byte order mark
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            if id_column not in columns:
                _fail(
                    f"{path}: no {id_column!r} column (columns: {', '.join(columns) or 'none'}); "
                    "--id-column names the column of subscriber ids"
                )
            for row in reader:
                if None in row:
                    _fail(f"{path}, line {reader.line_num}: more cells than columns")
                sid = (row.pop(id_column) or "").strip()
                if not sid:
                    _fail(f"{path}, line {reader.line_num}: blank {id_column!r}")
                yield sid, {k: v for k, v in row.items() if v is not None and v.strip()}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        _fail(f"{path}: {exc}")


def _enrolled_report(rows: int, repeated: int, enrolled: int) -> str:
    """What ``enroll`` did: ``enrolled 3``, or how many were new and already enrolled."""
    already = rows - repeated - enrolled
    parts = [f"enrolled {enrolled} new", f"{already} already enrolled"] if already else []
    parts = parts or [f"enrolled {enrolled}"]
    if repeated:
        parts.append(f"{repeated} repeated id(s) in the file enrolled once")
    return "; ".join(parts)


@app.command()
def enroll(
    sequence_key: str,
    csv_file: Path,
    database_url: DatabaseOpt = None,
    schema: SchemaOpt = None,
    subscriber_type: str = "User",
    id_column: str = "id",
) -> None:
    """Enroll every row of a CSV: column ``id`` is the subscriber id, the other columns are the
    enrollment data (blank cells are left out). Subscribers already enrolled are left as they
    are."""
    from rich.progress import Progress

    # A first pass checks the whole file before anything is enrolled.
    seen: set[str] = set()
    rows = 0
    for sid, _ in _csv_rows(csv_file, id_column):
        rows += 1
        seen.add(sid)
    dd = _dd(database_url, schema)
    dd.get_sequence(sequence_key)  # NotFound before the progress bar
    enrolled = 0
    with Progress(console=console) as progress:
        task = progress.add_task("enrolling", total=rows)
        batch: list[dict[str, Any]] = []
        for sid, data in _csv_rows(csv_file, id_column):
            batch.append({"subscriber": {"type": subscriber_type, "id": sid}, "data": data})
            if len(batch) == ENROLL_BATCH:
                enrolled += dd.enroll_many(sequence_key, batch)
                progress.advance(task, len(batch))
                batch = []
        if batch:
            enrolled += dd.enroll_many(sequence_key, batch)
            progress.advance(task, len(batch))
    console.print(_enrolled_report(rows, rows - len(seen), enrolled))


_DURATION = re.compile(r"^(\d+)\s*([mhdw])$")


def _duration(text: str, option: str) -> timedelta:
    m = _DURATION.match(text.strip())
    if not m:
        _fail(f"{option}: {text!r} is not a duration: use a number and m/h/d/w, e.g. 3d")
    unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
    try:
        return timedelta(**{unit: int(m.group(1))})
    except OverflowError:
        _fail(f"{option}: {text!r} is too long")


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        _fail(f"{option}: not valid JSON ({exc}): {text}")
    if not isinstance(value, dict):
        _fail(f'{option}: must be a JSON object like {{"plan": "pro"}}, not {text}')
    return value


@app.command()
def simulate(
    sequence_key: str,
    data: Annotated[str, typer.Option(help="enrollment data as a JSON object")] = "{}",
    event: Annotated[
        list[str] | None,
        typer.Option(help='OFFSET:KEY[:JSON], e.g. 2d:paid or \'3h:order:{"plan":"pro"}\''),
    ] = None,
    until: str = "30d",
    database_url: DatabaseOpt = None,
    schema: SchemaOpt = None,
) -> None:
    """Show the timeline a subscriber with DATA would get (nothing is sent or stored)."""
    events = []
    for spec in event or []:
        offset, _, rest = spec.partition(":")
        key, _, payload = rest.partition(":")
        if not key:
            _fail(f"--event: {spec!r} has no event key: use OFFSET:KEY[:JSON], e.g. 2d:paid")
        payload_data = _json_object(payload, "--event") if payload else {}
        events.append((_duration(offset, "--event"), key, payload_data))
    enrollment_data = _json_object(data, "--data")
    span = _duration(until, "--until")
    dd = _dd(database_url, schema)
    timeline = dd.simulate(sequence_key, data=enrollment_data, events=events, until=span)
    for entry in timeline:
        console.print(str(entry))


@app.command("check-version")
def check_version(
    target: Annotated[
        str | None,
        typer.Argument(help="a version id, or a sequence key (its active version); all if none"),
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="tenant of the sequence key")] = None,
    database_url: DatabaseOpt = None,
    schema: SchemaOpt = None,
) -> None:
    """List what would make a version's sends fail (exit 1 when anything does)."""
    import uuid

    from dripdrop.definitions.readiness import active_versions

    dd = _dd(database_url, schema)
    if target is None:
        versions = active_versions(dd.runtime)
    else:
        try:
            versions = [(uuid.UUID(target), target)]
        except ValueError:
            seq = dd.get_sequence(target, tenant_key=tenant)
            active = dd.get_active_version(seq.id)
            if active is None:
                _fail(f"sequence {target!r} has no active version")
            versions = [(active.id, f"{target} v{active.version}")]
    found = 0
    for version_id, label in versions:
        problems = dd.check_version(version_id)
        found += len(problems)
        mark = "[red]✗[/red]" if problems else "[green]✓[/green]"
        console.print(f"{mark} {label}", highlight=False)
        for problem in problems:
            console.print(f"    {problem}", highlight=False, markup=False)
    if not versions:
        console.print("no active versions")
    if found:
        raise typer.Exit(1)


@app.command()
def status(database_url: DatabaseOpt = None, schema: SchemaOpt = None) -> None:
    """Counts of executions by state, work due now and the next due time."""
    from dripdrop.worker.status import queue_status

    dd = _dd(database_url, schema)
    for key, value in queue_status(dd.runtime).items():
        console.print(f"{key:>18}: {value}")


@app.command()
def prune(
    older_than: Annotated[
        str, typer.Option("--older-than", help="remove history older than this: 90d, 12w, 36h")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="only count what would be removed")
    ] = False,
    archive: Annotated[
        bool, typer.Option(help="copy removed rows (as JSON) to the archived_rows table first")
    ] = False,
    # The workers' own batch (ops/retention.py: BATCH_SIZE).
    batch_size: Annotated[int, typer.Option(help="rows per statement")] = 250,
    database_url: DatabaseOpt = None,
    schema: SchemaOpt = None,
) -> None:
    """Remove finished executions, ended enrollments' events, read notifications and expired
    API idempotency keys older than --older-than, in small batches (workers keep running).
    Unfinished work is never touched."""
    from rich.live import Live

    from dripdrop.ops.retention import Busy
    from dripdrop.ops.retention import prune as run_prune

    age = _duration(older_than, "--older-than")
    if not 1 <= batch_size <= 100_000:
        _fail(f"--batch-size: must be from 1 to 100000, not {batch_size}")
    dd = _dd(database_url, schema)
    verb = "would remove" if dry_run else "removed"
    seen: dict[str, int] = {}

    def render() -> str:
        return "\n".join(f"{table}: {verb} {n:,}" for table, n in seen.items()) or "starting"

    with Live(render(), console=console, refresh_per_second=4, transient=True) as live:

        def progress(table: str, n: int) -> None:
            seen[table] = n
            live.update(render())

        try:
            result = run_prune(
                dd.runtime,
                age,
                dry_run=dry_run,
                archive=archive,
                batch_size=batch_size,
                progress=progress,
            )
        except Busy as exc:
            _fail(f"{exc}; try again later", 1)
    for table, n in result.removed.items():
        console.print(f"{table}: {verb} {n:,}", highlight=False)
    console.print(f"{verb} {result.total:,} row(s) in {result.seconds:.1f} s", highlight=False)


@app.command()
def doctor(
    check_adapters: Annotated[
        bool, typer.Option(help="also try a TCP connection to each adapter's address")
    ] = False,
    database_url: DatabaseOpt = None,
    schema: SchemaOpt = None,
) -> None:
    """Check the database, migrations, key ring, schedule lag and workers (and adapters with
    --check-adapters); print what to fix. Exit status 1 when a check fails."""
    from dripdrop.ops.doctor import run_checks

    dd = _dd(database_url, schema)
    checks = run_checks(dd.runtime, check_adapters=check_adapters)
    marks = {"ok": "[green]✓[/green]", "warn": "[yellow]![/yellow]", "fail": "[red]✗[/red]"}
    for check in checks:
        console.print(f"{marks[check.status]} {check.name}: ", end="", highlight=False)
        console.print(check.detail, markup=False, highlight=False, soft_wrap=True)
        if check.fix:
            console.print(f"    fix: {check.fix}", markup=False, highlight=False, soft_wrap=True)
    if any(check.failed for check in checks):
        raise typer.Exit(1)


#: The web server's connection pool: its synchronous endpoints run on up to 40 threads (the
#: default of the server's thread pool), each holding a connection for its request. A smaller
#: pool queues requests behind it and opens and closes overflow connections under load.
WEB_POOL = {"pool_size": 20, "max_overflow": 20}


@app.command()
def web(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    database_url: DatabaseOpt = None,
    schema: SchemaOpt = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    metrics_token: Annotated[
        str | None,
        typer.Option(
            envvar="DRIPDROP_METRICS_TOKEN",
            help="a Bearer token that may read /metrics (besides API keys with read)",
        ),
    ] = None,
) -> None:
    """Serve the REST API (and /health) with uvicorn until SIGTERM/SIGINT. Requests need an
    API key: create one with `dripdrop api-key create NAME --scope admin`."""
    try:
        import uvicorn

        from dripdrop.web import create_app
    except ImportError as exc:
        _fail(
            f"the web app needs the `web` extra ({exc.name or exc} is missing): "
            "pip install 'dripdrop-engine[web]'",
            1,
        )
    if not 0 <= port <= 65535:
        _fail(f"--port: must be from 0 to 65535, not {port}")
    dd = _dd(database_url, schema, engine_options=WEB_POOL)
    dd.setup()
    console.print(
        f"DripDrop web on http://{host}:{port} (schema [cyan]{dd.schema}[/cyan]); "
        "API under /api/v1, health at /health",
        highlight=False,
    )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again under the
    # handlers it found: these absorb it, so the command ends normally (status 0) and closes its
    # DripDrop (which stops an embedded PostgreSQL it started), as `dripdrop worker` does.
    import signal

    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.run(
            create_app(dd, metrics_token=metrics_token),
            host=host,
            port=port,
            log_level=log_level.lower(),
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print("stopped")


api_key_app = typer.Typer(
    cls=_Commands,
    help="REST API keys: create (the token is shown once), list, revoke.",
    no_args_is_help=True,
)
app.add_typer(api_key_app, name="api-key")


@api_key_app.command("create")
def api_key_create(
    name: str,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="read, write or admin (repeatable; default read)"),
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="bind the key to this tenant")] = None,
    database_url: DatabaseOpt = None,
    schema: SchemaOpt = None,
) -> None:
    """Create an API key and print its token, once: it is stored hashed and cannot be shown
    again."""
    dd = _dd(database_url, schema)
    key = dd.create_api_key(name, scopes=list(scope or ["read"]), tenant_key=tenant)
    bound = f", tenant {key.tenant_key}" if key.tenant_key else ""
    typer.echo(f"created API key {key.name!r} ({key.id}), scopes {', '.join(key.scopes)}{bound}")
    typer.echo(key.secret)
    typer.echo(
        f"{typer.style('warning:', fg='yellow')} copy the token above now: it will not be shown "
        "again (send it as Authorization: Bearer <token>)",
        err=True,
    )


@api_key_app.command("list")
def api_key_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="also list revoked keys")] = False,
    database_url: DatabaseOpt = None,
    schema: SchemaOpt = None,
) -> None:
    """List API keys (never their tokens), newest first."""
    dd = _dd(database_url, schema)
    keys = dd.list_api_keys(include_revoked=include_revoked)
    if not keys:
        typer.echo("no API keys")
    for key in keys:
        fields = [
            str(key.id),
            key.name,
            f"dd_{key.prefix}_…",
            ",".join(key.scopes),
            f"tenant={key.tenant_key or '-'}",
            f"last_used={key.last_used_at.isoformat() if key.last_used_at else 'never'}",
        ]
        if key.revoked_at:
            fields.append(f"revoked={key.revoked_at.isoformat()}")
        typer.echo("  ".join(fields))


@api_key_app.command("revoke")
def api_key_revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="the key's id (`api-key list`)")],
    database_url: DatabaseOpt = None,
    schema: SchemaOpt = None,
) -> None:
    """Revoke an API key at once (its requests get 401 from now on)."""
    dd = _dd(database_url, schema)
    key = dd.revoke_api_key(key_id)
    typer.echo(f"revoked API key {key.name!r} ({key.id})")


# ``dripdrop templates generate | check`` (their own module; it uses the helpers above).
from dripdrop.cli_templates import make_templates_app  # noqa: E402

app.add_typer(make_templates_app(_dd, _fail, console, DatabaseOpt, SchemaOpt), name="templates")

# ``dripdrop suppressions import | export | list`` (CSV; dripdrop/cli_suppressions.py).
from dripdrop.cli_suppressions import make_suppressions_app  # noqa: E402

app.add_typer(
    make_suppressions_app(_dd, _fail, console, DatabaseOpt, SchemaOpt), name="suppressions"
)


def main() -> None:
    """Entry point of the ``dripdrop`` console script (errors: see ``_Commands``)."""
    app()


if __name__ == "__main__":
    main()
