"""OpenTelemetry spans (extra ``otel``: opentelemetry-api).

DripDrop depends only on the API: with no SDK configured by the host (or without the package)
:func:`enabled` is False and nothing here runs on the worker's path — not even a no-op span.
Once the host sets a tracer provider:

- each execution is a span ``dripdrop.execution``; its hook calls (``dripdrop.hook``) and the
  provider request (``dripdrop.deliver``) are its children, and webhooks and HTTP hooks carry the
  W3C ``traceparent`` of that request (:func:`inject_headers`);
- ``enroll`` is a span ``dripdrop.enroll``; its ``traceparent`` is stored on the enrollment
  (``enrollments.trace_parent``, migration 0013) and every execution of that enrollment links
  to it, so a trace viewer goes from the request that enrolled someone to every message it
  caused, days later, in other traces.

Span attributes carry ids, keys, channel, provider and outcome — never recipients, rendered
fields or error texts (they may hold personal data or answers quoting secrets).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the `otel` extra is not installed
    trace = None

_TRACER_NAME = "dripdrop"
_tracer_of: dict[int, Any] = {}  # id(provider) → tracer


_answer: tuple[Any, bool] = (None, False)  # the provider last asked about, and the answer
_UNSET = object()
# OTEL_PYTHON_TRACER_PROVIDER names a provider the API loads on first use; read at import.
_PROVIDER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def enabled() -> bool:
    """Is a real tracer provider configured (not the API's default proxy / no-op)? Asked a few
    times per execution, so the answer is kept until the global provider changes."""
    global _answer
    if trace is None:
        return False
    # No provider set and none named in the environment: the API would answer its proxy, after
    # an os.environ lookup that raises and catches a KeyError (a few µs, several times per
    # delivery). Its global is read directly while it exists; otherwise, the API's own answer.
    if getattr(trace, "_TRACER_PROVIDER", _UNSET) is None and not _PROVIDER_FROM_ENV:
        return False
    provider = trace.get_tracer_provider()
    if provider is not _answer[0]:
        real = not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)
        _answer = (provider, real)
    return _answer[1]


def tracer() -> Any:
    provider = trace.get_tracer_provider()
    found = _tracer_of.get(id(provider))
    if found is None:
        found = _tracer_of[id(provider)] = trace.get_tracer(_TRACER_NAME)
    return found


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span (None without one)."""
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def _link(traceparent: str | None) -> list[Any]:
    if not traceparent:
        return []
    ctx = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    span_context = trace.get_current_span(ctx).get_span_context()
    return [Link(span_context)] if span_context.is_valid else []


def inject_headers(headers: dict[str, str]) -> None:
    """Add ``traceparent`` (and the host's other propagated headers) for the current span to an
    outgoing request's headers; nothing without a configured SDK."""
    if trace is not None and enabled():
        propagate.inject(headers)


async def run_in_span(
    run: Callable[..., Any], job: Any, links: dict[str, str | None], *args: Any
) -> Any:
    """``await run(job, *args)`` inside a ``dripdrop.execution`` span linked to the span of the
    ``enroll`` that started the enrollment (``links``: enrollment id text → traceparent)."""
    ex = job.execution
    attributes = {
        "dripdrop.execution_id": ex.id_text,
        "dripdrop.enrollment_id": job.enrollment.id_text,
        "dripdrop.step_id": str(ex.step_id),
        "dripdrop.channel": ex.channel,
        "dripdrop.retry_count": ex.retry_count,
        "dripdrop.sequence_key": job.version.sequence_key,
    }
    with tracer().start_as_current_span(
        "dripdrop.execution",
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=_link(links.get(job.enrollment.id_text)),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        outcome = await run(job, *args)
        span.set_attribute("dripdrop.outcome", outcome.kind)
        if outcome.kind == "failed":
            span.set_status(Status(StatusCode.ERROR, "delivery failed"))
        return outcome


@contextlib.contextmanager
def child_span(name: str, kind: str = "internal", **attributes: Any) -> Iterator[Any]:
    """A child span of the current one (a hook call, a provider request); nothing when tracing
    is off. An exception marks it as an error (by type only: the text may quote data)."""
    if not enabled():
        yield None
        return
    span_kind = SpanKind.CLIENT if kind == "client" else SpanKind.INTERNAL
    attrs = {f"dripdrop.{k}": v for k, v in attributes.items() if v is not None}
    with tracer().start_as_current_span(
        name,
        kind=span_kind,
        attributes=attrs,
        # Not the exception's text (the SDK's default): it may quote an answer or a secret.
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def trace_parents(rt: Any, conn: Any, enrollment_ids: list[str]) -> dict[str, str | None]:
    """Enrollment id (text) → the traceparent its ``enroll`` stored (one query per batch, only
    while tracing is on)."""
    from sqlalchemy import text

    rows = conn.execute(
        text(
            f'SELECT id::text AS id, trace_parent FROM "{rt.schema}".enrollments '
            "WHERE id = ANY(CAST(string_to_array(:ids, ',') AS uuid[])) "
            "AND trace_parent IS NOT NULL"
        ),
        {"ids": ",".join(enrollment_ids)},
    )
    return {r.id: r.trace_parent for r in rows}


def traced_enroll(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``enroll``: a ``dripdrop.enroll`` span, whose traceparent is stored on the
    enrollment it created or restarted (not on one it merely returned) for the executions to
    link to."""

    @functools.wraps(fn)
    def enroll(rt: Any, conn: Any, *args: Any, **kw: Any) -> Any:
        if not enabled():
            return fn(rt, conn, *args, **kw)
        sequence_key = args[0] if args else kw.get("sequence_key")
        with tracer().start_as_current_span(
            "dripdrop.enroll",
            kind=SpanKind.PRODUCER,
            attributes={"dripdrop.sequence_key": str(sequence_key)},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            before = rt.now()
            try:
                enrollment = fn(rt, conn, *args, **kw)
            except Exception as exc:  # by type only: the text names the subscriber
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            span.set_attribute("dripdrop.enrollment_id", str(enrollment.id))
            if enrollment.started_at >= before:  # created or restarted by this call
                _store_traceparent(rt, conn, enrollment.id, current_traceparent())
            return enrollment

    return enroll


def _store_traceparent(rt: Any, conn: Any, enrollment_id: Any, traceparent: str | None) -> None:
    from sqlalchemy import text

    if traceparent:
        conn.execute(
            text(f'UPDATE "{rt.schema}".enrollments SET trace_parent = :tp WHERE id = :id'),
            {"tp": traceparent, "id": enrollment_id},
        )
