"""``simulate``: the timeline a subscriber would get, computed by the real engine on a virtual
clock inside a transaction that is rolled back — nothing is sent and nothing is kept."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from dripdrop.db import models as m
from dripdrop.definitions.common import as_uuid, raise_if
from dripdrop.definitions.inputs import add, check_identifier, check_json, gather
from dripdrop.engine.enrollments import enroll
from dripdrop.engine.events import track_event
from dripdrop.errors import NotFound, ValidationError
from dripdrop.testing.clock import FakeClock

X = m.StepExecution.__table__
V = m.SequenceVersion.__table__
S = m.Sequence.__table__


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that would happen: a step sent/skipped/failed/deferred/retried, or an event."""

    at: datetime
    kind: str
    step_key: str | None = None
    channel: str | None = None
    detail: str | None = None
    recipient: str | None = None
    payload: Any = None
    # Flow control: where the chain went next and why (a transition, a split branch), the
    # branch a split chose, and which occurrence of a recurring step this is.
    next: str | None = None
    branch: str | None = None
    occurrence: int | None = None

    def __str__(self) -> str:
        when = self.at.strftime("%Y-%m-%d %H:%M %Z")
        what = f"{self.step_key} ({self.channel})" if self.step_key else "event"
        extra = f" — {self.detail}" if self.detail else ""
        if self.occurrence:
            extra += f" — occurrence {self.occurrence}"
        if self.next and self.next != self.detail:
            extra += f" — next: {self.next}"
        to = f" → {self.recipient}" if self.recipient else ""
        return f"{when}  {what:<32} {self.kind}{to}{extra}"


@dataclass
class Timeline:
    """The simulated timeline; iterate it, or read ``entries`` / ``final_state``."""

    entries: list[TimelineEntry] = field(default_factory=list)
    final_state: str = "active"

    def __iter__(self) -> Any:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def steps(self, kind: str | None = None) -> list[str]:
        """Step keys in order (optionally only those with this outcome kind)."""
        return [e.step_key for e in self.entries if e.step_key and (kind is None or e.kind == kind)]


class _SimRuntime:
    """The instance's runtime seen through a virtual clock and a private definition cache."""

    def __init__(self, rt: Any, clock: FakeClock) -> None:
        from dripdrop.engine.defs import DefinitionCache

        self._rt = rt
        self.clock = clock
        self.defs = DefinitionCache(ttl=3600)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rt, name)

    def now(self) -> datetime:
        return self.clock()


def _note_goal(conn: Any, enrollment_id: Any, timeline: Timeline, at: datetime) -> None:
    """A ``goal`` entry when the event just tracked reached the version's goal."""
    E = m.Enrollment.__table__
    row = conn.execute(
        select(E.c.converted_at, E.c.exit_reason).where(E.c.id == enrollment_id)
    ).one()
    if row.converted_at == at and not any(e.kind == "goal" for e in timeline.entries):
        ends = "the enrollment ends" if row.exit_reason == "goal" else "the enrollment goes on"
        timeline.entries.append(TimelineEntry(at=at, kind="goal", detail=f"goal reached: {ends}"))


#: How far a simulation may look ahead (default 30 days).
MAX_UNTIL = timedelta(days=3_660)


def _check_options(events: Any, until: Any, start: Any, hook_values: Any) -> timedelta:
    """simulate's own arguments (the enrollment's are checked by enroll); returns ``until``."""
    errors: dict[str, list[str]] = {}
    if until is None:
        until = timedelta(days=30)
    elif not isinstance(until, timedelta) or not timedelta(0) < until <= MAX_UNTIL:
        add(errors, "until", f"must be a timedelta above 0 and at most {MAX_UNTIL.days} days")
    if start is not None and (not isinstance(start, datetime) or start.tzinfo is None):
        add(errors, "start", "must be a timezone-aware datetime (or None for now)")
    if events is not None:
        if not isinstance(events, list | tuple):
            add(errors, "events", "must be a list of (timedelta, event_key, event_data) tuples")
            events = ()
        for i, event in enumerate(events):
            field = f"events[{i}]"
            if not isinstance(event, list | tuple) or len(event) not in (2, 3):
                add(errors, field, "must be (timedelta, event_key) or (timedelta, key, data)")
                continue
            offset, key, *rest = event
            if not isinstance(offset, timedelta) or not timedelta(0) <= offset <= MAX_UNTIL:
                add(errors, field, f"the offset must be a timedelta of 0 to {MAX_UNTIL.days} days")
            gather(errors, lambda v, f: check_identifier(v, f), key, f"{field}.event_key")
            gather(errors, check_json, rest[0] if rest else None, f"{field}.event_data")
    gather(errors, check_json, hook_values, "hook_values")
    raise_if(errors)
    return until


def _run_version(
    conn: Connection, sequence_key: str, tenant_key: str | None, version_id: Any
) -> None:
    """Inside simulate's rolled-back transaction: make ``version_id`` (a draft, an old version)
    the sequence's active version and the sequence active, so the enrollment starts on it.

    Only rows whose flag changes are written (simulating the active version of an active
    sequence writes nothing). The rows written stay locked until the rollback: a concurrent
    ``activate_version`` of that sequence waits for the simulation; enrolling does not (its
    foreign-key checks take a lock that does not conflict with these updates)."""
    from dripdrop.definitions.sequences import get_sequence_row

    vid = as_uuid(version_id, "version_id")
    seq = get_sequence_row(conn, sequence_key, tenant_key, "sequence_key")
    row = conn.execute(select(V.c.sequence_id).where(V.c.id == vid)).first()
    if row is None:
        raise NotFound(f"version_id: sequence version {vid} not found")
    if row.sequence_id != seq.id:
        raise ValidationError.single(
            "version_id", f"version {vid} is not a version of sequence {sequence_key!r}"
        )
    conn.execute(
        update(V).where(V.c.sequence_id == seq.id, V.c.active, V.c.id != vid).values(active=False)
    )
    conn.execute(update(V).where(V.c.id == vid, ~V.c.active).values(active=True))
    conn.execute(update(S).where(S.c.id == seq.id, ~S.c.active).values(active=True))


def simulate(
    rt: Any,
    sequence_key: str,
    data: dict[str, Any] | None = None,
    events: list[tuple[timedelta, str, dict[str, Any] | None]] | None = None,
    until: timedelta | None = None,
    *,
    start: datetime | None = None,
    tenant_key: str | None = None,
    hook_values: dict[str, Any] | None = None,
    subscriber: dict[str, Any] | None = None,
    version_id: uuid.UUID | str | None = None,
) -> Timeline:
    """Run the sequence for a virtual subscriber from ``start`` (default: now) to
    ``start + until``; ``events`` are (offset, key, data). ``hook_values`` overrides hooks by name
    (HTTP hooks without an override are called for real; they should be side-effect free).
    ``subscriber`` lets Python hooks see a real subscriber id (its real enrollment, if any, is
    untouched: everything is rolled back). ``version_id`` runs that version of the sequence (a
    draft, an older one) instead of the active one, even when the sequence is archived: NotFound
    for an unknown version, a ValidationError naming ``version_id`` for another sequence's."""
    from dripdrop.worker.db import ConnectionDb
    from dripdrop.worker.runner import drain
    from dripdrop.worker.services import Services

    until = _check_options(events, until, start, hook_values)
    clock = FakeClock(start or rt.now())
    sim = _SimRuntime(rt, clock)
    begin = clock()
    end = begin + until
    pending = sorted(
        ((begin + e[0], e[1], (e[2] if len(e) > 2 else None) or {}) for e in events or []),
        key=lambda e: e[0],
    )
    timeline = Timeline()
    with rt.engine.connect() as conn:
        outer = conn.begin()
        try:
            if version_id is not None:
                _run_version(conn, sequence_key, tenant_key, version_id)
            who = subscriber or {"type": "__simulation__", "id": uuid.uuid4().hex}
            enrollment = enroll(
                sim,
                conn,
                sequence_key,
                who,
                data or {},
                on_conflict="restart",
                tenant_key=tenant_key,
            )
            db = ConnectionDb(sim, conn)

            def record(o: Any) -> None:
                step = o.job.step
                timeline.entries.append(
                    TimelineEntry(
                        at=clock(),
                        kind=o.kind,
                        step_key=step.key if step else None,
                        channel=o.job.execution.channel,
                        detail=o.error_message,
                        recipient=o.recipient,
                        payload=o.payload,
                        next=o.route.why if o.route is not None else None,
                        branch=o.branch,
                        occurrence=getattr(o.job.execution, "occurrence", None),
                    )
                )

            async def run() -> None:
                services = Services(sim, db, dry_run=True)
                if hook_values:
                    services.overrides = dict(hook_values)
                try:
                    while True:
                        nxt = conn.execute(
                            select(X.c.scheduled_for)
                            .where(
                                X.c.enrollment_id == enrollment.id,
                                X.c.state == "scheduled",
                                X.c.held.is_(False),
                                X.c.scheduled_for.is_not(None),
                            )
                            .order_by(X.c.scheduled_for)
                            .limit(1)
                        ).scalar()
                        candidates = [t for t in (nxt, pending[0][0] if pending else None) if t]
                        if not candidates or min(candidates) > end:
                            break
                        clock.set(max(min(candidates), clock()))
                        while pending and pending[0][0] <= clock():
                            _, key, ev = pending.pop(0)
                            track_event(sim, conn, enrollment.id, key, ev)
                            timeline.entries.append(
                                TimelineEntry(at=clock(), kind="event", detail=key, payload=ev)
                            )
                            _note_goal(conn, enrollment.id, timeline, clock())
                        await drain(
                            sim,
                            db,
                            services,
                            enrollment_id=enrollment.id,
                            on_outcome=record,
                            lanes=1,
                        )
                finally:
                    await services.aclose()

            asyncio.run(run())
            timeline.final_state = conn.execute(
                select(m.Enrollment.__table__.c.state).where(
                    m.Enrollment.__table__.c.id == enrollment.id
                )
            ).scalar_one()
        finally:
            outer.rollback()
    return timeline
