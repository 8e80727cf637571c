"""Loading definitions for the engine, with a short-lived cache.

The worker needs a version's steps, conditions, HTTP hooks and adapters for every batch. They
change rarely, so they are cached for ``ttl`` seconds: an edit reaches workers within that time.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy import Connection, select

from dripdrop.channels.base import AdapterInfo
from dripdrop.db import models as m
from dripdrop.definitions.secrets import unseal

log = logging.getLogger("dripdrop.worker")

T = TypeVar("T")

S = m.Sequence.__table__
V = m.SequenceVersion.__table__
ST = m.Step.__table__
C = m.Condition.__table__
H = m.HttpHook.__table__
A = m.ChannelAdapter.__table__
TR = m.Transition.__table__


@dataclass(frozen=True)
class StepDef:
    id: uuid.UUID
    key: str
    name: str
    position: int
    channel: str
    timing: dict[str, Any]
    config: dict[str, Any]
    template_type: str
    template_content: Any
    template_module: str | None
    template_function: str | None
    channel_adapter_id: uuid.UUID | None
    active: bool
    conditions: tuple[Any, ...] = ()

    @cached_property
    def _memo(self) -> dict[str, tuple[Any, Any, Any]]:
        return {}

    def derived(self, kind: str, version: Any, adapters: Any, compute: Callable[[], T]) -> T:
        """A result the engine derives from this step, its version and an adapter set on every
        execution (adapter candidates…), computed once and kept with the step. One slot per
        ``kind``: a newer version or adapter set replaces it, so nothing piles up."""
        hit = self._memo.get(kind)
        if hit is not None and hit[0] is version and hit[1] is adapters:
            return hit[2]  # type: ignore[no-any-return]
        value = compute()
        self._memo[kind] = (version, adapters, value)
        return value

    @cached_property
    def plain(self) -> bool:
        """No flow control on this step (no split, repeat or digest): the common case, read on
        every execution."""
        c = self.config
        return not (c.get("split") or c.get("repeat") not in (None, False) or c.get("digest"))

    @cached_property
    def message_config(self) -> dict[str, Any]:
        """The config without engine settings: what gets rendered and sent."""
        from dripdrop.engine.templating import ENGINE_KEYS

        return {k: v for k, v in self.config.items() if k not in ENGINE_KEYS}

    @cached_property
    def flat_config(self) -> Any:
        """The message config compiled for fast rendering, when it is flat (else None)."""
        from dripdrop.templates.render import compile_flat

        engine = self.config.get("template_engine", "liquid")
        return compile_flat(self.message_config, engine, channel=self.channel)

    @cached_property
    def template_names(self) -> frozenset[str]:
        """Top-level variables the step's templates name (hooks are looked up among them)."""
        from dripdrop.templates import referenced_names

        engine = self.config.get("template_engine", "liquid")
        return frozenset(referenced_names(self.message_config, engine))


@dataclass(frozen=True)
class TransitionDef:
    """An edge of the version's graph (see engine/flow.py)."""

    id: uuid.UUID
    from_step_id: uuid.UUID
    to_step_id: uuid.UUID | None
    condition_mode: str
    priority: int
    conditions: tuple[Any, ...] = ()


@dataclass(frozen=True)
class VersionDef:
    """Everything the engine needs about one sequence version."""

    id: uuid.UUID
    sequence_id: uuid.UUID
    sequence_key: str
    hook_module: str | None
    tenant_key: str | None
    config: dict[str, Any]
    steps: tuple[StepDef, ...]  # every step, in walking order (active or not)
    http_hooks: dict[str, Any] = field(default_factory=dict)  # key → row
    category: str | None = None  # the sequence's (scopes suppressions and unsubscribes)
    # from step id → its transitions in ascending priority (flow control, engine/flow.py)
    transitions: dict[uuid.UUID, tuple[TransitionDef, ...]] = field(default_factory=dict)

    def transitions_from(self, step_id: uuid.UUID) -> tuple[TransitionDef, ...]:
        return self.transitions.get(step_id, ())

    @cached_property
    def has_recurring(self) -> bool:
        """Does a step repeat on its own schedule (its occurrences keep the enrollment open)?"""
        return any(s.config.get("repeat") not in (None, False) for s in self.steps)

    @cached_property
    def _by_id(self) -> dict[uuid.UUID, StepDef]:
        return {s.id: s for s in self.steps}

    @cached_property
    def _next_active(self) -> dict[uuid.UUID, StepDef | None]:
        after: dict[uuid.UUID, StepDef | None] = {}
        following: StepDef | None = None
        for s in reversed(self.steps):
            after[s.id] = following
            if s.active:
                following = s
        return after

    @property
    def has_hooks(self) -> bool:
        """Does this version define any hook (a Python hook module or HTTP hooks)?"""
        return bool(self.hook_module or self.http_hooks)

    @cached_property
    def has_event_steps(self) -> bool:
        return any(s.timing.get("type") == "event" for s in self.steps)

    def step(self, step_id: uuid.UUID) -> StepDef | None:
        return self._by_id.get(step_id)

    def first_step(self) -> StepDef | None:
        return next((s for s in self.steps if s.active), None)

    def step_after(self, step_id: uuid.UUID) -> StepDef | None:
        """The next active step after ``step_id`` in walking order (None for an unknown id)."""
        return self._next_active.get(step_id)

    @property
    def exit_events(self) -> list[str]:
        return list(self.config.get("exit_events") or [])


def load_version(conn: Connection, version_id: uuid.UUID) -> VersionDef:
    row = conn.execute(
        select(V, S.c.key.label("sequence_key"), S.c.hook_module, S.c.category)
        .join(S, S.c.id == V.c.sequence_id)
        .where(V.c.id == version_id)
    ).one()
    steps = conn.execute(
        select(ST).where(ST.c.sequence_version_id == version_id).order_by(ST.c.position, ST.c.key)
    ).all()
    conds: dict[uuid.UUID, list[Any]] = {}
    edges = conn.execute(
        select(TR)
        .where(TR.c.sequence_version_id == version_id)
        .order_by(TR.c.priority, TR.c.inserted_at)
    ).all()
    if steps:
        owners = [s.id for s in steps] + [t.id for t in edges]
        for c in conn.execute(
            select(C)
            .where(C.c.step_id.in_(owners) | C.c.transition_id.in_(owners))
            .order_by(C.c.inserted_at)
        ):
            conds.setdefault(c.step_id or c.transition_id, []).append(c)
    transitions: dict[uuid.UUID, list[TransitionDef]] = {}
    for t in edges:
        transitions.setdefault(t.from_step_id, []).append(
            TransitionDef(
                id=t.id,
                from_step_id=t.from_step_id,
                to_step_id=t.to_step_id,
                condition_mode=t.condition_mode,
                priority=t.priority,
                conditions=tuple(conds.get(t.id, ())),
            )
        )
    hooks = {
        h.key: h
        for h in conn.execute(select(H).where(H.c.sequence_id == row.sequence_id, H.c.active))
    }
    return VersionDef(
        id=row.id,
        sequence_id=row.sequence_id,
        sequence_key=row.sequence_key,
        hook_module=row.hook_module,
        tenant_key=row.tenant_key,
        config=row.config or {},
        steps=tuple(
            StepDef(
                id=s.id,
                key=s.key,
                name=s.name,
                position=s.position,
                channel=s.channel,
                timing=s.timing or {},
                config=s.config or {},
                template_type=s.template_type,
                template_content=s.template_content,
                template_module=s.template_module,
                template_function=s.template_function,
                channel_adapter_id=s.channel_adapter_id,
                active=s.active,
                conditions=tuple(conds.get(s.id, ())),
            )
            for s in steps
        ),
        http_hooks=hooks,
        category=row.category,
        transitions={k: tuple(v) for k, v in transitions.items()},
    )


@dataclass
class AdapterSet:
    """Active and inactive adapters of one tenant, decrypted. ``broken`` names the adapters
    whose credentials could not be decrypted, and why: only the deliveries routed to one of
    them fail, never the tenant's others."""

    by_id: dict[uuid.UUID, AdapterInfo]
    active: set[uuid.UUID]
    defaults: dict[str, uuid.UUID]
    broken: dict[uuid.UUID, str] = field(default_factory=dict)


def load_adapters(rt: Any, conn: Connection, tenant_key: str | None) -> AdapterSet:
    col = A.c.tenant_key
    rows = conn.execute(select(A).where(col.is_(None) if tenant_key is None else col == tenant_key))
    by_id: dict[uuid.UUID, AdapterInfo] = {}
    active: set[uuid.UUID] = set()
    defaults: dict[str, uuid.UUID] = {}
    broken: dict[uuid.UUID, str] = {}
    for r in rows:
        try:
            creds = unseal(rt, "channel_adapters", "credentials", r.id, r.credentials).reveal()
        except Exception as exc:  # a wrong or missing key, a tampered value
            log.error("channel adapter %s (%s): credentials unusable: %s", r.name, r.id, exc)
            broken[r.id] = f"its credentials cannot be decrypted ({type(exc).__name__}: {exc})"
            creds = {}
        by_id[r.id] = AdapterInfo(
            id=str(r.id),
            name=r.name,
            channel=r.channel,
            provider=r.provider,
            credentials=dict(creds or {}),
            config=dict(r.config or {}),
        )
        if r.active:
            active.add(r.id)
            if r.is_default:
                defaults[r.channel] = r.id
    return AdapterSet(by_id, active, defaults, broken)


class DefinitionCache:
    """Versions and adapters cached for ``ttl`` seconds (0 disables caching).

    When an entry goes stale, one caller reloads it; callers arriving while that reload runs
    get the previous entry instead of loading it again each (a web server's 40 threads all
    missed together every ``ttl`` and loaded the same version 40 times). An entry is so at most
    ``ttl`` plus one load's time old; ``clear()`` (a definition changed here) drops it at once."""

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._versions: dict[uuid.UUID, tuple[float, VersionDef]] = {}
        self._adapters: dict[str | None, tuple[float, AdapterSet]] = {}
        self._sequences: dict[tuple[str, str | None], tuple[float, Any]] = {}
        self._loading: set[tuple[str, Any]] = set()  # entries being reloaded right now

    def fresh_version(self, version_id: uuid.UUID) -> VersionDef | None:
        """The cached version if still fresh (no database access)."""
        hit = self._versions.get(version_id)
        return hit[1] if hit and time.monotonic() - hit[0] < self.ttl else None

    def fresh_adapters(self, tenant_key: str | None) -> AdapterSet | None:
        """The cached adapters of a tenant if still fresh (no database access)."""
        hit = self._adapters.get(tenant_key)
        return hit[1] if hit and time.monotonic() - hit[0] < self.ttl else None

    def _cached(self, table: dict[Any, Any], kind: str, key: Any, load: Callable[[], Any]) -> Any:
        hit = table.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        loading = (kind, key)
        if hit is not None and loading in self._loading:  # another caller is reloading it
            return hit[1]
        self._loading.add(loading)
        try:
            value = load()
        finally:
            self._loading.discard(loading)
        if self.ttl > 0:
            table[key] = (now, value)
        return value

    def version(self, conn: Connection, version_id: uuid.UUID) -> VersionDef:
        return self._cached(
            self._versions, "version", version_id, lambda: load_version(conn, version_id)
        )

    def adapters(self, rt: Any, conn: Connection, tenant_key: str | None) -> AdapterSet:
        return self._cached(
            self._adapters, "adapters", tenant_key, lambda: load_adapters(rt, conn, tenant_key)
        )

    def sequence(
        self, key: str, tenant_key: str | None, load: Callable[[], Any], *, fresh: bool = False
    ) -> Any:
        """A sequence row with its active version id, by key (``load`` on a miss). A cached row
        may be up to ``ttl`` old: whoever writes with it must re-check it in the same statement
        (enroll does), or pass ``fresh=True``."""
        if fresh:
            row = load()
            if self.ttl > 0:
                self._sequences[(key, tenant_key)] = (time.monotonic(), row)
            return row
        return self._cached(self._sequences, "sequence", (key, tenant_key), load)

    def clear(self) -> None:
        self._versions.clear()
        self._adapters.clear()
        self._sequences.clear()
