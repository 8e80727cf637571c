"""Signed unsubscribe links: ``{public_url}/u/{token}``, verified without a database lookup.

A token is ``<payload>.<mac>``, both base64url without padding. The payload is compact JSON:
``[1, key id, expiry, channel, recipient, tenant_key, category, enrollment_id]``; the MAC is
HMAC-SHA256 (first 16 bytes) of the payload text under a key derived from the instance's key
ring for this purpose only (:meth:`KeyRing.derive`). The key id inside says which key of the ring
signed it, so links keep working after a rotation for as long as the old key stays in the ring.
Anyone can read a token (it holds the recipient, as the email itself does); no one can make or
change one without the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection

from dripdrop.errors import ValidationError

PURPOSE = b"dripdrop unsubscribe link v1"
FORMAT = 1
MAC_BYTES = 16
DEFAULT_TTL = timedelta(days=90)  # CAN-SPAM: an opt-out must work for at least 30 days
MAX_TOKEN_LENGTH = 4096


class TokenError(Exception):
    """A token that cannot be honoured. ``expired`` tells an old link from a bad one."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True, slots=True)
class UnsubscribeClaim:
    """What a valid token says: who unsubscribes from what."""

    channel: str
    recipient: str
    tenant_key: str | None
    category: str | None
    enrollment_id: str | None
    expires_at: datetime


def check_public_url(value: Any, field: str = "public_url") -> str | None:
    """None or an absolute http(s) URL where the web app is reachable (no trailing slash kept)."""
    if value is None:
        return None
    if not isinstance(value, str) or any(c in value for c in "<> \r\n\t\"'\\"):
        raise ValidationError.single(field, "must be an http(s) URL like https://app.example.com")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValidationError.single(
            field, f"must be an absolute http(s) URL without query, not {value[:80]!r}"
        )
    return value.rstrip("/")


def check_ttl(value: Any, field: str = "unsubscribe_ttl") -> timedelta:
    """How long links work: a timedelta or seconds, from one hour to ten years."""
    if value is None:
        return DEFAULT_TTL
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            value = timedelta(seconds=value)
        except (OverflowError, ValueError):
            value = None
    if not isinstance(value, timedelta) or not (
        timedelta(hours=1) <= value <= timedelta(days=3653)
    ):
        raise ValidationError.single(
            field, "must be a timedelta (or seconds) from 1 hour to 10 years"
        )
    return value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Makes and checks tokens with the keys derived from one key ring."""

    def __init__(self, keyring: Any) -> None:
        keys = keyring.derive(PURPOSE)
        self._newest_id = keys[0][0].hex()
        self._keys = {kid.hex(): key for kid, key in keys}

    def _mac(self, key: bytes, payload: str) -> bytes:
        return hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()[:MAC_BYTES]

    def sign(
        self,
        *,
        channel: str,
        recipient: str,
        tenant_key: str | None,
        category: str | None,
        enrollment_id: str | None,
        expires_at: datetime,
    ) -> str:
        body = [
            FORMAT,
            self._newest_id,
            int(expires_at.timestamp()),
            channel,
            recipient,
            tenant_key,
            category,
            enrollment_id,
        ]
        payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
        return f"{payload}.{_b64(self._mac(self._keys[self._newest_id], payload))}"

    def verify(self, token: Any, now: datetime) -> UnsubscribeClaim:
        """The claim of a genuine, unexpired token; TokenError otherwise (never another error,
        whatever the input)."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
            raise TokenError("malformed link")
        payload, _, mac_text = token.partition(".")
        try:
            mac = _unb64(mac_text)
            body = json.loads(_unb64(payload))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise TokenError("malformed link") from None
        if not (isinstance(body, list) and len(body) == 8 and body[0] == FORMAT):
            raise TokenError("malformed link")
        key = self._keys.get(body[1]) if isinstance(body[1], str) else None
        if key is None:  # signed by a key no longer in the ring, or never in it
            raise TokenError("this link was not made by this server (or its key was retired)")
        if not hmac.compare_digest(mac, self._mac(key, payload)):
            raise TokenError("this link has been altered")
        _, _, expiry, channel, recipient, tenant, category, enrollment = body
        if not all(isinstance(v, str) for v in (channel, recipient)) or not isinstance(expiry, int):
            raise TokenError("malformed link")
        expires_at = datetime.fromtimestamp(expiry, now.tzinfo)
        if now >= expires_at:
            raise TokenError("this link has expired", expired=True)
        return UnsubscribeClaim(channel, recipient, tenant, category, enrollment, expires_at)


def signer(rt: Any) -> Signer:
    """The runtime's signer (the keys are derived once per key ring)."""
    cached = getattr(rt, "_unsubscribe_signer", None)
    ring = rt.keyring
    if cached is None or cached[0] is not ring:
        cached = (ring, Signer(ring))
        rt._unsubscribe_signer = cached
    return cached[1]


def unsubscribe_url(
    rt: Any,
    *,
    channel: str,
    recipient: str,
    tenant_key: str | None,
    category: str | None,
    enrollment_id: str | None,
    now: datetime,
) -> str:
    """The link for one message: ``{public_url}/u/{token}`` (``rt.public_url`` must be set)."""
    token = signer(rt).sign(
        channel=channel,
        recipient=recipient,
        tenant_key=tenant_key,
        category=category,
        enrollment_id=enrollment_id,
        expires_at=now + rt.unsubscribe_ttl,
    )
    return f"{rt.public_url}/u/{token}"


def unsubscribe(rt: Any, conn: Connection, claim: UnsubscribeClaim) -> int:
    """What ``POST /u/{token}`` does, in the caller's transaction: an ``unsubscribe`` suppression
    for the token's category (None: every category but ``transactional``) and tenant, and the
    subscriber's active or paused enrollments in sequences of that category cancelled with what
    they still had scheduled. Idempotent. Returns how many enrollments it ended."""
    from sqlalchemy import func, select, update

    from dripdrop.db import models as m
    from dripdrop.definitions.common import tenant_clause
    from dripdrop.definitions.suppressions import TRANSACTIONAL, write_suppression
    from dripdrop.engine.enrollments import cancel_scheduled

    write_suppression(
        conn,
        channel=claim.channel,
        recipient=claim.recipient,
        reason="unsubscribe",
        tenant_key=claim.tenant_key,
        category=claim.category,
        region=rt.phone_region,
    )
    E, S = m.Enrollment.__table__, m.Sequence.__table__
    origin = _enrollment_of(conn, claim.enrollment_id)
    if origin is None:  # the enrollment was deleted since: the suppression still holds
        return 0
    in_category = (
        func.coalesce(S.c.category, "") != TRANSACTIONAL
        if claim.category is None
        else S.c.category == claim.category
    )
    ids = list(
        conn.scalars(
            select(E.c.id)
            .join(S, S.c.id == E.c.sequence_id)
            .where(
                E.c.subscriber_type == origin.subscriber_type,
                E.c.subscriber_id == origin.subscriber_id,
                E.c.state.in_(("active", "paused")),
                tenant_clause(E, claim.tenant_key),
                in_category,
            )
            .order_by(E.c.id)  # one lock order for every writer of a subscriber's chains
            .with_for_update(of=E)
        )
    )
    now = rt.now()
    for enrollment_id in ids:
        cancel_scheduled(conn, enrollment_id, now, "cancelled: unsubscribed")
    if ids:
        conn.execute(
            update(E)
            .where(E.c.id.in_(ids))
            .values(state="cancelled", cancelled_at=now, updated_at=now, exit_reason="unsubscribed")
        )
    return len(ids)


def _enrollment_of(conn: Connection, enrollment_id: str | None) -> Any:
    import uuid as uuid_

    from sqlalchemy import select

    from dripdrop.db import models as m

    if not enrollment_id:
        return None
    try:
        key = uuid_.UUID(enrollment_id)
    except ValueError:
        return None
    E = m.Enrollment.__table__
    return conn.execute(select(E.c.subscriber_type, E.c.subscriber_id).where(E.c.id == key)).first()


#: The category whose emails must carry an unsubscribe link and the RFC 8058 headers.
MARKETING = "marketing"


def readiness_problems(rt: Any, version: Any) -> list[tuple[Any, str, str]]:
    """(step, field, message) for each active email step of a ``marketing`` sequence that
    would go out without a working unsubscribe: no ``public_url`` to build links from (and no
    ``unsubscribe_url`` of its own), or an inline template that never shows
    ``{{ unsubscribe_url }}``. Module and external templates are not read here."""
    if version.category != MARKETING:
        return []
    found: list[tuple[Any, str, str]] = []
    for step in version.steps:
        if not step.active or step.channel != "email":
            continue
        if rt.public_url is None and not step.config.get("unsubscribe_url"):
            found.append(
                (
                    step,
                    "public_url",
                    "a marketing email needs a one-click unsubscribe link and List-Unsubscribe "
                    "headers: set DripDrop(public_url=...) to where the web app is reachable",
                )
            )
        if step.template_type == "inline" and "unsubscribe_url" not in step.template_names:
            found.append(
                (
                    step,
                    "config.body",
                    "a marketing email must show its unsubscribe link: put "
                    "{{ unsubscribe_url }} in the body",
                )
            )
    return found
