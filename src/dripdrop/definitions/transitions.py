"""Transitions: the edges of a version's graph. After a step finishes (sent or skipped), its
transitions are tried in ascending ``priority``; the first whose conditions hold decides the
next step (``to_step_id=None`` completes). Conditions attach with
``create_condition(transition_id=...)``."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from dripdrop.db import models as m
from dripdrop.definitions.common import as_uuid, get_row, raise_if, touch
from dripdrop.definitions.flow import CONDITION_MODES, loop_message, waitless_cycle
from dripdrop.definitions.inputs import INT32_MAX, check_all, integer, text
from dripdrop.engine.defs import load_version
from dripdrop.errors import ValidationError
from dripdrop.records import BranchCount, Transition, from_row
from dripdrop.runtime import Runtime

TR = m.Transition.__table__
ST = m.Step.__table__
V = m.SequenceVersion.__table__
X = m.StepExecution.__table__

TRANSITION_FIELDS = {
    "from_step_id": lambda v, f: as_uuid(v, f),
    "to_step_id": lambda v, f: None if v is None else as_uuid(v, f),
    "condition_mode": text(8),
    "priority": integer(-INT32_MAX, INT32_MAX),
}


def _check(
    conn: Connection,
    version_id: uuid.UUID,
    from_step_id: Any,
    to_step_id: Any,
    condition_mode: Any,
    *,
    replacing: uuid.UUID | None = None,
) -> None:
    """Both ends are steps of this version, the mode is known, and the graph with this edge
    has no loop that can repeat without waiting."""
    errors: dict[str, list[str]] = {}
    if condition_mode not in CONDITION_MODES:
        errors["condition_mode"] = [f"must be one of {', '.join(CONDITION_MODES)}"]
    for field, sid in (("from_step_id", from_step_id), ("to_step_id", to_step_id)):
        if sid is None:
            continue
        row = conn.execute(select(ST.c.sequence_version_id).where(ST.c.id == sid)).first()
        if row is None:
            errors[field] = [f"step {sid} does not exist"]
        elif row.sequence_version_id != version_id:
            errors[field] = ["the step belongs to another version (targets stay in the version)"]
    raise_if(errors)
    version = load_version(conn, version_id)
    if replacing is not None:  # judge the graph with the changed edge instead of the old one
        version = replace(
            version,
            transitions={
                k: tuple(t for t in ts if t.id != replacing)
                for k, ts in version.transitions.items()
            },
        )
    edge = (from_step_id, to_step_id)
    cycle = waitless_cycle(version, [edge])
    if cycle:
        raise ValidationError.single("to_step_id", loop_message(cycle))


def create_transition(
    rt: Runtime,
    conn: Connection,
    version_id: Any,
    *,
    from_step_id: Any = None,
    to_step_id: Any = None,
    condition_mode: str = "always",
    priority: int = 0,
) -> Transition:
    """Add an edge from ``from_step_id`` to ``to_step_id`` (None: complete the enrollment).
    ``condition_mode``: ``always`` (no conditions), ``all`` or ``any`` of its conditions."""
    version = get_row(conn, V, version_id, "sequence version", lock=True)
    check_all(
        dict(
            from_step_id=from_step_id,
            to_step_id=to_step_id,
            condition_mode=condition_mode,
            priority=priority,
        ),
        TRANSITION_FIELDS,
    )
    src, dst = as_uuid(from_step_id), (as_uuid(to_step_id) if to_step_id is not None else None)
    _check(conn, version.id, src, dst, condition_mode)
    row = conn.execute(
        insert(TR)
        .values(
            id=uuid.uuid4(),
            sequence_version_id=version.id,
            from_step_id=src,
            to_step_id=dst,
            condition_mode=condition_mode,
            priority=priority,
            tenant_key=version.tenant_key,
        )
        .returning(TR)
    ).one()
    rt.defs.clear()
    return from_row(Transition, row)


def update_transition(
    rt: Runtime, conn: Connection, transition_id: Any, **changes: Any
) -> Transition:
    """Change a transition's target, mode or priority (re-checked as a whole)."""
    row = get_row(conn, TR, transition_id, "transition", lock=True)
    allowed = {"to_step_id", "condition_mode", "priority"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({k: ["cannot be changed"] for k in unknown})
    check_all(changes, TRANSITION_FIELDS)
    if "to_step_id" in changes and changes["to_step_id"] is not None:
        changes["to_step_id"] = as_uuid(changes["to_step_id"])
    merged = {k: changes.get(k, getattr(row, k)) for k in allowed}
    _check(
        conn,
        row.sequence_version_id,
        row.from_step_id,
        merged["to_step_id"],
        merged["condition_mode"],
        replacing=row.id,
    )
    rt.defs.clear()
    return from_row(Transition, touch(conn, TR, row.id, rt.now(), **changes))


def delete_transition(rt: Runtime, conn: Connection, transition_id: Any) -> None:
    """Remove a transition and its conditions."""
    row = get_row(conn, TR, transition_id, "transition")
    conn.execute(delete(TR).where(TR.c.id == row.id))
    rt.defs.clear()


def get_transition(rt: Runtime, conn: Connection, transition_id: Any) -> Transition:
    """One transition by id."""
    return from_row(Transition, get_row(conn, TR, transition_id, "transition"))


def list_transitions(rt: Runtime, conn: Connection, version_id: Any) -> list[Transition]:
    """A version's transitions, by source step position, then priority."""
    rows = conn.execute(
        select(TR)
        .join(ST, ST.c.id == TR.c.from_step_id)
        .where(TR.c.sequence_version_id == as_uuid(version_id, "version_id"))
        .order_by(ST.c.position, TR.c.priority, TR.c.inserted_at)
    )
    return [from_row(Transition, r) for r in rows]


def split_counts(rt: Runtime, conn: Connection, step_id: Any) -> list[BranchCount]:
    """How many enrollments a split step sent down each branch (``holdout`` included)."""
    step = get_row(conn, ST, step_id, "step")
    rows = conn.execute(
        select(X.c.branch, func.count(func.distinct(X.c.enrollment_id)).label("n"))
        .where(X.c.step_id == step.id, X.c.branch.is_not(None))
        .group_by(X.c.branch)
        .order_by(X.c.branch)
    )
    return [BranchCount(step_id=step.id, branch=r.branch, count=r.n) for r in rows]
