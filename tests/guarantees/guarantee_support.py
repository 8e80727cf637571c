"""Helpers for the guarantee tests: test providers and hooks registered on import, sequences,
and a worker running in a thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text

from dripdrop.channels import DeliveryResult, Fields, ProviderSpec, register
from dripdrop.channels.providers.dev import MemoryProvider
from dripdrop.errors import PermanentError

#: Released by the tests to let blocking hooks return.
RELEASE = threading.Event()


async def _keep(message: Any, adapter: Any, ctx: Any) -> None:
    """Deliver to the outbox, as the memory provider does."""
    await MemoryProvider().send(message, adapter, ctx)


class PoisonProvider:
    """Answers what a hostile or broken provider might: NUL characters, lone surrogates,
    integers beyond 64 bits, megabytes; or fails with a NUL in its message."""

    async def send(self, message: Any, adapter: Any, ctx: Any) -> DeliveryResult:
        await asyncio.sleep(0)
        kind = message.fields.get("subject", "")
        if kind == "fail":
            raise PermanentError("rejected \x00 \udc80")
        if kind == "long":  # an error text longer than a row keeps: 5,000 two-byte characters
            raise PermanentError("é" * 5000)
        await _keep(message, adapter, ctx)
        answers = {
            "nul": {"text": "a\x00b", "k\x00": 1},
            "surrogate": {"text": "\udc80 lone"},
            "bigint": {"n": 2**70, "m": -(2**80)},
            "huge": {"blob": "x" * 3_000_000},
            "deep": _deep(200),
            "nan": {"f": float("nan"), "g": float("inf")},
        }
        return DeliveryResult(
            provider_message_id="id\x00" if kind == "nul" else None,
            status="sent",
            response=answers.get(kind, {"ok": True}),
        )


def _deep(n: int) -> Any:
    value: Any = "bottom"
    for _ in range(n):
        value = {"d": value}
    return value


class SlowNetProvider:
    """A network-like provider: sleeps ``config.delay`` seconds (per subject when the config
    maps subjects to delays), then delivers."""

    async def send(self, message: Any, adapter: Any, ctx: Any) -> DeliveryResult:
        delays = adapter.config.get("delays") or {}
        delay = delays.get(message.fields.get("subject", ""), adapter.config.get("delay", 0.0))
        await asyncio.sleep(float(delay))
        await _keep(message, adapter, ctx)
        return DeliveryResult(status="sent")


class _SlowConfig(Fields):
    delay: float | None = None
    delays: dict[str, float] | None = None


register(ProviderSpec("email", "poison", Fields, Fields, PoisonProvider, "Hostile answers"))
register(ProviderSpec("email", "slownet", Fields, _SlowConfig, SlowNetProvider, "Sleeps"))


def sql(dd: Any, statement: str, **params: Any) -> list[Any]:
    with dd.runtime.engine.begin() as conn:
        result = conn.execute(text(statement.format(s=f'"{dd.schema}"')), params)
        return result.all() if result.returns_rows else []


def wait_for(condition: Callable[[], Any], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def sequence(
    dd: Any,
    key: str,
    provider: str = "memory",
    steps: tuple[dict[str, Any], ...] = ({"subject": "one"},),
    adapter_config: dict[str, Any] | None = None,
    hook_module: str | None = None,
    **version_config: Any,
) -> Any:
    """A sequence ``key`` whose email steps (configs ``steps``) go through ``provider``."""
    s = dd.create_sequence(name=key.upper(), key=key, hook_module=hook_module)
    v = dd.create_sequence_version(s.id, active=True, config=version_config or None)
    adapter = dd.create_channel_adapter(
        name=f"{provider}-{key}", channel="email", provider=provider, config=adapter_config
    )
    for n, config in enumerate(steps):
        timing = config.pop("timing", None)
        dd.create_step(
            v.id,
            name=f"{key}-{n}",
            channel="email",
            channel_adapter_id=adapter.id,
            timing=timing,
            config={"body": "b", **config},
        )
    return v


@contextmanager
def worker_thread(dd: Any, **options: Any) -> Iterator[Callable[[], Any]]:
    """``run_worker`` in a thread; yields ``stop()`` which stops it and returns its summary."""
    stop = threading.Event()
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["summary"] = dd.run_worker(stop_event=stop, **options)
        except BaseException as exc:  # surfaced by stop()
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def finish() -> Any:
        stop.set()
        thread.join(60)
        assert not thread.is_alive(), "the worker did not stop"
        if "error" in result:
            raise result["error"]
        return result["summary"]

    try:
        yield finish
    finally:
        stop.set()
        thread.join(60)
