"""Analytics: a version's funnel, drop-off per step, delivery performance per channel and
provider, and the health of each channel adapter — all read from the hourly rollups that the
database keeps as executions finish (migration 0011), never from ``step_executions``.

Each answer is one query over ``analytics_hourly`` plus the few rows still in
``analytics_pending`` (a single statement, so a fold running meanwhile is seen whole or not at
all), and small lookups of the definitions (steps, versions, adapters). Times are rounded out
to whole hours: [since, until) covers every hour it touches.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, text

from dripdrop.db import models as m
from dripdrop.definitions.common import as_uuid, get_row, tenant_clause
from dripdrop.definitions.inputs import check_bool, check_tenant, describe
from dripdrop.definitions.sequences import get_sequence_row
from dripdrop.errors import NotFound, ValidationError
from dripdrop.records import (
    AdapterHealth,
    DeliveryPerformance,
    SequenceAnalytics,
    StepFunnel,
    VersionTotals,
)
from dripdrop.runtime import Runtime

#: The latency histogram's bucket bounds in ms (as migration 0011 writes them): bucket 0 holds
#: answers under 1 ms, bucket k those in [bounds[k-1], bounds[k]), the last one the rest.
LATENCY_BOUNDS_MS = m.ANALYTICS_LATENCY_BOUNDS_MS
#: Default ranges: a sequence's analytics cover 30 days, an adapter's health 24 hours.
SEQUENCE_RANGE = timedelta(days=30)
HEALTH_RANGE = timedelta(hours=24)
#: The longest range one question may cover.
MAX_RANGE = timedelta(days=366)

S, V, ST, A = (
    m.Sequence.__table__,
    m.SequenceVersion.__table__,
    m.Step.__table__,
    m.ChannelAdapter.__table__,
)

_MEASURES = ["count", "latency_count", "latency_sum_ms", *m.ANALYTICS_HISTOGRAM]


def _rollup_rows(series: str, where: str) -> str:
    """The rollup rows matching ``where`` in [:since, :until), summed per ``series``: whole UTC
    days [:day_from, :day_to) from the daily rollup, the hours around them from the hourly
    one, and the rows not folded yet (few: they are folded every 64) from the pending table.
    One statement: a fold running meanwhile is seen whole or not at all."""
    columns = f"{series}, {', '.join(_MEASURES)}"
    ranges = [
        ("analytics_daily", ":day_from", ":day_to"),
        ("analytics_hourly", ":since", ":day_from"),
        ("analytics_hourly", ":day_to", ":until"),
        ("analytics_pending", ":since", ":until"),
    ]
    parts = "\n    UNION ALL\n    ".join(
        f"SELECT {columns} FROM {{s}}.{table} WHERE {where} AND bucket >= {lo} AND bucket < {hi}"
        for table, lo, hi in ranges
    )
    sums = ", ".join(f"sum({c}) AS {c}" for c in _MEASURES)
    return f"SELECT {series}, {sums}\nFROM (\n    {parts}\n) AS r\nGROUP BY {series}"


_VERSION_ROWS = _rollup_rows(
    "sequence_version_id, step_id, adapter_id, channel, metric",
    "sequence_version_id = ANY(:versions)",
)
_ADAPTER_ROWS = _rollup_rows("adapter_id, metric", "adapter_id = ANY(:adapters)")


def _sql(sql: str, rt: Runtime) -> Any:
    return text(sql.format(s=f'"{rt.schema}"'))


def _range_params(start: datetime, end: datetime) -> dict[str, datetime]:
    """[start, end) as the whole UTC days inside it and the hours around them."""
    day_from = start.astimezone(UTC).replace(hour=0)
    if day_from < start:
        day_from += timedelta(days=1)
    day_to = end.astimezone(UTC).replace(hour=0)
    if day_from >= day_to:  # no whole day: hours only
        day_from = day_to = start
    return {"since": start, "until": end, "day_from": day_from, "day_to": day_to}


# --- inputs -----------------------------------------------------------------------------------


def _check_time(value: Any, field_name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError.single(
            field_name, f"must be a datetime with a timezone, not {describe(value)}"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError.single(field_name, "must have a timezone (an aware datetime)")
    return value


def hour_floor(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def time_range(
    rt: Runtime, since: Any, until: Any, default: timedelta
) -> tuple[datetime, datetime]:
    """[since, until) rounded out to whole hours; until defaults to now (its hour included),
    since to until - ``default``."""
    start, end = _check_time(since, "since"), _check_time(until, "until")
    if end is None:
        end = hour_floor(rt.now()) + timedelta(hours=1)
    start = start or end - default
    if start >= end:
        raise ValidationError.single("since", "must be before until")
    if end - start > MAX_RANGE:
        raise ValidationError.single("since", f"the range is at most {MAX_RANGE.days} days")
    rounded_end = hour_floor(end)
    if rounded_end < end:
        rounded_end += timedelta(hours=1)
    return hour_floor(start), rounded_end


def _sequence(conn: Connection, sequence_id_or_key: Any, tenant_key: str | None) -> Any:
    """The sequence of an id (UUID or its text) or a key; another tenant's is NotFound."""
    field_name = "sequence_id_or_key"
    value = sequence_id_or_key
    as_id: uuid.UUID | None = None
    if isinstance(value, uuid.UUID):
        as_id = value
    elif isinstance(value, str) and len(value) == 36:
        try:
            as_id = uuid.UUID(value)
        except ValueError:
            as_id = None
    if as_id is None:
        if not isinstance(value, str):
            raise ValidationError.single(
                field_name, f"must be a sequence id or key, not {describe(value)}"
            )
        return get_sequence_row(conn, value, tenant_key, field_name)
    check_tenant(tenant_key)
    row = conn.execute(select(S).where(S.c.id == as_id)).first()
    if row is None or (tenant_key is not None and row.tenant_key != tenant_key):
        raise NotFound(f"sequence {value} not found")
    return row


# --- sums of rollup rows ------------------------------------------------------------------------


@dataclass
class _Tally:
    """Summed rollup rows of one series (a step, a channel, an adapter …)."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    latency_count: int = 0
    latency_sum_ms: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))

    def add(self, row: Any) -> None:
        self.counts[row.metric] += int(row.count)
        if row.metric == "sent" and row.latency_count:
            self.latency_count += int(row.latency_count)
            self.latency_sum_ms += int(row.latency_sum_ms)
            for i, column in enumerate(m.ANALYTICS_HISTOGRAM):
                self.buckets[i] += int(getattr(row, column))

    def delivery(self) -> dict[str, int]:
        return {
            k.removeprefix("delivery."): v
            for k, v in self.counts.items()
            if k.startswith("delivery.")
        }

    def performance(self) -> dict[str, Any]:
        c = self.counts
        sends = c["sent"] + c["failed"] + c["retried"]
        return {
            "sends": sends,
            "sent": c["sent"],
            "failed": c["failed"],
            "retried": c["retried"],
            "error_rate": (c["failed"] + c["retried"]) / sends if sends else None,
            "avg_ms": self.latency_sum_ms / self.latency_count if self.latency_count else None,
            "p50_ms": percentile(self.buckets, 0.50),
            "p95_ms": percentile(self.buckets, 0.95),
            "delivery": self.delivery(),
        }


def percentile(buckets: Iterable[int], q: float) -> float | None:
    """The ``q`` quantile (0 to 1) of a latency histogram, interpolated linearly inside its bucket
    (the open last bucket answers its lower bound)."""
    counts = list(buckets)
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    edges = (0, *LATENCY_BOUNDS_MS)
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            lo = edges[i]
            if i == len(LATENCY_BOUNDS_MS):
                return float(lo)
            hi = LATENCY_BOUNDS_MS[i]
            return round(lo + (hi - lo) * (rank - seen) / n, 1)
        seen += n
    return float(edges[-1])


# --- operations ---------------------------------------------------------------------------------


def sequence_analytics(
    rt: Runtime,
    conn: Connection,
    sequence_id_or_key: Any,
    version_id: Any = None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    tenant_key: str | None = None,
) -> SequenceAnalytics:
    """A version's funnel (enrolled → each step sent/skipped/failed → completed / exited),
    drop-off per step and delivery performance per channel and per provider over
    [since, until) (the last 30 days by default). ``version_id`` defaults to the active
    version (else the newest); ``versions`` lists every version's enrollments."""
    seq = _sequence(conn, sequence_id_or_key, tenant_key)
    start, end = time_range(rt, since, until, SEQUENCE_RANGE)
    versions = list(conn.execute(select(V).where(V.c.sequence_id == seq.id).order_by(V.c.version)))
    chosen = _chosen_version(versions, version_id)
    rows = list(
        conn.execute(
            _sql(_VERSION_ROWS, rt),
            {"versions": [v.id for v in versions], **_range_params(start, end)},
        )
    )
    per_version: dict[Any, _Tally] = defaultdict(_Tally)
    for r in rows:
        if r.step_id is None:
            per_version[r.sequence_version_id].add(r)
    totals = [
        VersionTotals(
            version_id=v.id,
            version=v.version,
            active=v.active,
            enrolled=per_version[v.id].counts["enrolled"],
            completed=per_version[v.id].counts["completed"],
            exited=per_version[v.id].counts["exited"],
            cancelled=per_version[v.id].counts["cancelled"],
        )
        for v in versions
    ]
    if chosen is None:
        return SequenceAnalytics(
            sequence_id=seq.id,
            sequence_key=seq.key,
            version_id=None,
            version=None,
            since=start,
            until=end,
            versions=totals,
        )
    mine = [r for r in rows if r.sequence_version_id == chosen.id]
    ends = per_version[chosen.id].counts
    steps = _funnel(conn, chosen.id, mine, ends["enrolled"])
    return SequenceAnalytics(
        sequence_id=seq.id,
        sequence_key=seq.key,
        version_id=chosen.id,
        version=chosen.version,
        since=start,
        until=end,
        enrolled=ends["enrolled"],
        completed=ends["completed"],
        exited=ends["exited"],
        cancelled=ends["cancelled"],
        restarted=ends["restarted"],
        converted=ends["converted"],
        ended_by={k.removeprefix("ended:"): v for k, v in ends.items() if k.startswith("ended:")},
        steps=steps,
        channels=_by_channel(mine),
        providers=_by_adapter(rt, conn, mine),
        versions=totals,
    )


def _chosen_version(versions: list[Any], version_id: Any) -> Any:
    if version_id is None:
        active = [v for v in versions if v.active]
        return active[0] if active else (versions[-1] if versions else None)
    wanted = as_uuid(version_id, "version_id")
    for v in versions:
        if v.id == wanted:
            return v
    raise NotFound(f"version {version_id} of this sequence not found")


def _funnel(conn: Connection, version_id: Any, rows: list[Any], enrolled: int) -> list[StepFunnel]:
    """Each active step in position order, with what entered it (the stage before) and what
    got past it (sent, skipped or failed)."""
    per_step: dict[Any, _Tally] = defaultdict(_Tally)
    for r in rows:
        if r.step_id is not None:
            per_step[r.step_id].add(r)
    steps = conn.execute(
        select(ST.c.id, ST.c.key, ST.c.name, ST.c.position, ST.c.channel)
        .where(ST.c.sequence_version_id == version_id, ST.c.active)
        .order_by(ST.c.position, ST.c.id)
    )
    out: list[StepFunnel] = []
    entered = enrolled
    for st in steps:
        c = per_step[st.id].counts
        reached = c["sent"] + c["skipped"] + c["failed"]
        drop = entered - reached
        out.append(
            StepFunnel(
                step_id=st.id,
                key=st.key,
                name=st.name,
                position=st.position,
                channel=st.channel,
                entered=entered,
                reached=reached,
                sent=c["sent"],
                skipped=c["skipped"],
                failed=c["failed"],
                cancelled=c["cancelled"],
                retried=c["retried"],
                drop_off=drop,
                drop_off_rate=round(drop / entered, 4) if entered > 0 else None,
                delivery=per_step[st.id].delivery(),
            )
        )
        entered = reached
    return out


def _by_channel(rows: list[Any]) -> list[DeliveryPerformance]:
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    for r in rows:
        if r.step_id is not None and r.channel is not None:
            tallies[r.channel].add(r)
    return [
        DeliveryPerformance(channel=ch, skipped=t.counts["skipped"], **t.performance())
        for ch, t in sorted(tallies.items())
    ]


def _by_adapter(rt: Runtime, conn: Connection, rows: list[Any]) -> list[DeliveryPerformance]:
    """Per adapter (named with its provider); rows without an adapter (skipped before one was
    chosen) are left out."""
    tallies: dict[Any, _Tally] = defaultdict(_Tally)
    channels: dict[Any, str | None] = {}
    for r in rows:
        if r.step_id is not None and r.adapter_id is not None:
            tallies[r.adapter_id].add(r)
            channels[r.adapter_id] = r.channel
    if not tallies:
        return []
    adapters = {
        a.id: a
        for a in conn.execute(
            select(A.c.id, A.c.name, A.c.provider, A.c.channel).where(A.c.id.in_(list(tallies)))
        )
    }
    out = []
    for adapter_id, t in tallies.items():
        a = adapters.get(adapter_id)
        out.append(
            DeliveryPerformance(
                channel=a.channel if a else channels[adapter_id],
                provider=a.provider if a else None,
                adapter_id=adapter_id,
                adapter_name=a.name if a else None,  # None: the adapter was deleted since
                skipped=t.counts["skipped"],
                **t.performance(),
            )
        )
    return sorted(out, key=lambda p: (p.channel or "", p.provider or "", p.adapter_name or ""))


def adapter_health(
    rt: Runtime,
    conn: Connection,
    adapter_id: Any = None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    tenant_key: str | None = None,
    every_tenant: bool = False,
) -> list[AdapterHealth]:
    """Each channel adapter's sends, error rate and p50/p95 latency over [since, until)
    (the last 24 hours by default): the tenant's adapters (``every_tenant``: all of them), or
    just ``adapter_id``'s."""
    check_tenant(tenant_key)
    check_bool(every_tenant, "every_tenant")
    start, end = time_range(rt, since, until, HEALTH_RANGE)
    if adapter_id is not None:
        row = get_row(conn, A, adapter_id, "channel adapter")
        if not every_tenant and row.tenant_key != tenant_key:
            raise NotFound(f"channel adapter {adapter_id} not found")
        adapters = [row]
    else:
        stmt = select(A).order_by(A.c.channel, A.c.name, A.c.id)
        if not every_tenant:
            stmt = stmt.where(tenant_clause(A, tenant_key))
        adapters = list(conn.execute(stmt))
    if not adapters:
        return []
    tallies: dict[Any, _Tally] = defaultdict(_Tally)
    for r in conn.execute(
        _sql(_ADAPTER_ROWS, rt),
        {"adapters": [a.id for a in adapters], **_range_params(start, end)},
    ):
        tallies[r.adapter_id].add(r)
    return [
        AdapterHealth(
            adapter_id=a.id,
            name=a.name,
            channel=a.channel,
            provider=a.provider,
            active=a.active,
            since=start,
            until=end,
            tenant_key=a.tenant_key,
            **tallies[a.id].performance(),
        )
        for a in adapters
    ]


def rebuild_analytics(rt: Runtime, conn: Connection) -> int:
    """Recompute every rollup from the base tables (after restoring data by hand, say); the
    number of hourly rows written. Writers go on meanwhile and nothing is counted twice."""
    return int(conn.execute(text(f'SELECT "{rt.schema}".analytics_rebuild()')).scalar_one())


__all__ = ["adapter_health", "percentile", "rebuild_analytics", "sequence_analytics"]
