"""``POST /inbound/{provider}/{adapter_id}``: provider event webhooks (public: no API key).

The provider proves itself with its own signature (or credentials), checked against the
adapter's credentials by :mod:`dripdrop.inbound`; a request that does not is answered 401 and
logged without its body. An unknown adapter, or one of another provider, is 404. Events whose
message id matches no execution are accepted and counted (``unmatched``): the provider must not
retry them forever. The body is capped (:data:`MAX_INBOUND_BYTES`) before it is read whole.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from dripdrop.channels.base import AdapterInfo
from dripdrop.definitions.common import as_uuid
from dripdrop.definitions.secrets import unseal
from dripdrop.errors import NotFound, ValidationError
from dripdrop.inbound.context import InboundContext
from dripdrop.inbound.events import InboundRequest, ProviderEvent, SignatureRefused
from dripdrop.inbound.receivers import receiver_for
from dripdrop.inbound.record import Source, record_events, source_of
from dripdrop.web import problems
from dripdrop.web.routes.common import dd_of, m, select

log = logging.getLogger("dripdrop.inbound")
router = APIRouter(tags=["inbound"])
A = m.ChannelAdapter.__table__

#: The largest webhook body read (a SendGrid batch is well below it).
MAX_INBOUND_BYTES = 4 * 1024 * 1024


class _TooLarge(Exception):
    pass


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_INBOUND_BYTES:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_INBOUND_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _adapter(rt: Any, adapter_id: str, provider: str) -> tuple[Source, AdapterInfo]:
    """The adapter with its credentials decrypted; NotFound unless it is ``provider``'s."""
    try:
        key = as_uuid(adapter_id, "adapter_id")
    except ValidationError:
        raise NotFound(f"channel adapter {adapter_id} not found") from None
    with rt.engine.begin() as conn:
        row = conn.execute(select(A).where(A.c.id == key)).first()
    if row is None or row.provider != provider:
        raise NotFound(f"no {provider} channel adapter {adapter_id}")
    credentials = unseal(rt, "channel_adapters", "credentials", row.id, row.credentials).reveal()
    info = AdapterInfo(
        id=str(row.id),
        name=row.name,
        channel=row.channel,
        provider=row.provider,
        credentials=dict(credentials or {}),
        config=dict(row.config or {}),
    )
    return source_of(row), info


def _record(rt: Any, source: Source, events: list[ProviderEvent]) -> Any:
    with rt.engine.begin() as conn:
        return record_events(rt, conn, source, events)


def inbound_context(request: Request) -> InboundContext:
    """The app's receiver services (made on first use; tests may set ``app.state.inbound``)."""
    state = request.app.state
    ctx = getattr(state, "inbound", None)
    if ctx is None:
        ctx = state.inbound = InboundContext(dd_of(request).runtime.policy)
    return ctx


@router.post("/inbound/{provider}/{adapter_id}", openapi_extra={"security": []})
async def receive(provider: str, adapter_id: str, request: Request) -> Any:
    """A provider's event webhook (Mailgun, SendGrid, Postmark, Amazon SES via SNS, Resend,
    Twilio): verified, then ``{received, recorded, duplicates, unmatched, suppressed}``."""
    rt = dd_of(request).runtime
    source, adapter = await run_in_threadpool(_adapter, rt, adapter_id, provider)
    receive_events = receiver_for(provider, adapter.channel)
    if receive_events is None:
        raise NotFound(f"{provider} adapters receive no provider events")
    try:
        body = await _body(request)
    except _TooLarge:
        return problems.problem(413, f"request body above {MAX_INBOUND_BYTES} bytes")
    incoming = InboundRequest(
        method=request.method,
        url=str(request.url),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
    )
    try:
        events = await receive_events(incoming, adapter, inbound_context(request))
    except SignatureRefused as exc:
        # Never the body: it is unauthenticated input, and may hold personal data.
        client = request.client.host if request.client else "?"
        log.warning(
            "inbound %s adapter %s: refused request from %s: %s", provider, adapter_id, client, exc
        )
        return problems.problem(401, "the request is not signed by the provider")
    result = await run_in_threadpool(_record, rt, source, events)
    return JSONResponse(
        {
            "received": result.received,
            "recorded": result.recorded,
            "duplicates": result.duplicates,
            "unmatched": result.unmatched,
            "suppressed": result.suppressed,
        }
    )
