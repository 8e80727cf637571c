"""Suppressions: recipients who must not be sent to (unsubscribed, bounced, complained, blocked).

A row names a channel and a *normalised* recipient (email addresses trimmed and lower-cased,
phone numbers in E.164), the reason, and its scope: ``tenant_key`` NULL applies to every tenant,
``category`` NULL to every category of sequence. Writing one is an upsert (one row per channel,
recipient, tenant and category), so repeated unsubscribes or provider events add nothing; a
stronger reason (complaint > bounce > manual > unsubscribe) is never weakened by a later one.

Which rows stop a message (:func:`applies`): the recipient's rows of the channel, global or of
the enrollment's tenant, category-less or of the sequence's category — except that a
``transactional`` sequence ignores unsubscribes made for other categories (a marketing opt-out
must not stop a password reset); bounces, complaints and manual blocks stop everything.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

import phonenumbers
from sqlalchemy import Connection, case, delete, func, literal_column, select, tuple_
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.dialects.postgresql import insert as pg_insert

from dripdrop.db import models as m
from dripdrop.definitions.common import tenant_clause
from dripdrop.definitions.inputs import (
    check_choice,
    check_int,
    check_json,
    check_tenant,
    check_text,
    describe,
    gather,
)
from dripdrop.errors import ValidationError
from dripdrop.records import Suppression, from_row
from dripdrop.runtime import Runtime

T = m.Suppression.__table__

REASONS = ("unsubscribe", "bounce", "complaint", "manual")
# A later write never weakens a row: a complaint stays a complaint after an unsubscribe.
_STRENGTH = ("unsubscribe", "manual", "bounce", "complaint")
TRANSACTIONAL = "transactional"
# The channels whose recipient is a person (an address, a number, a chat): a webhook URL or a
# Slack channel is not someone who can opt out, and is never looked up.
CHANNELS = ("email", "sms", "telegram")
PHONE_CHANNELS = frozenset({"sms"})
_CATEGORY = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
MAX_RECIPIENT_LENGTH = 2000
# The unique index's COALESCE(…, '') written as a literal: a bound parameter (what "" becomes)
# keeps PostgreSQL from matching ON CONFLICT to the index once the statement is prepared.
_BLANK = literal_column("''")


def check_category(value: Any, field: str = "category") -> str | None:
    """None (uncategorised / every category) or a short lower-case key like ``marketing``."""
    if value is None:
        return None
    if not isinstance(value, str) or not _CATEGORY.fullmatch(value):
        raise ValidationError.single(
            field,
            f"must be a lower-case key (letters, digits, _ . : -, at most 64), "
            f"e.g. 'marketing', not {describe(value)}",
        )
    return value


def check_region(value: Any, field: str = "phone_region") -> str | None:
    """None or an ISO 3166 region phonenumbers knows (``US``, ``GB``, ``DE``…)."""
    if value is None:
        return None
    if not isinstance(value, str) or value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError.single(
            field, f"must be a two-letter region such as 'US' or 'GB', not {describe(value)}"
        )
    return value.upper()


def _email(value: str) -> str:
    from dripdrop.engine.recipients import email_problem

    problem, address = email_problem(value.strip())
    if problem is not None:
        raise ValidationError.single("recipient", f"{problem}: {describe(value)}")
    return address.lower()


def _phone(value: str, region: str | None) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        hint = ""
        if not region and not value.strip().startswith("+"):
            hint = " (no phone_region is set: give it in +<country code> form)"
        raise ValidationError.single(
            "recipient", f"is not a phone number{hint}: {describe(value)} ({exc._msg})"
        ) from None
    if not phonenumbers.is_possible_number(number):
        raise ValidationError.single(
            "recipient", f"is not a possible phone number: {describe(value)}"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_recipient(channel: str, recipient: Any, region: str | None = None) -> str:
    """The form suppressions are stored and matched in: email addresses trimmed and lower-cased
    (``"Ada <Ada@Example.com> "`` → ``ada@example.com``), phone numbers (sms) in E.164 read with
    ``region`` as the default country (``"(415) 555-2671"``, US → ``+14155552671``), anything
    else trimmed. A ValidationError names ``recipient`` when it is not one."""
    check_choice(channel, "channel", CHANNELS)
    if (
        isinstance(recipient, int)
        and not isinstance(recipient, bool)
        and channel != "email"
        and 0 <= recipient < 10**20
    ):
        recipient = str(recipient)  # a chat id or a phone number given as a number
    check_text(recipient, "recipient", max_length=MAX_RECIPIENT_LENGTH, blank=False)
    if channel == "email":
        return _email(recipient)
    if channel in PHONE_CHANNELS:
        return _phone(recipient, region)
    text_ = recipient.strip()
    if any(c in text_ for c in "\r\n\t"):
        raise ValidationError.single("recipient", "must not contain line breaks")
    return text_


def engine_key(channel: str, recipient: Any, region: str | None) -> str | None:
    """normalise_recipient for the engine: None instead of an error (such a recipient matches no
    suppression; the delivery reports its own problem)."""
    try:
        return normalise_recipient(channel, recipient, region)
    except ValidationError:
        return None


def _checked(
    channel: Any, recipient: Any, reason: Any, tenant_key: Any, category: Any, region: Any
) -> str:
    """Every argument of a write checked at once; the normalised recipient."""
    errors: dict[str, list[str]] = {}
    gather(errors, lambda v, f: check_choice(v, f, CHANNELS), channel, "channel")
    gather(errors, lambda v, f: check_choice(v, f, REASONS), reason, "reason")
    gather(errors, check_tenant, tenant_key, "tenant_key")
    gather(errors, check_category, category, "category")
    gather(errors, check_region, region, "region")
    if errors:
        raise ValidationError(errors)
    return normalise_recipient(channel, recipient, check_region(region))


def _upsert(
    conn: Connection,
    *,
    channel: str,
    recipient: str,
    reason: str,
    tenant_key: str | None,
    category: str | None,
    source: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Any:
    values: dict[str, Any] = {
        "channel": channel,
        "recipient": recipient,
        "reason": reason,
        "tenant_key": tenant_key,
        "category": category,
        "source": source,
    }
    if metadata:
        values["metadata"] = metadata
    ins = pg_insert(T).values(**values)
    new = ins.excluded
    strength = pg_array(list(_STRENGTH))
    stronger = func.array_position(strength, new.reason) >= func.array_position(
        strength, T.c.reason
    )
    return conn.execute(
        ins.on_conflict_do_update(
            index_elements=[
                T.c.channel,
                T.c.recipient,
                func.coalesce(T.c.tenant_key, _BLANK),
                func.coalesce(T.c.category, _BLANK),
            ],
            set_={
                "reason": case((stronger, new.reason), else_=T.c.reason),
                "source": func.coalesce(new.source, T.c.source),
                "metadata": T.c["metadata"].op("||")(new["metadata"]),
                "updated_at": func.now(),
            },
        ).returning(T)
    ).one()


def write_suppression(
    connection: Connection,
    *,
    channel: str,
    recipient: str,
    reason: str,
    tenant_key: str | None = None,
    category: str | None = None,
    region: str | None = None,
) -> None:
    """Suppress a recipient inside the caller's transaction (provider events, unsubscribe).

    Idempotent: one row per (channel, normalised recipient, tenant, category); a repeat keeps
    the row and never weakens its reason. ValidationError for a bad argument or recipient.
    ``region`` is the default country for phone numbers not in +E.164 form."""
    normalised = _checked(channel, recipient, reason, tenant_key, category, region)
    _upsert(
        connection,
        channel=channel,
        recipient=normalised,
        reason=reason,
        tenant_key=tenant_key,
        category=category,
    )


def suppress(
    rt: Runtime,
    conn: Connection,
    channel: str,
    recipient: str,
    reason: str = "manual",
    tenant_key: str | None = None,
    category: str | None = None,
    *,
    source: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Suppression:
    """Stop sending to ``recipient`` on ``channel``: for every tenant (``tenant_key=None``) or
    one, every category (``category=None``) or one. Idempotent; returns the row."""
    normalised = _checked(channel, recipient, reason, tenant_key, category, rt.phone_region)
    errors: dict[str, list[str]] = {}
    gather(errors, lambda v, f: check_text(v, f, max_length=255, optional=True), source, "source")
    gather(errors, check_json, metadata, "metadata")
    if errors:
        raise ValidationError(errors)
    row = _upsert(
        conn,
        channel=channel,
        recipient=normalised,
        reason=reason,
        tenant_key=tenant_key,
        category=category,
        source=source,
        metadata=metadata,
    )
    return from_row(Suppression, row)


def _lookup_args(rt: Runtime, channel: Any, recipient: Any, tenant_key: Any, category: Any) -> str:
    errors: dict[str, list[str]] = {}
    gather(errors, lambda v, f: check_choice(v, f, CHANNELS), channel, "channel")
    gather(errors, check_tenant, tenant_key, "tenant_key")
    gather(errors, check_category, category, "category")
    if errors:
        raise ValidationError(errors)
    return normalise_recipient(channel, recipient, rt.phone_region)


def unsuppress(
    rt: Runtime,
    conn: Connection,
    channel: str,
    recipient: str,
    tenant_key: str | None = None,
    *,
    category: str | None = None,
) -> int:
    """Remove the recipient's suppressions of exactly this tenant (``None``: the global ones) —
    of every category, or only ``category``'s. Returns how many rows were removed."""
    normalised = _lookup_args(rt, channel, recipient, tenant_key, category)
    stmt = delete(T).where(
        T.c.channel == channel, T.c.recipient == normalised, tenant_clause(T, tenant_key)
    )
    if category is not None:
        stmt = stmt.where(T.c.category == category)
    return conn.execute(stmt).rowcount or 0


def delete_suppression(rt: Runtime, conn: Connection, suppression_id: Any) -> Suppression | None:
    """Remove one suppression by id; the removed row, or None when there was none (REST)."""
    from dripdrop.definitions.common import as_uuid

    row = conn.execute(
        delete(T).where(T.c.id == as_uuid(suppression_id, "suppression_id")).returning(T)
    ).first()
    return from_row(Suppression, row) if row is not None else None


def applies(reason: str, row_category: str | None, category: str | None) -> bool:
    """Does a suppression (reason, category) of the right recipient and tenant stop a message of
    a sequence in ``category``?"""
    if row_category is not None and row_category != category:
        return False
    if category == TRANSACTIONAL and reason == "unsubscribe":
        return row_category == TRANSACTIONAL
    return True


def is_suppressed(
    rt: Runtime,
    conn: Connection,
    channel: str,
    recipient: str,
    tenant_key: str | None = None,
    *,
    category: str | None = None,
) -> bool:
    """Would a message to ``recipient`` from a sequence of ``category`` (None: uncategorised)
    in ``tenant_key`` be skipped? Global rows count for every tenant."""
    normalised = _lookup_args(rt, channel, recipient, tenant_key, category)
    from dripdrop.engine.suppression import check_one

    return check_one(rt, conn, channel, normalised, tenant_key, category) is not None


def list_suppressions(
    rt: Runtime,
    conn: Connection,
    channel: str | None = None,
    tenant_key: str | None = None,
    *,
    reason: str | None = None,
    recipient: str | None = None,
    all_tenants: bool = False,
    limit: int | None = None,
) -> list[Suppression]:
    """Suppressions newest first: of one tenant (``None``: the global ones) or, with
    ``all_tenants=True``, of every tenant; optionally of one channel, reason or recipient."""
    errors: dict[str, list[str]] = {}
    if channel is not None:
        gather(errors, lambda v, f: check_choice(v, f, CHANNELS), channel, "channel")
    if reason is not None:
        gather(errors, lambda v, f: check_choice(v, f, REASONS), reason, "reason")
    gather(errors, check_tenant, tenant_key, "tenant_key")
    if not isinstance(all_tenants, bool):
        errors["all_tenants"] = ["must be True or False"]
    if limit is not None:
        gather(errors, lambda v, f: check_int(v, f, minimum=1, maximum=10_000_000), limit, "limit")
    if recipient is not None and channel is None:
        errors["channel"] = ["is required to look a recipient up"]
    if errors:
        raise ValidationError(errors)
    stmt = suppressions_query(
        channel=channel,
        reason=reason,
        tenant_key=tenant_key,
        all_tenants=all_tenants,
        recipient=None
        if recipient is None
        else normalise_recipient(channel or "", recipient, rt.phone_region),
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [from_row(Suppression, r) for r in conn.execute(stmt)]


def suppressions_query(
    *,
    channel: str | None = None,
    reason: str | None = None,
    tenant_key: str | None = None,
    all_tenants: bool = False,
    recipient: str | None = None,
    before: tuple[Any, uuid.UUID] | None = None,
) -> Any:
    """Newest first (inserted_at, id descending); ``before`` = the (inserted_at, id) of the last
    row of the previous page (keyset pages)."""
    stmt = select(T).order_by(T.c.inserted_at.desc(), T.c.id.desc())
    if not all_tenants:
        stmt = stmt.where(func.coalesce(T.c.tenant_key, "") == (tenant_key or ""))
    if channel is not None:
        stmt = stmt.where(T.c.channel == channel)
    if reason is not None:
        stmt = stmt.where(T.c.reason == reason)
    if recipient is not None:
        stmt = stmt.where(T.c.recipient == recipient)
    if before is not None:
        stmt = stmt.where(tuple_(T.c.inserted_at, T.c.id) < tuple_(*before))
    return stmt


__all__ = [
    "REASONS",
    "applies",
    "check_category",
    "check_region",
    "engine_key",
    "is_suppressed",
    "list_suppressions",
    "normalise_recipient",
    "suppress",
    "unsuppress",
    "write_suppression",
]


def checked_row(
    values: dict[str, Any], region: str | None
) -> tuple[str, str, str, str | None, str | None]:
    """One row to import (channel, recipient, reason, category, tenant_key), checked and
    normalised as ``suppress`` does; blank cells count as absent (reason: manual)."""

    def cell(name: str) -> Any:
        value = values.get(name)
        return value.strip() or None if isinstance(value, str) else value

    channel, recipient = cell("channel"), cell("recipient")
    reason, category, tenant = cell("reason") or "manual", cell("category"), cell("tenant_key")
    normalised = _checked(channel, recipient, reason, tenant, category, region)
    return channel, normalised, reason, category, tenant


def write_suppressions(
    conn: Connection, rows: Iterable[tuple[str, str, str, str | None, str | None]]
) -> int:
    """Upsert checked rows (``checked_row``) in one statement: the bulk form of
    ``write_suppression`` (CLI imports). A target given twice keeps its strongest reason.
    Returns how many distinct targets were written."""
    targets: dict[tuple[Any, ...], tuple[str, str, str, str | None, str | None]] = {}
    for row in rows:
        channel, recipient, reason, category, tenant = row
        key = (channel, recipient, tenant or "", category or "")
        old = targets.get(key)
        if old is None or _STRENGTH.index(reason) >= _STRENGTH.index(old[2]):
            targets[key] = row
    if not targets:
        return 0
    ins = pg_insert(T).values(
        [
            {"channel": c, "recipient": r, "reason": why, "category": g, "tenant_key": t}
            for c, r, why, g, t in targets.values()
        ]
    )
    strength = pg_array(list(_STRENGTH))
    new = ins.excluded
    stronger = func.array_position(strength, new.reason) >= func.array_position(
        strength, T.c.reason
    )
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=[
                T.c.channel,
                T.c.recipient,
                func.coalesce(T.c.tenant_key, _BLANK),
                func.coalesce(T.c.category, _BLANK),
            ],
            set_={
                "reason": case((stronger, new.reason), else_=T.c.reason),
                "updated_at": func.now(),
            },
        )
    )
    return len(targets)
