"""Creating, validating, updating and deleting sequences, versions, steps, conditions, adapters
and HTTP hooks. Every function takes ``(rt, conn, ...)`` so the sync and async faces share it."""
