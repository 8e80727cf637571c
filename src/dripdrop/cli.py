"""The ``dripdrop`` command line (Typer)."""

from __future__ import annotations

import csv
import json
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

app = typer.Typer(
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


def _dd(database_url: str | None, schema: str | None) -> Any:
    from dripdrop import DripDrop

    return DripDrop(database_url, schema=schema)


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
    Safe to interrupt and run again: it resumes where it stopped."""
    from dripdrop.definitions.rotation import rotate_all

    dd = _dd(database_url, schema)
    counts = rotate_all(dd.runtime, batch_size=batch_size)
    for table, n in counts.items():
        console.print(f"re-encrypted {n} row(s) of {table}")


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
) -> None:
    """Run a worker until SIGTERM/SIGINT (in-flight deliveries finish first)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    dd = _dd(database_url, schema)
    dd.setup()
    console.print(f"worker on schema [cyan]{dd.schema}[/cyan], concurrency {concurrency}")
    options: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
    if lease is not None:
        options["lease_seconds"] = lease
    if grace is not None:
        options["grace"] = grace
    summary = dd.run_worker(concurrency=concurrency, **options)
    console.print(f"stopped: {summary}")


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


@app.command()
def enroll(
    sequence_key: str,
    csv_file: Path,
    database_url: DatabaseOpt = None,
    schema: SchemaOpt = None,
    subscriber_type: str = "User",
    id_column: str = "id",
) -> None:
    """Enroll every row of a CSV (column ``id`` is the subscriber id, the rest is data)."""
    from rich.progress import Progress

    dd = _dd(database_url, schema)
    with csv_file.open(newline="") as fh:
        total_rows = sum(1 for _ in fh) - 1
    enrolled = 0
    with csv_file.open(newline="") as fh, Progress(console=console) as progress:
        task = progress.add_task("enrolling", total=max(total_rows, 0))
        reader = csv.DictReader(fh)
        batch: list[dict[str, Any]] = []
        for row in reader:
            sid = row.pop(id_column)
            batch.append({"subscriber": {"type": subscriber_type, "id": sid}, "data": row})
            if len(batch) == 5000:
                enrolled += dd.enroll_many(sequence_key, batch)
                progress.advance(task, len(batch))
                batch = []
        if batch:
            enrolled += dd.enroll_many(sequence_key, batch)
            progress.advance(task, len(batch))
    console.print(f"enrolled {enrolled} of {total_rows} (the rest were already enrolled)")


_DURATION = re.compile(r"^(\d+)\s*([mhdw])$")


def _duration(text: str) -> timedelta:
    m = _DURATION.match(text.strip())
    if not m:
        raise typer.BadParameter(f"{text!r}: use a number and m/h/d/w, e.g. 3d")
    unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
    return timedelta(**{unit: int(m.group(1))})


@app.command()
def simulate(
    sequence_key: str,
    data: Annotated[str, typer.Option(help="enrollment data as JSON")] = "{}",
    event: Annotated[
        list[str] | None,
        typer.Option(help='OFFSET:KEY[:JSON], e.g. 2d:paid or \'3h:order:{"plan":"pro"}\''),
    ] = None,
    until: str = "30d",
    database_url: DatabaseOpt = None,
    schema: SchemaOpt = None,
) -> None:
    """Show the timeline a subscriber with DATA would get (nothing is sent or stored)."""
    dd = _dd(database_url, schema)
    events = []
    for spec in event or []:
        offset, _, rest = spec.partition(":")
        key, _, payload = rest.partition(":")
        events.append((_duration(offset), key, json.loads(payload) if payload else {}))
    timeline = dd.simulate(
        sequence_key, data=json.loads(data), events=events, until=_duration(until)
    )
    for entry in timeline:
        console.print(str(entry))


@app.command()
def status(database_url: DatabaseOpt = None, schema: SchemaOpt = None) -> None:
    """Counts of executions by state, work due now and the next due time."""
    from dripdrop.worker.status import queue_status

    dd = _dd(database_url, schema)
    for key, value in queue_status(dd.runtime).items():
        console.print(f"{key:>18}: {value}")


def main() -> None:
    """Entry point of the ``dripdrop`` console script."""
    try:
        app()
    except Exception as exc:  # a clean message instead of a traceback for known errors
        from dripdrop.errors import DripDropError

        if isinstance(exc, DripDropError):
            console.print(f"[red]error:[/red] {exc}")
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
