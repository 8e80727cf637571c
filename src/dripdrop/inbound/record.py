"""Recording provider events: matched to executions, stored once, with their consequences.

One transaction per batch (a webhook call, or one ``record_delivery_events`` call), in a fixed
number of statements whatever its size: the executions of every message id are found in one
query (the partial index on ``provider_message_id``), the events inserted in one (``ON
CONFLICT DO NOTHING`` on (provider, provider_event_id): a provider's retry adds nothing), the
executions' ``delivery_status`` moved in one, and soft bounces counted in one. Only events new
to the table have consequences, so a retried webhook never suppresses twice or moves a status
back. Hard bounces and complaints suppress the address (every category), an unsubscribe the
sequence's category, and a soft bounce once the recipient reached the adapter's
``soft_bounce_limit`` (default 3) different messages soft-bounced within ``soft_bounce_days``
(default 30). A suppression is written in the same transaction as the event that caused it:
either both are stored or neither.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, select, text

from dripdrop.db import models as m
from dripdrop.definitions.common import as_uuid, get_row
from dripdrop.definitions.inputs import (
    check_choice,
    check_identifier,
    check_json,
    check_text,
    describe,
    unknown_keys,
)
from dripdrop.errors import ValidationError
from dripdrop.inbound.events import EVENT_TYPES, ProviderEvent, from_iso, now_utc
from dripdrop.inbound.message_ids import message_id_key
from dripdrop.records import DeliveryEvent, DeliveryEventsResult, from_row
from dripdrop.runtime import Runtime
from dripdrop.worker.storable import capped_json, clean_text

log = logging.getLogger("dripdrop.inbound")

A = m.ChannelAdapter.__table__
D = m.DeliveryEvent.__table__

SOFT_BOUNCE_LIMIT, SOFT_BOUNCE_DAYS = 3, 30
#: At most this many events in one call (a SendGrid post holds up to a few thousand).
MAX_EVENTS = 10_000

# The executions of these message ids sent through an adapter of the same provider, channel and
# tenant as the webhook's (several adapters may share one provider account).
_MATCH = """
SELECT x.id, x.provider_message_id, x.recipient, s.category
FROM {s}.step_executions AS x
JOIN {s}.enrollments AS e ON e.id = x.enrollment_id
JOIN {s}.sequences AS s ON s.id = e.sequence_id
WHERE x.provider_message_id = ANY(CAST(:ids AS text[]))
  AND x.adapter_id IN (
      SELECT id FROM {s}.channel_adapters
      WHERE provider = :provider AND channel = :channel
        AND tenant_key IS NOT DISTINCT FROM :tenant)
"""

_INSERT = """
INSERT INTO {s}.delivery_events (execution_id, adapter_id, provider, provider_event_id, type,
    channel, recipient, occurred_at, data, tenant_key)
SELECT v.execution_id, :adapter_id, :provider, v.provider_event_id, v.type, :channel,
       v.recipient, v.occurred_at, COALESCE(v.data, '{{}}'::jsonb), :tenant
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(execution_id uuid, provider_event_id text,
    type text, recipient text, occurred_at timestamptz, data jsonb)
ON CONFLICT (provider, provider_event_id) DO NOTHING
RETURNING execution_id, type, recipient
"""

# An execution's status moves only to an equal or stronger one (EVENT_TYPES order).
_STATUS = """
UPDATE {s}.step_executions AS x
SET delivery_status = v.status
FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS text[])) AS v(id, status)
WHERE x.id = v.id
  AND COALESCE(array_position(CAST(:ranks AS text[]), x.delivery_status), 0)
      <= array_position(CAST(:ranks AS text[]), v.status)
"""

_SOFT_COUNTS = """
SELECT recipient, count(DISTINCT execution_id) AS n
FROM {s}.delivery_events
WHERE type = 'soft_bounced' AND recipient = ANY(CAST(:recipients AS text[]))
  AND occurred_at >= :since AND channel = :channel AND tenant_key IS NOT DISTINCT FROM :tenant
GROUP BY recipient
"""

_SUPPRESSING = {
    "bounced": ("bounce", False),
    "complained": ("complaint", False),
    "unsubscribed": ("unsubscribe", True),
}


@dataclass(frozen=True)
class Source:
    """The adapter a batch of events came through."""

    id: uuid.UUID
    provider: str
    channel: str
    tenant_key: str | None
    config: dict[str, Any]


def source_of(row: Any) -> Source:
    return Source(row.id, row.provider, row.channel, row.tenant_key, dict(row.config or {}))


def _q(sql: str, rt: Runtime) -> Any:
    return text(sql.format(s=f'"{rt.schema}"'))


def _recipient_key(channel: str, recipient: str | None) -> str | None:
    """The recipient as suppressions store it (so soft bounces of one address are counted
    together); the text as given when it is not a valid address."""
    if not recipient:
        return None
    from dripdrop.definitions.suppressions import engine_key

    return engine_key(channel, recipient, None) or recipient.strip()[:500]


def _strongest(inserted: list[Any]) -> dict[Any, str]:
    best: dict[Any, str] = {}
    rank = {name: i for i, name in enumerate(EVENT_TYPES)}
    for r in inserted:
        current = best.get(r.execution_id)
        if current is None or rank[r.type] >= rank[current]:
            best[r.execution_id] = r.type
    return best


def record_events(
    rt: Runtime, conn: Connection, source: Source, events: list[ProviderEvent]
) -> DeliveryEventsResult:
    """Match, store and act on ``events`` from ``source`` (see the module docstring)."""
    if not events:
        return DeliveryEventsResult()
    ids = sorted({e.provider_message_id for e in events if e.provider_message_id})
    matched: dict[str, Any] = {}
    if ids:
        params = {
            "ids": ids,
            "provider": source.provider,
            "channel": source.channel,
            "tenant": source.tenant_key,
        }
        for r in conn.execute(_q(_MATCH, rt), params):
            matched.setdefault(r.provider_message_id, r)
    rows, executions = [], {}
    for e in events:
        x = matched.get(e.provider_message_id) if e.provider_message_id else None
        if x is None:
            continue
        executions[x.id] = x
        recipient = _recipient_key(source.channel, e.recipient or x.recipient)
        rows.append(
            {
                "execution_id": str(x.id),
                # Cleaned like the worker's outcomes: one NUL in a provider's text must not
                # fail the batch (and make the provider retry it for days).
                "provider_event_id": clean_text(e.provider_event_id, 500),
                "type": e.type,
                "recipient": clean_text(recipient, 500) if recipient else None,
                "occurred_at": e.occurred_at.isoformat(),
                "data": capped_json(e.data),
            }
        )
    unmatched = len(events) - len(rows)
    if not rows:
        return DeliveryEventsResult(received=len(events), unmatched=unmatched)
    inserted = list(
        conn.execute(
            _q(_INSERT, rt),
            {
                "rows": orjson.dumps(rows).decode(),
                "adapter_id": source.id,
                "provider": source.provider,
                "channel": source.channel,
                "tenant": source.tenant_key,
            },
        )
    )
    if inserted:
        best = _strongest(inserted)
        conn.execute(
            _q(_STATUS, rt),
            {"ids": list(best), "statuses": list(best.values()), "ranks": list(EVENT_TYPES)},
        )
    suppressed = _suppress(rt, conn, source, inserted, executions)
    return DeliveryEventsResult(
        received=len(events),
        recorded=len(inserted),
        duplicates=len(rows) - len(inserted),
        unmatched=unmatched,
        suppressed=suppressed,
    )


def _suppress(
    rt: Runtime, conn: Connection, source: Source, inserted: list[Any], executions: dict[Any, Any]
) -> int:
    """Write the suppressions the new events call for; how many were written."""
    from dripdrop.definitions.suppressions import write_suppression

    wanted: dict[tuple[str, str, str | None], None] = {}
    for r in inserted:
        if r.type in _SUPPRESSING and r.recipient:
            reason, by_category = _SUPPRESSING[r.type]
            category = executions[r.execution_id].category if by_category else None
            wanted[(r.recipient, reason, category)] = None
    soft = sorted({r.recipient for r in inserted if r.type == "soft_bounced" and r.recipient})
    if soft:
        limit = _setting(source.config, "soft_bounce_limit", SOFT_BOUNCE_LIMIT)
        days = _setting(source.config, "soft_bounce_days", SOFT_BOUNCE_DAYS)
        counts = conn.execute(
            _q(_SOFT_COUNTS, rt),
            {
                "recipients": soft,
                "since": now_utc() - timedelta(days=days),
                "channel": source.channel,
                "tenant": source.tenant_key,
            },
        )
        for r in counts:
            if r.n >= limit:
                wanted[(r.recipient, "bounce", None)] = None
    written = 0
    for recipient, reason, category in wanted:
        try:
            write_suppression(
                conn,
                channel=source.channel,
                recipient=recipient,
                reason=reason,
                tenant_key=source.tenant_key,
                category=category,
            )
        except ValidationError as exc:  # an address the provider reported that is none
            log.warning("provider event for an unusable recipient not suppressed: %s", exc)
            continue
        written += 1
    return written


def _setting(config: dict[str, Any], name: str, default: int) -> int:
    value = config.get(name)
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
    )


# --- the public operations ------------------------------------------------------------------

_EVENT_KEYS = (
    "type",
    "provider_message_id",
    "provider_event_id",
    "occurred_at",
    "recipient",
    "data",
)


def _event_from(item: Any, i: int) -> ProviderEvent:
    field = f"events.{i}"
    if isinstance(item, ProviderEvent):
        return item
    if not isinstance(item, dict):
        raise ValidationError.single(field, f"must be a dict, not {describe(item)}")
    errors = unknown_keys(item, _EVENT_KEYS, field)
    if errors:
        raise ValidationError(errors)
    kind = check_choice(item.get("type"), f"{field}.type", EVENT_TYPES)
    message_id = check_identifier(item.get("provider_message_id"), f"{field}.provider_message_id")
    event_id = check_identifier(item.get("provider_event_id"), f"{field}.provider_event_id")
    recipient = check_text(
        item.get("recipient"), f"{field}.recipient", max_length=500, optional=True
    )
    data = check_json(item.get("data"), f"{field}.data", max_size=10_000) or {}
    when = item.get("occurred_at")
    if when is not None and not isinstance(when, datetime):
        parsed = from_iso(when) if isinstance(when, str) else None
        if parsed is None:
            raise ValidationError.single(
                f"{field}.occurred_at", f"must be a datetime or ISO 8601 text, not {describe(when)}"
            )
        when = parsed
    if isinstance(when, datetime) and when.tzinfo is None:
        raise ValidationError.single(f"{field}.occurred_at", "must be timezone-aware")
    return ProviderEvent(
        provider_event_id=str(event_id),
        type=kind,
        provider_message_id=message_id_key(message_id),
        occurred_at=when or now_utc(),
        recipient=recipient,
        data=dict(data),
    )


def record_delivery_events(
    rt: Runtime, conn: Connection, provider: str, adapter_id: Any, events: Any
) -> DeliveryEventsResult:
    """Record events about sent messages that an app received itself (its own webhook
    endpoint): ``events`` are dicts with ``type`` (delivered, bounced, soft_bounced, complained,
    opened, clicked, unsubscribed, deferred, failed, sent), ``provider_message_id``,
    ``provider_event_id`` (unique per provider: a repeat is stored once), and optionally
    ``occurred_at``, ``recipient`` and ``data``. Matched, stored and acted on exactly as the
    ``/inbound`` webhooks are (suppressions for hard bounces, complaints, unsubscribes)."""
    check_identifier(provider, "provider")
    if not isinstance(events, list | tuple):
        raise ValidationError.single("events", f"must be a list of dicts, not {describe(events)}")
    if len(events) > MAX_EVENTS:
        raise ValidationError.single("events", f"at most {MAX_EVENTS:,} events per call")
    row = get_row(conn, A, adapter_id, "channel adapter")
    if row.provider != provider:
        raise ValidationError.single(
            "provider", f"the adapter's provider is {row.provider!r}, not {describe(provider)}"
        )
    parsed = [_event_from(item, i) for i, item in enumerate(events)]
    return record_events(rt, conn, source_of(row), parsed)


def list_delivery_events(rt: Runtime, conn: Connection, execution_id: Any) -> list[DeliveryEvent]:
    """What providers reported about an execution, oldest first."""
    rows = conn.execute(
        select(D)
        .where(D.c.execution_id == as_uuid(execution_id, "execution_id"))
        .order_by(D.c.occurred_at, D.c.inserted_at)
    )
    return [from_row(DeliveryEvent, r) for r in rows]
