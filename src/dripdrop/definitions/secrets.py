"""Encrypting and decrypting secret columns, each bound to its row."""

from __future__ import annotations

import uuid
from typing import Any

from dripdrop.crypto import Secret
from dripdrop.runtime import Runtime


def aad(table: str, column: str, row_id: uuid.UUID) -> bytes:
    """Associated data: a ciphertext only decrypts in the row and column it was written for."""
    return f"dripdrop:{table}:{column}:{row_id}".encode()


def seal(rt: Runtime, table: str, column: str, row_id: uuid.UUID, value: Any) -> bytes | None:
    """Encrypt a dict (None when empty: nothing secret to keep, no key needed)."""
    if not value:
        return None
    return rt.keyring.encrypt_json(value, aad=aad(table, column, row_id))


def unseal(rt: Runtime, table: str, column: str, row_id: uuid.UUID, blob: bytes | None) -> Secret:
    """Decrypt into a Secret (its repr never shows the value)."""
    if not blob:
        return Secret({})
    return Secret(rt.keyring.decrypt_json(bytes(blob), aad=aad(table, column, row_id)))
