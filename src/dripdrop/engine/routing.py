"""Choosing the adapter for a delivery: pinned adapter → step rotation → version rotation
(weighted) → channel default. Sticky per enrollment; transient failures fail over."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from dripdrop.channels.registry import providers_for
from dripdrop.engine.defs import AdapterSet, StepDef, VersionDef

# Channels with one obvious provider to suggest; the others list theirs.
_SUGGESTED = {"pubsub": "postgres", "webhook": "http"}
#: Providers that never send for real (tests, development): never suggested, need no sender.
DEV_PROVIDERS = ("memory", "console")


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError):
        return None


def candidates(
    step: StepDef, version: VersionDef, adapters: AdapterSet
) -> list[tuple[uuid.UUID, float]]:
    """The adapters a step may use, with weights, in rotation order (active ones only).
    Worked out once per step, version and adapter set (callers must not change the list)."""
    return step.derived(
        "candidates", version, adapters, lambda: _candidates(step, version, adapters)
    )


def _candidates(
    step: StepDef, version: VersionDef, adapters: AdapterSet
) -> list[tuple[uuid.UUID, float]]:
    if step.channel_adapter_id and step.channel_adapter_id in adapters.active:
        return [(step.channel_adapter_id, 1.0)]
    rotation = step.config.get("channel_adapter_rotation")
    if rotation:
        ids = [_uuid(a) for a in rotation]
        found = [(a, 1.0) for a in ids if a in adapters.active]
        if found:
            return found
    weighted = (version.config.get("channel_rotation") or {}).get(step.channel)
    if weighted:
        found = []
        for entry in weighted:
            a = _uuid(entry.get("adapter_id"))
            if a in adapters.active:
                found.append((a, float(entry.get("weight", 1))))
        if found:
            return found
    default = adapters.defaults.get(step.channel)
    return [(default, 1.0)] if default else []


def sticky_pick(
    options: list[tuple[uuid.UUID, float]], enrollment_id: uuid.UUID, channel: str
) -> int:
    """A weighted choice that is the same every time for the same enrollment and channel."""
    if len(options) == 1:
        return 0
    digest = hashlib.blake2b(f"{enrollment_id}:{channel}".encode(), digest_size=8).digest()
    point = int.from_bytes(digest, "big") / 2**64 * sum(w for _, w in options)
    for i, (_, weight) in enumerate(options):
        point -= weight
        if point < 0:
            return i
    return len(options) - 1


def choose_adapter(
    step: StepDef,
    version: VersionDef,
    adapters: AdapterSet,
    *,
    enrollment_id: uuid.UUID,
    previous_adapter_id: uuid.UUID | None,
    failover: bool,
) -> uuid.UUID | None:
    """The adapter for this attempt. A retry after a transient failure moves to the next adapter
    of the rotation (``failover``); otherwise the sticky choice."""
    options = candidates(step, version, adapters)
    if not options:
        return None
    ids = [a for a, _ in options]
    if failover and previous_adapter_id in ids and len(ids) > 1:
        return ids[(ids.index(previous_adapter_id) + 1) % len(ids)]
    if previous_adapter_id in ids and not failover:
        return previous_adapter_id
    return ids[sticky_pick(options, enrollment_id, step.channel)]


def owner(tenant_key: str | None) -> str:
    """Whose definitions: "global" or "tenant 'acme'"."""
    return "global" if tenant_key is None else f"tenant {tenant_key!r}"


def _create_hint(channel: str, tenant_key: str | None) -> str:
    real = [p for p in providers_for(channel) if p not in DEV_PROVIDERS]
    provider = _SUGGESTED.get(channel) or (real[0] if len(real) == 1 else None)
    tenant = f", tenant_key={tenant_key!r}" if tenant_key is not None else ""
    if provider:
        return (
            f"create one: create_channel_adapter(name=..., channel={channel!r}, "
            f"provider={provider!r}{tenant})"
        )
    return (
        f"create one with create_channel_adapter(channel={channel!r}{tenant}, provider=one of "
        f"{', '.join(real)})"
    )


def no_adapter_reason(step: StepDef, version: VersionDef, adapters: AdapterSet) -> tuple[str, str]:
    """(field, message) saying why :func:`candidates` found no adapter for ``step``, and what to
    do about it."""
    pinned = step.channel_adapter_id
    if pinned is not None:
        if pinned not in adapters.by_id:
            return "channel_adapter_id", (
                f"its pinned adapter {pinned} is not an adapter of {owner(version.tenant_key)} "
                "(another tenant's, or deleted): adapters are used only within their tenant"
            )
        return "channel_adapter_id", (
            f"its pinned adapter {adapters.by_id[pinned].name!r} is inactive and no other "
            f"{step.channel} adapter is the default"
        )
    active = sorted(
        a.name
        for i, a in adapters.by_id.items()
        if a.channel == step.channel and i in adapters.active
    )
    if active:
        return "channel", (
            f"no {step.channel} adapter of {owner(version.tenant_key)} is the default (active: "
            f"{', '.join(repr(n) for n in active)}): set is_default=True on one, or pin it with "
            "channel_adapter_id"
        )
    return "channel", (
        f"no active {step.channel} adapter for {owner(version.tenant_key)}: "
        + _create_hint(step.channel, version.tenant_key)
    )
