"""Rate limits shared by every worker and machine, kept in PostgreSQL.

Limits are written ``"100/1s"``, ``"600/1m"``, ``"50000/1d"`` (count / period; units s, m, h, d;
``"10/s"`` means one period). They come from an adapter's config (``rate_limit``: one limit or
a list) and from the instance, per recipient domain (``DripDrop(domain_rate_limits={"gmail.com":
"20/1s"})``).

* A limit of a minute or less is a **pace**: each send reserves the next free slot of its key
  (``send_pacing``), which moves on by period/limit; the send waits for its slot in process when
  that is close, so sends are spaced evenly and no window of the period holds more than the
  limit, across any number of workers.
* A longer limit is a **budget** per fixed window (``send_counts``): a send that does not fit
  its window is deferred to the next one.

Over a limit, a message is deferred (visible on the execution: ``error_message`` says which
limit), never dropped. Nothing is read or written when no limit applies.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from dripdrop.errors import ValidationError

_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Limits whose period is at most this long are paced; longer ones are budgets per window.
PACE_UP_TO = timedelta(minutes=1)
#: A send waits for its slot in process (holding its claim, well within the claim's lease)
#: when the slot is this close; further away, the execution is deferred to its slot.
MAX_WAIT = timedelta(seconds=5)
#: Slots are spaced 4 % wider than period/limit: jitter on the way to the provider (a send
#: a few milliseconds late, the next on time) then never puts limit + 1 sends in one period.
PACE_MARGIN = 1.04


@dataclass(frozen=True)
class Limit:
    key: str  # what is limited: "adapter:<id>" or "domain:<name>"
    label: str  # for people: "adapter 'Mailgun' 100/1s"
    count: int
    period: timedelta

    @property
    def paced(self) -> bool:
        return self.period <= PACE_UP_TO


def parse_limit(value: Any, field: str) -> tuple[int, timedelta]:
    """``"100/1s"`` → (100, 1 second); ValidationError naming ``field`` otherwise."""
    match = _LIMIT.match(value) if isinstance(value, str) else None
    count = int(match.group(1)) if match else 0
    amount = int(match.group(2) or 1) if match else 0
    if not match or count < 1 or amount < 1 or count > 1_000_000 or amount > 10_000:
        raise ValidationError.single(
            field, 'must be a rate such as "100/1s", "600/1m", "50000/1d" (count/period)'
        )
    return count, timedelta(seconds=amount * _UNIT_SECONDS[match.group(3)])


def check_rate_limits(value: Any, field: str) -> list[str] | None:
    """An adapter's ``rate_limit`` (one limit or a list of them), normalised to a list."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValidationError.single(field, "must hold at least one rate such as '100/1s'")
    for i, item in enumerate(items):
        parse_limit(item, f"{field}.{i}" if isinstance(value, list) else field)
    return [str(item).replace(" ", "") for item in items]


def check_domain_limits(value: Any) -> dict[str, str]:
    """``DripDrop(domain_rate_limits=...)``: recipient domain → one limit."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError.single(
            "domain_rate_limits", 'must map recipient domains to rates: {"gmail.com": "20/1s"}'
        )
    out: dict[str, str] = {}
    for domain, rate in value.items():
        if not isinstance(domain, str) or "." not in domain or "@" in domain:
            raise ValidationError.single(
                "domain_rate_limits", f"{domain!r} is not a domain such as 'gmail.com'"
            )
        parse_limit(rate, f"domain_rate_limits.{domain}")
        out[domain.strip().lower()] = rate
    return out


def limits_for(adapter: Any, recipient: str | None, domain_limits: dict[str, str]) -> list[Limit]:
    """The limits a send through ``adapter`` to ``recipient`` must respect."""
    out = []
    for rate in (adapter.config or {}).get("rate_limit") or ():
        count, period = parse_limit(rate, "rate_limit")
        out.append(
            Limit(f"adapter:{adapter.id}:{rate}", f"adapter {adapter.name!r} {rate}", count, period)
        )
    if domain_limits and recipient and "@" in recipient:
        domain = recipient.rpartition("@")[2].strip().lower()
        rate = domain_limits.get(domain)
        if rate is not None:
            count, period = parse_limit(rate, "domain_rate_limits")
            out.append(Limit(f"domain:{domain}:{rate}", f"domain {domain} {rate}", count, period))
    return out


def slack(limits: list[Limit]) -> float:
    """How late (seconds) a send may wake after its slot and still use it: one spacing of
    the tightest pace."""
    paced = [lim.period.total_seconds() / lim.count for lim in limits if lim.paced]
    return min(paced) if paced else float("inf")


def reserve(rt: Any, conn: Connection, limits: list[Limit], now: datetime) -> tuple[timedelta, str]:
    """Reserve a send under every limit; how long it must wait and the limit that decided it
    (each statement its own transaction, so other workers see it at once).

    Paces are kept on the database's clock, the one clock every worker shares: a slot handed
    out against a worker's own reading, taken a moment earlier, would already be in the past
    and let two sends go together."""
    s = f'"{rt.schema}"'
    wait, why = timedelta(0), ""
    for limit in limits:
        if limit.paced:
            interval = limit.period * PACE_MARGIN / limit.count
            until = conn.execute(
                text(f"""
                    INSERT INTO {s}.send_pacing AS p (key, next_at)
                    VALUES (:key, clock_timestamp() + :interval)
                    ON CONFLICT (key) DO UPDATE
                        SET next_at = greatest(p.next_at, clock_timestamp()) + :interval
                    RETURNING next_at - :interval - clock_timestamp()
                """),
                {"key": limit.key, "interval": interval},
            ).scalar_one()
        else:
            seconds = int(limit.period.total_seconds())
            start = datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, now.tzinfo)
            used = conn.execute(
                text(f"""
                    INSERT INTO {s}.send_counts AS c (key, window_start, count)
                    VALUES (:key, :start, 1)
                    ON CONFLICT (key, window_start) DO UPDATE SET count = c.count + 1
                    RETURNING count
                """),
                {"key": limit.key, "start": start},
            ).scalar_one()
            until = start + limit.period - now if used > limit.count else timedelta(0)
            if random.random() < 0.01:  # windows older than the longest period are done
                conn.execute(
                    text(f"DELETE FROM {s}.send_counts WHERE window_start < :old"),
                    {"old": now - timedelta(days=8)},
                )
        if until > wait:
            wait, why = until, limit.label
    return wait, why
