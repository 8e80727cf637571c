"""Whether a sequence version can deliver: the problems that would otherwise fail every send.

Steps and adapters may be created in any order (the seed creates a version with ``active=True``,
then its steps, then adapters), so nothing here refuses a definition. ``check_version`` lists
what is missing; ``activate_version`` refuses a version with problems unless ``force=True``; the
worker logs the problems of every active version when it starts.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from typing import Any

from sqlalchemy import Connection, select

from dripdrop.db import models as m
from dripdrop.definitions.common import get_row
from dripdrop.definitions.flow import SPLIT, graph_problems
from dripdrop.engine.defs import AdapterSet, StepDef, VersionDef, load_adapters, load_version
from dripdrop.engine.routing import DEV_PROVIDERS, candidates, no_adapter_reason, owner
from dripdrop.engine.unsubscribe import readiness_problems as unsubscribe_problems
from dripdrop.records import VersionProblem
from dripdrop.runtime import Runtime

log = logging.getLogger("dripdrop.readiness")

A = m.ChannelAdapter.__table__
V = m.SequenceVersion.__table__


def _no_adapter(
    conn: Connection, step: StepDef, version: VersionDef, adapters: AdapterSet
) -> tuple[str, str]:
    """(field, message) saying why no adapter can deliver this step; the database tells whose a
    pinned adapter that is not the tenant's is."""
    pinned = step.channel_adapter_id
    if pinned is not None and pinned not in adapters.by_id:
        row = conn.execute(select(A.c.name, A.c.tenant_key).where(A.c.id == pinned)).first()
        if row is None:
            return "channel_adapter_id", f"its pinned adapter {pinned} no longer exists"
        return "channel_adapter_id", (
            f"its pinned adapter {row.name!r} belongs to {owner(row.tenant_key)}, this version "
            f"to {owner(version.tenant_key)}: adapters are used only within their tenant"
        )
    return no_adapter_reason(step, version, adapters)


def _step_problems(
    conn: Connection, step: StepDef, version: VersionDef, adapters: AdapterSet
) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if step.channel == SPLIT:  # delivers nothing: no adapter, no template
        return found
    options = candidates(step, version, adapters)
    if not options:
        found.append(_no_adapter(conn, step, version, adapters))
    for adapter_id, _ in options:
        adapter = adapters.by_id[adapter_id]
        if adapter_id in adapters.broken:
            found.append(
                ("channel_adapter", f"adapter {adapter.name!r}: {adapters.broken[adapter_id]}")
            )
        elif (
            step.channel == "email"
            and step.template_type == "inline"  # a module or external template may give one
            and adapter.provider not in DEV_PROVIDERS
            and not step.config.get("from")
            and not adapter.config.get("from")
        ):
            found.append(
                (
                    "config.from",
                    f"no sender when sent through adapter {adapter.name!r}: set the step's "
                    "config.from or the adapter's config.from",
                )
            )
    if step.template_type == "module":
        try:
            module = importlib.import_module(step.template_module or "")
            getattr(module, step.template_function or "")
        except Exception as exc:  # ImportError, AttributeError, or the module's own failure
            found.append(
                (
                    "template_module",
                    f"{step.template_module}.{step.template_function} cannot be loaded: "
                    f"{type(exc).__name__}: {exc}",
                )
            )
    return found


def version_problems(rt: Runtime, conn: Connection, version_id: uuid.UUID) -> list[VersionProblem]:
    """Every problem of the version's active steps, in step order."""
    version = load_version(conn, version_id)
    adapters = load_adapters(rt, conn, version.tenant_key)
    return (
        [
            VersionProblem(step_id=step.id, step_key=step.key, field=field, message=message)
            for step in version.steps
            if step.active
            for field, message in _step_problems(conn, step, version, adapters)
        ]
        + [
            # flow control: every step reachable, no loop without a wait, split targets exist
            VersionProblem(step_id=step.id, step_key=step.key, field=field, message=message)
            for step, field, message in graph_problems(version)
        ]
        + [
            # marketing emails: a one-click unsubscribe link and headers (docs/deliverability.md)
            VersionProblem(step_id=step.id, step_key=step.key, field=field, message=message)
            for step, field, message in unsubscribe_problems(rt, version)
        ]
    )


def check_version(rt: Runtime, conn: Connection, version_id: Any) -> list[VersionProblem]:
    """What would make this version's sends fail (no adapter for a channel, an adapter of
    another tenant, an email without sender, a template module that cannot be loaded). An empty
    list means every active step has somewhere to go."""
    row = get_row(conn, V, version_id, "sequence version")
    return version_problems(rt, conn, row.id)


def _active(conn: Connection) -> list[tuple[uuid.UUID, str]]:
    """(version id, "key vN" label) of every active version, by sequence key."""
    S = m.Sequence.__table__
    rows = conn.execute(
        select(V.c.id, S.c.key, V.c.version, S.c.tenant_key)
        .join(S, S.c.id == V.c.sequence_id)
        .where(V.c.active)
        .order_by(S.c.key, S.c.tenant_key)
    )
    return [
        (r.id, f"{r.key} v{r.version}" + (f" (tenant {r.tenant_key})" if r.tenant_key else ""))
        for r in rows
    ]


def active_versions(rt: Runtime) -> list[tuple[uuid.UUID, str]]:
    """Every active version with a label, for ``dripdrop check-version``."""
    with rt.engine.begin() as conn:
        return _active(conn)


def log_active_problems(rt: Runtime, conn: Connection) -> int:
    """Log the problems of every active version (the worker does at start); return how many."""
    total = 0
    for vid, label in _active(conn):
        for problem in version_problems(rt, conn, vid):
            log.warning("sequence %s: %s", label, problem)
            total += 1
    return total
