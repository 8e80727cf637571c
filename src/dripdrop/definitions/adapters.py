"""Channel adapters: a provider plus its (encrypted) credentials and config."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from dripdrop.channels.base import CHANNELS
from dripdrop.channels.registry import validate_adapter
from dripdrop.db import models as m
from dripdrop.definitions.common import (
    as_uuid,
    get_row,
    raise_if,
    require_text,
    tenant_clause,
    touch,
)
from dripdrop.definitions.inputs import (
    boolean,
    check_all,
    check_tenant,
    check_text,
    describe,
    json_dict,
    text,
    unknown_keys,
)
from dripdrop.definitions.secrets import seal, unseal
from dripdrop.errors import ValidationError
from dripdrop.records import ChannelAdapter, from_row
from dripdrop.runtime import Runtime

A = m.ChannelAdapter.__table__

# The type checks of each field, shared by create and update (the provider checks the rest).
ADAPTER_FIELDS = {
    "channel": text(32),
    "provider": text(64),
    "credentials": json_dict(max_size=100_000),
    "config": json_dict(max_size=100_000),
    "is_default": boolean(optional=True),
    "active": boolean(),
    "tenant_key": lambda v, f: check_tenant(v, f),
}


def adapter_record(rt: Runtime, row: Any) -> ChannelAdapter:
    creds = unseal(rt, "channel_adapters", "credentials", row.id, row.credentials)
    return from_row(ChannelAdapter, row, credentials=creds)


def check_rotation(rotation: Any, errors: dict[str, list[str]]) -> None:
    """``{"email": [{"adapter_id": id, "weight": 70}, ...]}`` (weights positive numbers)."""
    if not isinstance(rotation, dict):
        errors["config.channel_rotation"] = ["must map channel → [{adapter_id, weight}]"]
        return
    for channel, entries in rotation.items():
        field = f"config.channel_rotation.{str(channel)[:32]}"
        if channel not in CHANNELS:
            errors[field] = [f"unknown channel {describe(channel)}"]
        elif not isinstance(entries, list) or not entries:
            errors[field] = ["must be a non-empty list of {adapter_id, weight}"]
        else:
            for i, entry in enumerate(entries):
                if not isinstance(entry, dict) or "adapter_id" not in entry:
                    errors[f"{field}.{i}"] = ["needs adapter_id"]
                    continue
                errors.update(unknown_keys(entry, ("adapter_id", "weight"), f"{field}.{i}"))
                weight = entry.get("weight", 1)
                if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
                    errors[f"{field}.{i}.weight"] = ["must be a positive number"]


def _unset_default(conn: Connection, channel: str, tenant_key: str | None, now: Any) -> None:
    conn.execute(
        update(A)
        .where(A.c.channel == channel, A.c.is_default, tenant_clause(A, tenant_key))
        .values(is_default=False, updated_at=now)
    )


def create_channel_adapter(
    rt: Runtime,
    conn: Connection,
    *,
    name: str,
    channel: str,
    provider: str,
    credentials: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    is_default: bool | None = None,
    active: bool = True,
    tenant_key: str | None = None,
) -> ChannelAdapter:
    """Store an adapter. Credentials are validated against the provider's declaration and
    encrypted. A new default unsets the previous one; the first adapter of a channel becomes its
    default unless ``is_default=False``."""
    check_all(
        dict(
            channel=channel,
            provider=provider,
            credentials=credentials,
            config=config,
            is_default=is_default,
            active=active,
            tenant_key=tenant_key,
        ),
        ADAPTER_FIELDS,
    )
    errors: dict[str, list[str]] = {}
    require_text(name, "name", errors)
    try:
        creds, cfg = validate_adapter(channel, provider, credentials, config)
    except ValidationError as exc:
        errors.update(exc.errors)
    raise_if(errors)
    if conn.execute(select(A.c.id).where(A.c.name == name, tenant_clause(A, tenant_key))).first():
        raise ValidationError.single("name", f"an adapter named {name!r} already exists")
    now = rt.now()
    if is_default is None:
        is_default = (
            active
            and conn.execute(
                select(A.c.id).where(
                    A.c.channel == channel,
                    A.c.is_default,
                    A.c.active,  # an inactive default does not count: this one takes over
                    tenant_clause(A, tenant_key),
                )
            ).first()
            is None
        )
    if is_default:
        _unset_default(conn, channel, tenant_key, now)
    row_id = uuid.uuid4()
    row = conn.execute(
        insert(A)
        .values(
            id=row_id,
            name=name,
            channel=channel,
            provider=provider,
            credentials=seal(rt, "channel_adapters", "credentials", row_id, creds),
            config=cfg,
            is_default=bool(is_default),
            active=active,
            tenant_key=tenant_key,
        )
        .returning(A)
    ).one()
    return adapter_record(rt, row)


def update_channel_adapter(
    rt: Runtime, conn: Connection, adapter_id: Any, **changes: Any
) -> ChannelAdapter:
    """Change name, credentials (replaced whole), config, is_default or active."""
    row = get_row(conn, A, adapter_id, "channel adapter", lock=True)
    allowed = {"name", "credentials", "config", "is_default", "active"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({k: ["cannot be changed"] for k in unknown})
    check_all(changes, ADAPTER_FIELDS)
    if "name" in changes:
        errors: dict[str, list[str]] = {}
        require_text(changes["name"], "name", errors)
        raise_if(errors)
        taken = conn.execute(
            select(A.c.id).where(
                A.c.name == changes["name"], A.c.id != row.id, tenant_clause(A, row.tenant_key)
            )
        ).first()
        if taken:
            raise ValidationError.single(
                "name", f"an adapter named {changes['name']!r} already exists"
            )
    current = adapter_record(rt, row).credentials.reveal()
    creds, cfg = validate_adapter(
        row.channel,
        row.provider,
        changes.get("credentials", current),
        changes.get("config", row.config),
    )
    now = rt.now()
    values: dict[str, Any] = {k: v for k, v in changes.items() if k in ("name", "active")}
    if "credentials" in changes:
        values["credentials"] = seal(rt, "channel_adapters", "credentials", row.id, creds)
    if "config" in changes:
        values["config"] = cfg
    if changes.get("is_default"):
        _unset_default(conn, row.channel, row.tenant_key, now)
    if "is_default" in changes:
        values["is_default"] = bool(changes["is_default"])
    return adapter_record(rt, touch(conn, A, row.id, now, **values))


def deactivate_channel_adapter(rt: Runtime, conn: Connection, adapter_id: Any) -> ChannelAdapter:
    """Stop using an adapter (rotation and defaults skip it)."""
    return update_channel_adapter(rt, conn, adapter_id, active=False)


def delete_channel_adapter(rt: Runtime, conn: Connection, adapter_id: Any) -> None:
    """Delete an adapter; steps pinned to it fall back to rotation or the default."""
    row = get_row(conn, A, adapter_id, "channel adapter")
    conn.execute(delete(A).where(A.c.id == row.id))


def get_channel_adapter(rt: Runtime, conn: Connection, adapter_id: Any) -> ChannelAdapter:
    """One adapter by id."""
    return adapter_record(rt, get_row(conn, A, adapter_id, "channel adapter"))


def list_channel_adapters(
    rt: Runtime, conn: Connection, channel: str | None = None, *, tenant_key: str | None = None
) -> list[ChannelAdapter]:
    """The adapters of a channel (all channels when None), by name."""
    check_text(channel, "channel", max_length=32, optional=True)
    check_tenant(tenant_key)
    stmt = select(A).where(tenant_clause(A, tenant_key)).order_by(A.c.channel, A.c.name)
    if channel is not None:
        stmt = stmt.where(A.c.channel == channel)
    return [adapter_record(rt, r) for r in conn.execute(stmt)]


def get_default_adapter(
    rt: Runtime, conn: Connection, channel: str, *, tenant_key: str | None = None
) -> ChannelAdapter | None:
    """The channel's active default adapter, if any."""
    check_text(channel, "channel", max_length=32)
    check_tenant(tenant_key)
    row = conn.execute(
        select(A).where(
            A.c.channel == channel, A.c.is_default, A.c.active, tenant_clause(A, tenant_key)
        )
    ).first()
    return adapter_record(rt, row) if row else None


def load_adapter_row(conn: Connection, adapter_id: Any) -> Any:
    return conn.execute(select(A).where(A.c.id == as_uuid(adapter_id))).first()
