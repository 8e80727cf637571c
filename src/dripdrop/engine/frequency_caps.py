"""Frequency caps: at most N messages per subscriber per period, across sequences.

A cap ``{"category": "marketing", "channel": "email", "limit": "2/1d", "over": "defer"}`` counts
the messages of every sequence of that category on that channel sent to one subscriber (the
enrollment's subscriber type and id, within its tenant) over a **sliding** period. Caps come from
the instance (``DripDrop(frequency_caps=[...])``) or a sequence version's config
(``frequency_caps``: a list that replaces the instance's, or ``False``: none); a step opts out
with ``"frequency_cap": False``. Steps of ``transactional`` sequences are never capped unless
the step sets ``"frequency_cap": True``. Without ``category`` a cap counts every category, without
``channel`` every channel that reaches a person (webhooks and in-app pub/sub reach systems).

State lives in PostgreSQL (``send_history``, migration 0014), one row per subscriber and cap: the
send times inside the period and the execution of each. A reservation is **one statement** on
that row (``RESERVE``), run in its own transaction, so the row's lock serialises every worker of
every machine for that statement only. It prunes entries older than the period and adds one for
the execution only if fewer than ``count`` are left — or moves the execution's own entry to now
when it already holds one (a retry, a delivery coming back after a rate-limit deferral or a
fence): an execution is counted at most once, and an entry leaves only by growing older than the
period, so no period ever holds more than ``count`` reservations. When the cap is full the
statement returns the oldest entry: the message is deferred to when it leaves the period
(``"over": "defer"``, the default) or skipped (``"over": "skip"``).

Times are the engine's clock (the one ``scheduled_for`` is on: a deferral is "oldest + period"),
not the database's as the rate limits' paces are; the row lock, not the clock, gives the race
freedom. Nothing is read or written when no cap applies.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from dripdrop.definitions.inputs import unknown_keys
from dripdrop.definitions.suppressions import check_category
from dripdrop.engine.quiet_hours import UNHELD_CHANNELS
from dripdrop.engine.rate_limits import parse_limit
from dripdrop.errors import ValidationError

KEYS = ("category", "channel", "limit", "over")
OVER = ("defer", "skip")
MAX_CAPS = 20
_EXAMPLE = '[{"category": "marketing", "channel": "email", "limit": "2/1d"}]'

# One statement per cap: prune, then add (or refresh) this execution's entry if it fits. The
# conflicting row is locked for the statement, so concurrent reservations of one subscriber
# and cap take turns; RETURNING tells whether this execution now holds an entry.
RESERVE = """
    INSERT INTO {s}.send_history AS h (key, sent_at, execution_ids, expires_at)
    VALUES (:key, ARRAY[CAST(:now AS timestamptz)], ARRAY[CAST(:id AS uuid)],
            CAST(:now AS timestamptz) + :period)
    ON CONFLICT (key) DO UPDATE SET (sent_at, execution_ids, expires_at) = (
        SELECT CASE WHEN w.fits THEN w.ts || CAST(:now AS timestamptz) ELSE w.ts END,
               CASE WHEN w.fits THEN w.ids || CAST(:id AS uuid) ELSE w.ids END,
               greatest(h.expires_at, CAST(:now AS timestamptz) + :period)
        FROM (
            SELECT coalesce(array_agg(u.t ORDER BY u.t) FILTER (WHERE u.id <> CAST(:id AS uuid)),
                            '{{}}') AS ts,
                   coalesce(array_agg(u.id ORDER BY u.t) FILTER (WHERE u.id <> CAST(:id AS uuid)),
                            '{{}}') AS ids,
                   coalesce(bool_or(u.id = CAST(:id AS uuid)), false)
                   OR count(*) FILTER (WHERE u.id <> CAST(:id AS uuid)) < :count AS fits
            FROM unnest(h.sent_at, h.execution_ids) AS u(t, id)
            WHERE u.t > CAST(:now AS timestamptz) - :period
        ) AS w
    )
    RETURNING CAST(:id AS uuid) = ANY(h.execution_ids) AS passed,
              (SELECT min(t) FROM unnest(h.sent_at) AS t) AS oldest
"""


@dataclass(frozen=True)
class Cap:
    category: str | None
    channel: str | None
    count: int
    period: timedelta
    limit: str  # as written: "2/1d"
    over: str  # "defer" | "skip"

    @property
    def label(self) -> str:
        """For people: ``frequency cap: 2/1d marketing email``."""
        what = " ".join(p for p in (self.category, self.channel) if p) or "all messages"
        return f"frequency cap: {self.limit} {what}"

    def applies(self, category: str | None, channel: str) -> bool:
        if self.category is not None and self.category != category:
            return False
        if self.channel is None:
            return channel not in UNHELD_CHANNELS
        return self.channel == channel

    def key(self, enrollment: Any) -> str:
        """The row of this cap for the enrollment's subscriber (tenant, type, id)."""
        return json.dumps(
            [
                enrollment.tenant_key,
                enrollment.subscriber_type,
                str(enrollment.subscriber_id),
                self.category,
                self.channel,
                self.count,
                int(self.period.total_seconds()),
            ],
            separators=(",", ":"),
        )


def _channels() -> set[str]:
    from dripdrop.channels.registry import all_specs

    return {spec.channel for spec in all_specs()}


def check_caps(
    value: Any, field: str, *, allow_off: bool = True
) -> list[dict[str, Any]] | bool | None:
    """Frequency caps as given by a caller: None (not set), False (none, where ``allow_off``)
    or a list of caps, normalised; ValidationError naming ``field.<i>.<key>`` otherwise."""
    if value is None or (allow_off and value is False):
        return value
    if not isinstance(value, list) or not value or len(value) > MAX_CAPS:
        off = " or false" if allow_off else ""
        raise ValidationError.single(
            field, f"must be a list of 1 to {MAX_CAPS} caps such as {_EXAMPLE}{off}"
        )
    errors: dict[str, list[str]] = {}
    out: list[dict[str, Any]] = []
    channels = _channels()
    for i, cap in enumerate(value):
        where = f"{field}.{i}"
        if not isinstance(cap, dict):
            errors.setdefault(where, []).append(f"must be a cap such as {_EXAMPLE[1:-1]}")
            continue
        errors.update(unknown_keys(cap, KEYS, where))
        for check, name in ((parse_limit, "limit"), (check_category, "category")):
            try:
                check(cap.get(name), f"{where}.{name}")
            except ValidationError as exc:
                for field_name, messages in exc.errors.items():
                    errors.setdefault(field_name, []).extend(messages)
        channel = cap.get("channel")
        if channel is not None and channel not in channels:
            errors.setdefault(f"{where}.channel", []).append(
                f"must be one of {', '.join(sorted(channels))} (or absent: every channel that "
                "reaches a person)"
            )
        over = cap.get("over", "defer")
        if over not in OVER:
            errors.setdefault(f"{where}.over", []).append(
                "must be 'defer' (wait until it fits) or 'skip'"
            )
        out.append({k: v for k, v in cap.items() if k in KEYS} | {"over": over})
    if errors:
        raise ValidationError(errors)
    for cap in out:
        cap["limit"] = str(cap["limit"]).replace(" ", "")
    return out


def parse_caps(configured: list[dict[str, Any]] | None) -> tuple[Cap, ...]:
    """Checked cap dicts (``check_caps``) as caps."""
    caps = []
    for c in configured or ():
        count, period = parse_limit(c["limit"], "frequency_caps.limit")
        caps.append(
            Cap(
                c.get("category"),
                c.get("channel"),
                count,
                period,
                c["limit"],
                c.get("over", "defer"),
            )
        )
    return tuple(caps)


def caps_for(step: Any, version: Any, default: tuple[Cap, ...] | None) -> list[Cap]:
    """The caps a step's message counts against (none: nothing is read or written)."""
    own = step.config.get("frequency_cap")
    if own is False:
        return []
    if version.category == "transactional" and own is not True:
        return []
    configured = version.config.get("frequency_caps")
    if configured is False:
        return []
    caps = default if configured is None else parse_caps(configured)
    return [c for c in caps or () if c.applies(version.category, step.channel)]


def reserve(
    rt: Any,
    conn: Connection,
    caps: list[Cap],
    enrollment: Any,
    execution_id: str,
    now: datetime,
) -> tuple[Cap, datetime] | None:
    """Reserve the execution's send under every cap (each statement its own transaction); None
    when it fits all, else the first full cap and when the message fits it (oldest + period).
    Caps reserved before a full one keep their entry: the execution holds it until it is sent
    (the entry then moves to that time) or it leaves the period — never more than the cap."""
    sql = text(RESERVE.format(s=f'"{rt.schema}"'))
    for cap in caps:
        passed, oldest = conn.execute(
            sql,
            {
                "key": cap.key(enrollment),
                "now": now,
                "id": execution_id,
                "period": cap.period,
                "count": cap.count,
            },
        ).one()
        if random.random() < 0.01:
            prune(rt, conn, now)
        if not passed:
            return cap, oldest + cap.period
    return None


def prune(rt: Any, conn: Connection, now: datetime) -> int:
    """Delete the rows whose every entry has left its period (they hold nothing); how many."""
    result = conn.execute(
        text(f'DELETE FROM "{rt.schema}".send_history WHERE expires_at < :now'), {"now": now}
    )
    return result.rowcount
