"""Encryption at rest: the AES-256-GCM key ring, ``Secret`` and ``redact``.

A leaf package: it imports nothing from the engine, worker or client.
"""

from dripdrop.crypto.keyring import ENV_VAR, KeyRing, generate_key, key_id
from dripdrop.crypto.secret import MASK, REDACTED, Secret, redact

__all__ = ["ENV_VAR", "MASK", "REDACTED", "KeyRing", "Secret", "generate_key", "key_id", "redact"]
