"""What the worker hands to metrics per batch (kept out of the lane's code)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import Any

from dripdrop.observability import metrics, tracing


def observe_claim(schema: str, jobs: list[Any], now: datetime) -> None:
    """A claim's lag (claim time - scheduled_for, per execution) and lease recoveries."""
    scheduled = [j.execution.scheduled_for.timestamp() for j in jobs if j.execution.scheduled_for]
    recovered = sum(1 for j in jobs if getattr(j.execution, "recovered", False))
    metrics.record_claim(schema, now.timestamp(), scheduled, recovered)


def outcome_key(o: Any, kind: str) -> tuple[str, str, str]:
    """(outcome, channel, provider) of a recorded outcome; provider "none" without an adapter."""
    adapter = o.job.adapters.by_id.get(o.adapter_id) if o.adapter_id is not None else None
    return kind, o.job.execution.channel, adapter.provider if adapter is not None else "none"


def new_tally() -> Counter[tuple[str, str, str]] | None:
    """A tally for one record, or None when metrics are off (then nothing is counted)."""
    return Counter() if metrics.ENABLED else None


_in_process: dict[tuple[str, str], bool] = {}


def _runs_in_process(adapter: Any) -> bool:
    key = (adapter.channel, adapter.provider)
    found = _in_process.get(key)
    if found is None:
        from dripdrop.channels.registry import get_spec

        try:
            found = bool(get_spec(*key).in_process)
        except Exception:  # an unknown provider fails in the send, with its message
            found = False
        _in_process[key] = found
    return found


def observes_delivery(adapter: Any) -> bool:
    """Is a delivery through ``adapter`` timed or traced? Timed only for network providers (an
    in-process one's microseconds say nothing); traced whenever tracing is on."""
    if tracing.enabled():
        return True
    return metrics.ENABLED and not _runs_in_process(adapter)


async def observe_delivery(send: Any, message: Any, adapter: Any, ctx: Any) -> Any:
    """``await send(message, adapter, ctx)`` as a ``dripdrop.deliver`` span (the parent of the
    provider's HTTP request and its ``traceparent``), timed per provider."""
    schema = (ctx.extras or {}).get("schema", "") if ctx is not None else ""
    started = time.perf_counter()
    try:
        if not tracing.enabled():  # timed only: no span, not even a no-op one
            return await send(message, adapter, ctx)
        with tracing.child_span(
            "dripdrop.deliver",
            "client",
            provider=adapter.provider,
            channel=adapter.channel,
            adapter=adapter.name,
            execution_id=message.execution_id,
        ):
            return await send(message, adapter, ctx)
    finally:
        if not _runs_in_process(adapter):
            metrics.observe_delivery(schema, adapter.provider, time.perf_counter() - started)


async def observe_hook(schema: str, kind: str, name: str, call: Any) -> Any:
    """``await call()`` as a ``dripdrop.hook`` span, timed per kind (http, python)."""
    started = time.perf_counter()
    try:
        with tracing.child_span(
            "dripdrop.hook", "client" if kind == "http" else "internal", hook=name, hook_kind=kind
        ):
            return await call()
    finally:
        metrics.observe_hook(schema, kind, time.perf_counter() - started)
