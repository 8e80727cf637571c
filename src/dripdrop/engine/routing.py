"""Choosing the adapter for a delivery: pinned adapter → step rotation → version rotation
(weighted) → channel default. Sticky per enrollment; transient failures fail over."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from dripdrop.engine.defs import AdapterSet, StepDef, VersionDef


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
