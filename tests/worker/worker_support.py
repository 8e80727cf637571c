"""Helpers shared by the worker tests: a one-step sequence, bulk enrollment, reading rows and
starting worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import worker_providers  # noqa: F401  (registers the slow and flaky providers)
from sqlalchemy import text

HERE = Path(__file__).parent


def one_step_sequence(
    dd: Any,
    provider: str = "memory",
    adapter_config: dict[str, Any] | None = None,
    step_config: dict[str, Any] | None = None,
    key: str = "s",
) -> Any:
    """A sequence ``key`` with one immediate email step delivered by ``provider``."""
    s = dd.create_sequence(name=key.upper(), key=key)
    v = dd.create_sequence_version(s.id, active=True)
    dd.create_channel_adapter(
        name=f"{provider}-{key}", channel="email", provider=provider, config=adapter_config
    )
    config = {"subject": "hi {{ name }}", "body": "x", **(step_config or {})}
    return dd.create_step(v.id, name="a", channel="email", config=config)


def enroll_n(dd: Any, n: int, key: str = "s") -> int:
    return dd.enroll_many(
        key,
        (
            {"subscriber": {"type": "User", "id": i}, "data": {"email": f"u{i}@x.io", "name": i}}
            for i in range(n)
        ),
    )


def sql(dd: Any, statement: str, **params: Any) -> list[Any]:
    """Run SQL on ``dd``'s schema (``{s}`` is the quoted schema name); rows when any."""
    with dd.runtime.engine.begin() as conn:
        result = conn.execute(text(statement.format(s=f'"{dd.schema}"')), params)
        return result.all() if result.returns_rows else []


# A claim only stamps a lease on a scheduled row; the records report a row under a live lease as
# "sending" (engine/enrollments.py). ``reported`` is that state.
REPORTED = (
    "CASE WHEN state = 'scheduled' AND locked_until > clock_timestamp() THEN 'sending' "
    "ELSE state END"
)


def executions(dd: Any) -> list[Any]:
    """Every execution row, with ``reported`` (the state the records show)."""
    return sql(dd, f"SELECT *, {REPORTED} AS reported FROM {{s}}.step_executions ORDER BY id")


def states(dd: Any) -> Counter[str]:
    """Executions by reported state ("sending" = under a live lease)."""
    return Counter(
        dict(sql(dd, f"SELECT {REPORTED}, count(*) FROM {{s}}.step_executions GROUP BY 1"))
    )


def start_worker(dd: Any, database_url: str, out: Path, **env: Any) -> subprocess.Popen[str]:
    """A worker OS process on ``dd``'s schema and clock (see worker_proc.py)."""
    environ = {
        **os.environ,
        "DD_URL": database_url,
        "DD_SCHEMA": dd.schema,
        "DD_NOW": dd.runtime.now().isoformat(),
        **{f"DD_{k.upper()}": str(v) for k, v in env.items()},
    }
    return subprocess.Popen(
        [sys.executable, str(HERE / "worker_proc.py"), str(out)],
        env=environ,
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
