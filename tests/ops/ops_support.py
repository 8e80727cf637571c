"""Helpers of the operations tests: sequences, raw SQL on a test schema, a tracer provider
installed for one test, and a worker OS process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import text

SRC = Path(__file__).resolve().parents[2] / "src"


def sql(dd: Any, statement: str, **params: Any) -> list[Any]:
    """Run SQL on ``dd``'s schema (``{s}`` is the quoted schema name); rows when any."""
    with dd.runtime.engine.begin() as conn:
        result = conn.execute(text(statement.format(s=f'"{dd.schema}"')), params)
        return result.all() if result.returns_rows else []


def two_step_sequence(dd: Any, key: str = "s", *, second_delay_days: int | None = None) -> Any:
    """Two email steps through the memory provider; the second immediate or days later."""
    seq = dd.create_sequence(name=key.upper(), key=key)
    version = dd.create_sequence_version(seq.id, active=True)
    dd.create_channel_adapter(
        name=f"memory-{key}", channel="email", provider="memory", is_default=True
    )
    dd.create_step(version.id, name="one", channel="email", config={"subject": "1", "body": "a"})
    timing = (
        {"type": "immediate"}
        if second_delay_days is None
        else {"type": "delay", "delay_amount": second_delay_days, "delay_unit": "days"}
    )
    dd.create_step(
        version.id, name="two", channel="email", timing=timing, config={"subject": "2", "body": "b"}
    )
    return version


def enroll_n(dd: Any, n: int, key: str = "s") -> int:
    return dd.enroll_many(
        key,
        (
            {"subscriber": {"type": "User", "id": i}, "data": {"email": f"u{i}@x.io"}}
            for i in range(n)
        ),
    )


@contextlib.contextmanager
def tracer_provider() -> Iterator[Any]:
    """An SDK tracer provider with an in-memory exporter, installed as the global provider for
    the block and removed after (the API lets a provider be set only once per process)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.util._once import Once

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        provider.shutdown()
        trace._TRACER_PROVIDER_SET_ONCE = Once()
        trace._TRACER_PROVIDER = None


def dripdrop_cli(*args: str, env: dict[str, str], **kw: Any) -> subprocess.Popen[str]:
    """``dripdrop ARGS`` as an OS process (the installed console script's module)."""
    return subprocess.Popen(
        [sys.executable, "-c", "from dripdrop.cli import main; main()", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )
