"""``dripdrop templates generate | check``: the AI template builder and the CI check.

Kept apart so cli.py stays small. dripdrop.cli hands its helpers to :func:`make_templates_app`
(importing them from here would import cli.py twice under ``python -m dripdrop.cli``). No
``from __future__ import annotations``: Typer reads the option annotations, which refer to the
factory's arguments.
"""

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


def _model_object(path: str, _fail: Callable[..., Any]) -> Any:
    """``module:attribute`` → that pydantic-ai Model object (a callable is called first)."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        _fail("--model-object: expected MODULE:ATTRIBUTE (a pydantic-ai Model object)")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        _fail(f"--model-object: cannot load {path}: {exc}")
    return found() if callable(found) and not hasattr(found, "request") else found


def _variables(given: list[str]) -> list[str] | dict[str, Any]:
    """``--var name`` values, or name → example when any is ``name=example`` (JSON or text)."""
    if not any("=" in item for item in given):
        return given
    examples: dict[str, Any] = {}
    for item in given:
        name, _, raw = item.partition("=")
        try:
            examples[name] = json.loads(raw) if raw else None
        except ValueError:
            examples[name] = raw
    return examples


def _read_data(path: Path | None, _fail: Callable[..., Any]) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        _fail(f"--data: cannot read {path}: {exc}")
    if not isinstance(data, dict):
        _fail("--data: the file must hold a JSON object (the enrollment data)")
    return data


def make_templates_app(
    _dd: Callable[..., Any],
    _fail: Callable[..., Any],
    console: Console,
    DatabaseOpt: Any,  # cli.py's Annotated option types
    SchemaOpt: Any,
) -> typer.Typer:
    """The ``templates`` command group, using cli.py's helpers and options."""
    templates_app = typer.Typer(
        help="Templates: generate one with an AI model, check every active step (CI).",
        no_args_is_help=True,
    )

    @templates_app.command("generate")
    def generate(
        description: Annotated[str, typer.Argument(help="what the template should say")],
        channel: Annotated[str, typer.Option(help="email, sms, slack, telegram…")] = "email",
        var: Annotated[
            list[str] | None,
            typer.Option("--var", help="a variable it may use: NAME or NAME=EXAMPLE (repeatable)"),
        ] = None,
        engine: Annotated[str, typer.Option(help="liquid, mjml, mustache or jinja")] = "liquid",
        tone: Annotated[str | None, typer.Option(help="e.g. friendly, formal")] = None,
        language: Annotated[str | None, typer.Option(help="language to write in")] = None,
        category: Annotated[
            str | None,
            typer.Option(help="marketing (requires an unsubscribe link) or transactional"),
        ] = None,
        provider: Annotated[str | None, typer.Option(help="anthropic or openai")] = None,
        model: Annotated[str | None, typer.Option(help="the provider's model name")] = None,
        model_object: Annotated[
            str | None,
            typer.Option(help="MODULE:ATTRIBUTE of a pydantic-ai Model object to use instead"),
        ] = None,
        max_repairs: Annotated[int, typer.Option(help="answers sent back to the model")] = 3,
        max_sms_segments: Annotated[int, typer.Option(help="longest SMS accepted")] = 3,
        as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    ) -> None:
        """Write a template with an AI model, validated before it is printed (needs the ai extra
        and ANTHROPIC_API_KEY or OPENAI_API_KEY)."""
        from dripdrop import ai
        from dripdrop.web.encode import encode

        chosen: Any = _model_object(model_object, _fail) if model_object else model
        result = ai.generate_template(
            description,
            channel,
            _variables(var or []),
            engine=engine,
            tone=tone,
            language=language,
            category=category,
            provider=provider,
            model=chosen,
            max_repairs=max_repairs,
            max_sms_segments=max_sms_segments,
        )
        if as_json:
            typer.echo(json.dumps({**encode(result), "step_config": result.step_config}, indent=2))
            return
        for name, value in result.fields.items():
            console.print(Panel(value, title=name, title_align="left", expand=False), markup=False)
        usage = result.usage
        summary = (
            f"[green]✓[/green] valid {result.engine} template for {result.channel}; "
            f"repairs: {result.repairs}; tokens: {usage.input_tokens} in, "
            f"{usage.output_tokens} out ({usage.requests} request(s))"
        )
        if result.sms is not None:
            sms = result.sms
            summary += f"; SMS: {sms.encoding}, {sms.units} units, {sms.segments} segment(s)"
        console.print(summary, highlight=False)

    @templates_app.command("check")
    def check(
        sequence: Annotated[
            str | None, typer.Argument(help="a sequence key; every active version if none")
        ] = None,
        data: Annotated[
            Path | None, typer.Option(help="JSON file of enrollment data (default: sample data)")
        ] = None,
        tenant: Annotated[str | None, typer.Option(help="tenant of the sequence(s)")] = None,
        max_sms_segments: Annotated[int, typer.Option(help="longest SMS accepted")] = 3,
        strict: Annotated[bool, typer.Option(help="warnings fail too")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="print the problems as JSON")] = False,
        database_url: DatabaseOpt = None,
        schema: SchemaOpt = None,
    ) -> None:
        """Render every active step with sample data; report what would fail (exit 1 on errors).

        Unknown variables, missing recipients, over-long SMS, MJML problems, missing unsubscribe
        links in marketing emails."""
        values = _read_data(data, _fail)
        dd = _dd(database_url, schema)
        problems = dd.check_templates(
            sequence, values, tenant_key=tenant, max_sms_segments=max_sms_segments
        )
        failing = [p for p in problems if strict or p.severity == "error"]
        if as_json:
            from dripdrop.web.encode import encode

            typer.echo(json.dumps({"ok": not failing, "items": encode(problems)}, indent=2))
        elif not problems:
            console.print("[green]✓[/green] every checked template renders cleanly")
        else:
            table = Table("", "sequence", "step", "field", "kind", "problem", show_lines=False)
            for p in problems:
                mark = "[red]error[/red]" if p.severity == "error" else "[yellow]warning[/yellow]"
                where = f"{p.sequence_key} v{p.version}" if p.version else p.sequence_key
                cells = (where, p.step_key or "-", p.field, p.kind, p.message)
                table.add_row(mark, *(Text(str(cell)) for cell in cells))  # no markup in data
            console.print(table)
            errors = sum(p.severity == "error" for p in problems)
            console.print(f"{errors} error(s), {len(problems) - errors} warning(s)")
        if failing:
            raise typer.Exit(1)

    return templates_app
