"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

We sign what the ``webhook`` channel sends; receivers (our users) verify with
:func:`verify_signature`. The signed content is ``f"{id}.{timestamp}.{body}"``, HMAC-SHA256 with
the base64-decoded secret (``whsec_`` prefix optional), sent as ``webhook-signature: v1,<b64>``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import time
from collections.abc import Mapping

from dripdrop.errors import ValidationError

__all__ = [
    "SECRET_PREFIX",
    "WebhookVerificationError",
    "decode_secret",
    "sign",
    "signature_headers",
    "verify_signature",
]

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300  # seconds, the spec's recommended five minutes


class WebhookVerificationError(ValueError):
    """A received webhook whose headers or signature do not check out."""


def decode_secret(secret: str | bytes) -> bytes:
    """The raw key of a ``whsec_<base64>`` secret (raw bytes are returned as they are)."""
    key = secret if isinstance(secret, bytes) else _decoded(secret)
    if not key:
        raise ValidationError.single("signing_secret", "is empty")
    return key


@functools.lru_cache(maxsize=256)
def _decoded(secret: str) -> bytes:
    # Every delivery of an adapter signs with the same secret: decode it once. (A refusal
    # raises and is not cached.)
    text = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        # Tolerate unpadded base64, as the reference libraries do.
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError.single("signing_secret", "is not valid base64") from None


def _as_bytes(body: str | bytes) -> bytes:
    return body.encode() if isinstance(body, str) else body


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: str | bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256>``."""
    to_sign = f"{msg_id}.{int(timestamp)}.".encode() + _as_bytes(body)
    digest = hmac.digest(decode_secret(secret), to_sign, "sha256")  # one C call
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(
    secret: str | bytes, msg_id: str, timestamp: int, body: str | bytes
) -> dict[str, str]:
    """The three headers a signed webhook carries."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify_signature(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: str | bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> None:
    """Check a received webhook; raise WebhookVerificationError when it does not verify.

    Header names are matched case-insensitively; any one of several space-separated ``v1``
    signatures may match (secret rotation). The timestamp must be within ``tolerance`` seconds
    of ``now`` (default: the current time) in either direction, against replays.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("invalid webhook-timestamp") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp outside the tolerance")
    expected = sign(secret, msg_id, timestamp, body).encode()
    for candidate in signatures.split(" "):
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return
    raise WebhookVerificationError("no matching signature")
