"""Helpers shared by the definition modules: ids, keys, tenants, lookups."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from typing import Any

from sqlalchemy import Connection, Table, select, update

from dripdrop.definitions.inputs import check_name, describe, gather
from dripdrop.errors import NotFound, ValidationError

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")


def slugify(name: str) -> str:
    """'Welcome Email!' → 'welcome_email', 'Café' → 'cafe'. Letters with no ASCII form add a
    short hash of the name ('Привет' → 'step_1a2b3c4d', '日本 hello' → 'hello_…'), so that two
    names differing only in them get distinct keys."""
    decomposed = unicodedata.normalize("NFKD", name)
    text = decomposed.encode("ascii", "ignore").decode()
    # At most 200 characters, as check_key wants: a long name still gives a valid key.
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower())[:200].strip("_")
    # Accents decompose into ASCII letters and combining marks (not alphanumeric): not lost.
    lost = any(ch.isalnum() for ch in decomposed if not ch.isascii())
    if lost or not slug:
        digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()
        slug = f"{slug[:190].rstrip('_')}_{digest}" if slug else f"step_{digest}"
    return slug


def check_key(key: Any, field: str = "key") -> str:
    # fullmatch: match() would let a trailing newline through ($ matches before it).
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValidationError.single(
            field,
            f"invalid key {describe(key)}: letters, digits, _ . : - (at most 200 characters)",
        )
    return key


def as_uuid(value: Any, field: str = "id") -> uuid.UUID:
    """A UUID given as such or as its text; anything else (ints, lists…) is refused up front,
    since str() of it may itself fail (huge ints, deep lists)."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and len(value) <= 64:
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise ValidationError.single(field, f"not a valid id: {describe(value)} (expected a UUID)")


def tenant_clause(table: Table, tenant_key: str | None) -> Any:
    """Rows of exactly this tenant (NULL = global); tenants never mix."""
    col = table.c.tenant_key
    return col.is_(None) if tenant_key is None else col == tenant_key


# The argument the public operations take each kind of id as (errors name the argument).
_ID_ARGUMENT = {
    "sequence version": "version_id",
    "channel adapter": "adapter_id",
    "HTTP hook": "hook_id",
}


def get_row(conn: Connection, table: Table, id_: Any, what: str, *, lock: bool = False) -> Any:
    """The row of ``table`` with this id; a ValidationError naming the argument for a malformed
    id, NotFound for an unknown one."""
    field = _ID_ARGUMENT.get(what, f"{what}_id")
    stmt = select(table).where(table.c.id == as_uuid(id_, field))
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(f"{what} {id_} not found")
    return row


def require_text(value: Any, field: str, errors: dict[str, list[str]]) -> None:
    """A required name: non-blank text of at most 255 characters."""
    gather(errors, check_name, value, field)


def touch(conn: Connection, table: Table, id_: uuid.UUID, now: Any, **values: Any) -> Any:
    """Update a row by id and return it."""
    row = conn.execute(
        update(table).where(table.c.id == id_).values(updated_at=now, **values).returning(table)
    ).first()
    if row is None:
        raise NotFound(f"{table.name} row {id_} not found")
    return row


def raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(errors)
