"""``dripdrop suppressions import | export | list``: suppressions as CSV.

The CSV columns are ``channel,recipient,reason,category,tenant_key`` (``export`` writes them;
``import`` needs ``channel`` and ``recipient``, blank cells are absent, ``reason`` defaults to
``manual``). An import checks and normalises every row like ``dd.suppress``: rows that fail are
reported with their line number and the rest are imported, in batches of one statement each.

dripdrop.cli hands its helpers to :func:`make_suppressions_app` (importing them from here would
import cli.py twice under ``python -m dripdrop.cli``). No ``from __future__ import annotations``:
Typer reads the option annotations, which refer to the factory's arguments.
"""

import csv
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

COLUMNS = ("channel", "recipient", "reason", "category", "tenant_key")
#: Rows written per statement by ``import``.
IMPORT_BATCH = 2000
#: Bad rows described one by one before the rest are only counted.
SHOWN_PROBLEMS = 50


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return max(sum(1 for _ in fh) - 1, 0)


def make_suppressions_app(
    _dd: Callable[..., Any],
    _fail: Callable[..., Any],
    console: Console,
    DatabaseOpt: Any,  # cli.py's Annotated option types
    SchemaOpt: Any,
) -> typer.Typer:
    """The ``suppressions`` command group, using cli.py's helpers and options."""
    suppressions_app = typer.Typer(
        help="Suppressions (who must not be sent to): import and export CSV, list.",
        no_args_is_help=True,
    )

    @suppressions_app.command("import")
    def import_csv(
        csv_file: Path,
        database_url: DatabaseOpt = None,
        schema: SchemaOpt = None,
        phone_region: Annotated[
            str | None, typer.Option(help="default country of phone numbers not in +E.164 form")
        ] = None,
    ) -> None:
        """Import suppressions from a CSV (columns channel,recipient,reason,category,tenant_key).
        Bad rows are reported with their line numbers; the good ones are imported."""
        from rich.progress import Progress

        from dripdrop.definitions.suppressions import check_region, checked_row, write_suppressions
        from dripdrop.errors import ValidationError

        try:
            region = check_region(phone_region, "--phone-region")
            total = _count_lines(csv_file)
            fh = csv_file.open(newline="", encoding="utf-8-sig")
        except ValidationError as exc:
            _fail(str(exc))
        except OSError as exc:
            _fail(f"{csv_file}: {exc}")
        dd = _dd(database_url, schema)
        region = region or dd.runtime.phone_region
        imported = bad = 0
        with fh, Progress(console=console, transient=True) as progress:
            reader = csv.DictReader(fh)
            missing = [c for c in ("channel", "recipient") if c not in (reader.fieldnames or [])]
            if missing:
                _fail(
                    f"{csv_file}: no {', '.join(missing)} column(s) "
                    f"(columns: {', '.join(reader.fieldnames or []) or 'none'}; "
                    f"expected {','.join(COLUMNS)})"
                )
            task = progress.add_task("importing", total=total)
            batch: list[Any] = []

            def flush() -> None:
                nonlocal imported, batch
                if batch:
                    with dd.runtime.engine.begin() as conn:
                        write_suppressions(conn, batch)
                    imported += len(batch)
                    progress.advance(task, len(batch))
                    batch = []

            try:
                for row in reader:
                    try:
                        if None in row:
                            raise ValidationError.single("row", "more cells than columns")
                        batch.append(checked_row(row, region))
                    except ValidationError as exc:
                        bad += 1
                        progress.advance(task, 1)
                        if bad <= SHOWN_PROBLEMS:
                            problem = "; ".join(
                                f"{k}: {'; '.join(v)}" for k, v in exc.errors.items()
                            )
                            typer.echo(f"{csv_file}, line {reader.line_num}: {problem}", err=True)
                    if len(batch) >= IMPORT_BATCH:
                        flush()
                flush()
            except (UnicodeDecodeError, csv.Error) as exc:
                flush()
                _fail(
                    f"{csv_file}, line {reader.line_num}: {exc} ({imported} rows imported before)"
                )
        if bad > SHOWN_PROBLEMS:
            typer.echo(f"… and {bad - SHOWN_PROBLEMS} more bad rows", err=True)
        console.print(f"imported {imported} suppression(s); {bad} bad row(s) skipped")
        if bad:
            raise typer.Exit(1)

    @suppressions_app.command("export")
    def export_csv(
        csv_file: Annotated[Path | None, typer.Argument(help="default: standard output")] = None,
        database_url: DatabaseOpt = None,
        schema: SchemaOpt = None,
    ) -> None:
        """Write every suppression (every tenant) as CSV, oldest first: an import reads it back."""
        from sqlalchemy import select

        from dripdrop.db import models as m

        T = m.Suppression.__table__
        dd = _dd(database_url, schema)
        try:
            out = csv_file.open("w", newline="", encoding="utf-8") if csv_file else sys.stdout
        except OSError as exc:
            _fail(f"{csv_file}: {exc}")
        count = 0
        try:
            writer = csv.writer(out)
            writer.writerow(COLUMNS)
            with dd.runtime.engine.connect() as conn:
                stmt = select(*(T.c[c] for c in COLUMNS)).order_by(T.c.inserted_at, T.c.id)
                for row in conn.execution_options(yield_per=5000).execute(stmt):
                    writer.writerow(["" if v is None else v for v in row])
                    count += 1
        finally:
            if csv_file:
                out.close()
        if csv_file:
            console.print(f"exported {count} suppression(s) to {csv_file}", markup=False)

    @suppressions_app.command("list")
    def list_rows(
        channel: Annotated[str | None, typer.Option(help="only this channel")] = None,
        tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
        reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
        limit: Annotated[int, typer.Option(min=1, help="at most this many")] = 50,
        database_url: DatabaseOpt = None,
        schema: SchemaOpt = None,
    ) -> None:
        """List suppressions, newest first (every tenant unless --tenant)."""
        dd = _dd(database_url, schema)
        rows = dd.list_suppressions(
            channel, tenant, reason=reason, all_tenants=tenant is None, limit=limit
        )
        if not rows:
            typer.echo("no suppressions")
        for s in rows:
            typer.echo(
                "  ".join(
                    [
                        s.channel,
                        s.recipient,
                        s.reason,
                        f"category={s.category or '*'}",
                        f"tenant={s.tenant_key or '*'}",
                        s.inserted_at.isoformat() if s.inserted_at else "",
                    ]
                )
            )

    return suppressions_app
