"""The key ring: AES-256-GCM encryption with the newest key, decryption with any key in the ring.

A ciphertext ("blob") is laid out as::

    version (1 byte) | key id (8 bytes) | nonce (12 bytes) | ciphertext + GCM tag (16 bytes)

The key id is the first 8 bytes of SHA-256 of the key, so each blob names the key that made it and
rotation (``dripdrop rotate-key``) can tell which rows still need re-encrypting. The header is
authenticated together with the caller's ``aad``, which binds a blob to its row — not to a
version of it: an older blob of the same row, written back, still decrypts (see
docs/security.md, "What encryption does not protect against").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dripdrop.errors import ConfigurationError, CryptoError

__all__ = ["ENV_VAR", "KeyRing", "generate_key", "key_id"]

ENV_VAR = "DRIPDROP_ENCRYPTION_KEY"

VERSION = 1
KEY_SIZE = 32
KEY_ID_SIZE = 8
NONCE_SIZE = 12
TAG_SIZE = 16
HEADER_SIZE = 1 + KEY_ID_SIZE + NONCE_SIZE

_SEPARATORS = re.compile(r"[,\s]+")


def generate_key() -> str:
    """Return a new random 32-byte key as standard-alphabet base64 text."""
    return base64.b64encode(os.urandom(KEY_SIZE)).decode("ascii")


def key_id(key: bytes) -> bytes:
    """Return the 8-byte id of a raw key (first 8 bytes of its SHA-256)."""
    return hashlib.sha256(key).digest()[:KEY_ID_SIZE]


def _parse_key(key: str | bytes, position: int) -> bytes:
    """Turn one configured key into 32 raw bytes; errors name the position, never the key."""
    where = f"{ENV_VAR} key #{position + 1}"
    if isinstance(key, bytes | bytearray | memoryview):
        raw = bytes(key)
        if len(raw) == KEY_SIZE:
            return raw
        try:
            key = raw.decode("ascii")
        except UnicodeDecodeError:
            raise ConfigurationError(
                f"{where} must be {KEY_SIZE} raw bytes or base64 text (got {len(raw)} bytes)"
            ) from None
    if not isinstance(key, str):
        raise ConfigurationError(f"{where} must be base64 text or {KEY_SIZE} raw bytes")
    text = key.strip()
    # Accept the URL-safe alphabet too: keys get pasted from many tools.
    text = text.replace("-", "+").replace("_", "/")
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        # `from None`: the underlying error could echo part of the key.
        raise ConfigurationError(
            f"{where} is not valid base64; generate one with `dripdrop gen-key`"
        ) from None
    if len(decoded) != KEY_SIZE:
        raise ConfigurationError(
            f"{where} decodes to {len(decoded)} bytes; AES-256 needs {KEY_SIZE} "
            "(generate one with `dripdrop gen-key`)"
        )
    return decoded


class KeyRing:
    """Encryption keys, newest first. Encrypts with the newest; decrypts with whichever made it."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        """Build a ring from keys (base64 text or raw 32 bytes), newest first."""
        if isinstance(keys, str | bytes):
            raise ConfigurationError(
                "KeyRing expects a sequence of keys; use KeyRing.from_env_value() for a string"
            )
        ciphers: dict[bytes, AESGCM] = {}
        raws: dict[bytes, bytes] = {}
        for position, key in enumerate(keys):
            raw = _parse_key(key, position)
            # setdefault: a key listed twice keeps its first (newest) position.
            ciphers.setdefault(key_id(raw), AESGCM(raw))
            raws.setdefault(key_id(raw), raw)
        self._raws = raws  # only for derive(): never returned as they are
        if not ciphers:
            raise ConfigurationError(
                f"no encryption key configured: set {ENV_VAR} "
                "(generate one with `dripdrop gen-key`)"
            )
        self._ciphers = ciphers
        self._newest = next(iter(ciphers))

    @classmethod
    def from_env_value(cls, value: str) -> KeyRing:
        """Parse the comma/whitespace-separated value of DRIPDROP_ENCRYPTION_KEY, newest first."""
        return cls([part for part in _SEPARATORS.split(value or "") if part])

    @property
    def key_ids(self) -> list[str]:
        """Hex ids of the keys in the ring, newest first."""
        return [kid.hex() for kid in self._ciphers]

    def __len__(self) -> int:
        return len(self._ciphers)

    def __repr__(self) -> str:
        return f"<KeyRing {len(self)} key(s): {', '.join(self.key_ids)}>"

    def derive(self, purpose: bytes) -> list[tuple[bytes, bytes]]:
        """(key id, a 32-byte key for ``purpose``) per key of the ring, newest first: HKDF-SHA256
        of each key with ``purpose`` as its info, so a MAC key never equals an encryption key
        and two purposes never share one. Rotation works as for encryption: sign with the
        first, verify with the one whose id the signed value names."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return [
            (kid, HKDF(hashes.SHA256(), KEY_SIZE, salt=None, info=purpose).derive(raw))
            for kid, raw in self._raws.items()
        ]

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """Encrypt with the newest key and a random nonce; ``aad`` binds the blob to its row."""
        header = bytes([VERSION]) + self._newest + os.urandom(NONCE_SIZE)
        sealed = self._ciphers[self._newest].encrypt(header[-NONCE_SIZE:], plaintext, header + aad)
        return header + sealed

    def decrypt(self, blob: bytes, *, aad: bytes) -> bytes:
        """Decrypt a blob made by any key in the ring; raise CryptoError if that is impossible."""
        kid = self._key_id_of(blob)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise CryptoError(
                f"value was encrypted with a key not in {ENV_VAR} (key id {kid.hex()}); "
                "add that key back to the ring to read it"
            )
        header, sealed = bytes(blob[:HEADER_SIZE]), bytes(blob[HEADER_SIZE:])
        try:
            return cipher.decrypt(header[-NONCE_SIZE:], sealed, header + aad)
        except InvalidTag:
            raise CryptoError(
                f"value could not be decrypted: wrong row or tampered (key id {kid.hex()})"
            ) from None

    def encrypt_json(self, value: Any, *, aad: bytes) -> bytes:
        """Encrypt a JSON-serialisable value (serialised with sorted keys)."""
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return self.encrypt(text.encode("utf-8"), aad=aad)

    def decrypt_json(self, blob: bytes, *, aad: bytes) -> Any:
        """Decrypt a blob made by :meth:`encrypt_json` and parse it."""
        plaintext = self.decrypt(blob, aad=aad)
        try:
            return json.loads(plaintext.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            # Never echo the plaintext: it is a secret.
            raise CryptoError("decrypted value is not valid JSON") from None

    def needs_rotation(self, blob: bytes) -> bool:
        """True when the blob was not encrypted with the newest key."""
        return self._key_id_of(blob) != self._newest

    @staticmethod
    def _key_id_of(blob: bytes) -> bytes:
        """Validate the header of a blob and return the key id it names."""
        if not isinstance(blob, bytes | bytearray | memoryview):
            raise CryptoError(f"expected encrypted bytes, got {type(blob).__name__}")
        if len(blob) < HEADER_SIZE + TAG_SIZE:
            raise CryptoError("value could not be decrypted: too short to be a DripDrop ciphertext")
        if blob[0] != VERSION:
            raise CryptoError(f"value could not be decrypted: unknown format version {blob[0]}")
        return bytes(blob[1 : 1 + KEY_ID_SIZE])
